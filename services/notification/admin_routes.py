"""The admin API of a district's notifications: the contact book, the rules' and the
templates' overrides, the deliveries (district admins; auditors read the deliveries).

No ``from __future__ import annotations``: the routes' dependency aliases are local to
:func:`admin_router`, and FastAPI can only resolve annotations that are objects.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from eventkit.db import district_transaction
from eventkit.http import read_body, require_roles
from eventkit.identity import Principal, Role
from eventkit.refusals import InvalidInput, NotFound
from eventkit.settings import Settings
from eventkit.staff_roster import known_bearer
from services.notification import contacts, outbox, overrides
from services.notification.api_models import (
    ContactList,
    ImportResult,
    ReconcileBody,
    ReconcileResult,
    RuleList,
    RuleSettingBody,
    RuleView,
    StaffDeliveryLog,
    StaffDeliveryView,
    TemplateBody,
    TemplateView,
)
from services.notification.bootstrap import Notification
from services.notification.consumers import ROSTER
from services.notification.contact_book import ContactEntry, parse_contact_file
from services.notification.messages import Template, default_template
from services.notification.rules import RULES, RuleSetting

MAX_CONTACT_FILE_BYTES = 1024 * 1024


def notification_of(request: Request) -> Notification:
    """Dependency: the running service of the app serving ``request``."""
    notification: Notification = request.app.state.notification
    return notification


NotificationDep = Annotated[Notification, Depends(notification_of)]


def admin_router(settings: Settings) -> APIRouter:
    """The contact book, rules, templates and deliveries routes."""
    router = APIRouter(prefix="/api/v1", tags=["通知管理 / notification admin"])
    # A valid token of a person who is known, active staff (notification's roster).
    authenticated = known_bearer(settings, ROSTER, lambda request: notification_of(request).pool)
    Admin = Annotated[Principal, Depends(require_roles(authenticated, Role.DISTRICT_ADMIN))]
    Reader = Annotated[
        Principal, Depends(require_roles(authenticated, Role.DISTRICT_ADMIN, Role.AUDITOR))
    ]

    @router.get("/contacts", summary="联系人 / the contact book")
    async def list_contacts(who: Admin, service: NotificationDep) -> ContactList:
        async with district_transaction(service.pool, who.district_id) as conn:
            return ContactList(contacts=await contacts.listing(conn, who.district_id))

    @router.get("/contacts/{staff_id}", summary="一位联系人 / one contact")
    async def get_contact(staff_id: str, who: Admin, service: NotificationDep) -> ContactEntry:
        async with district_transaction(service.pool, who.district_id) as conn:
            return await contacts.one(conn, who.district_id, staff_id)

    @router.put("/contacts/{staff_id}", summary="登记或更新联系人 / add or replace a contact")
    async def put_contact(
        staff_id: str, body: ContactEntry, who: Admin, service: NotificationDep
    ) -> ContactEntry:
        if body.staff_id != staff_id:
            raise InvalidInput(
                "路径与内容中的工号不一致", "The staff id in the path and in the body differ"
            )
        async with district_transaction(service.pool, who.district_id) as conn:
            await contacts.save(conn, who.district_id, [body], who.subject, service.clock())
            return await contacts.one(conn, who.district_id, staff_id)

    @router.delete("/contacts/{staff_id}", summary="删除联系人 / remove a contact", status_code=204)
    async def delete_contact(staff_id: str, who: Admin, service: NotificationDep) -> None:
        async with district_transaction(service.pool, who.district_id) as conn:
            await contacts.remove(conn, who.district_id, staff_id)

    @router.post("/contacts/import", summary="导入联系人文件 / import a contact file (YAML)")
    async def import_contacts(
        who: Admin, service: NotificationDep, request: Request
    ) -> ImportResult:
        text = (await read_body(request, MAX_CONTACT_FILE_BYTES)).decode("utf-8", "replace")
        book = parse_contact_file(text, source="request")
        if book.district != who.district_id:
            raise InvalidInput(
                "文件属于另一个区", "The file is for another district",
                f"文件为 {book.district}，您属于 {who.district_id}",
                f"The file is for {book.district}; you act in {who.district_id}",
            )  # fmt: skip
        counts = await contacts.import_book(service.pool, book, who.subject, service.clock())
        return ImportResult(district_id=book.district, **counts)

    @router.get("/rules", summary="通知规则 / the rules and the district's settings")
    async def list_rules(who: Admin, service: NotificationDep) -> RuleList:
        async with district_transaction(service.pool, who.district_id) as conn:
            settings_ = await overrides.rule_settings(conn, who.district_id)
        return RuleList(rules=[_rule_view(rule.name, settings_) for rule in RULES])

    @router.put("/rules/{rule}", summary="调整一条规则 / switch a rule or narrow its channels")
    async def put_rule(
        rule: str, body: RuleSettingBody, who: Admin, service: NotificationDep
    ) -> RuleView:
        setting = RuleSetting(body.enabled, tuple(body.channels) if body.channels else None)
        async with district_transaction(service.pool, who.district_id) as conn:
            await overrides.set_rule(
                conn, who.district_id, rule, setting, who.subject, service.clock()
            )
            settings_ = await overrides.rule_settings(conn, who.district_id)
        return _rule_view(rule, settings_)

    @router.get("/templates/{name}", summary="消息模板 / a message template")
    async def get_template(name: str, who: Admin, service: NotificationDep) -> TemplateView:
        default_template(name)
        async with district_transaction(service.pool, who.district_id) as conn:
            current = await overrides.template(conn, who.district_id, name)
        return _template_view(name, current)

    @router.put("/templates/{name}", summary="本区的模板 / the district's own template")
    async def put_template(
        name: str, body: TemplateBody, who: Admin, service: NotificationDep
    ) -> TemplateView:
        text = Template(body.subject, body.body)
        async with district_transaction(service.pool, who.district_id) as conn:
            await overrides.set_template(
                conn, who.district_id, name, text, who.subject, service.clock()
            )
        return _template_view(name, text)

    @router.delete("/templates/{name}", summary="恢复默认模板 / back to the shipped template")
    async def reset_template(name: str, who: Admin, service: NotificationDep) -> TemplateView:
        async with district_transaction(service.pool, who.district_id) as conn:
            await overrides.set_template(
                conn, who.district_id, name, None, who.subject, service.clock()
            )
        return _template_view(name, default_template(name))

    @router.get("/deliveries", summary="投递记录 / deliveries to staff and residents")
    async def list_deliveries(
        who: Reader,
        service: NotificationDep,
        case_id: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> StaffDeliveryLog:
        async with district_transaction(service.pool, who.district_id) as conn:
            rows = await outbox.listing(conn, who.district_id, case_id, status, limit, offset)
        return StaffDeliveryLog(deliveries=[StaffDeliveryView(**row) for row in rows])

    @router.post(
        "/deliveries/{delivery_id}/reconcile",
        summary="核对结果未知的投递 / settle a delivery whose outcome is unknown",
    )
    async def reconcile(
        delivery_id: uuid.UUID, body: ReconcileBody, who: Admin, service: NotificationDep
    ) -> ReconcileResult:
        if not await service.sender.reconcile(who.district_id, delivery_id, body.outcome):
            raise NotFound("没有结果未知的此投递", "No delivery with an unknown outcome by that id")
        status = {"sent": "sent", "failed": "failed", "resend": "pending"}[body.outcome]
        return ReconcileResult(delivery_id=delivery_id, status=status)

    return router


def _rule_view(name: str, settings: dict[str, RuleSetting]) -> RuleView:
    rule = next((r for r in RULES if r.name == name), None)
    if rule is None:
        raise NotFound(f"没有规则 {name}", f"no rule {name}")
    setting = settings.get(name, RuleSetting())
    return RuleView(
        name=rule.name,
        summary=rule.summary,
        events=sorted(rule.events),
        template=rule.template,
        channels=list(rule.channels),
        enabled=setting.enabled,
        district_channels=list(setting.channels) if setting.channels else None,
    )


def _template_view(name: str, template: Template) -> TemplateView:
    shipped = default_template(name)
    return TemplateView(
        name=name,
        subject=template.subject,
        body=template.body,
        overridden=template != shipped,
    )
