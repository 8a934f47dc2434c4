"""The webhook subscriptions of outside systems: create, list, pause, resume, delete,
rotate the secret, read the delivery log (district admins only).

No ``from __future__ import annotations``: the routes' dependency aliases are local to
:func:`subscription_router`, and FastAPI can only resolve annotations that are objects.
"""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from eventkit.db import district_transaction
from eventkit.http import require_roles
from eventkit.identity import Principal, Role
from eventkit.settings import Settings
from eventkit.staff_roster import known_bearer
from services.notification import subscriptions
from services.notification.admin_routes import NotificationDep, notification_of
from services.notification.api_models import (
    DeliveryLog,
    DeliveryView,
    SubscriptionBody,
    SubscriptionList,
    SubscriptionView,
    SubscriptionWithSecret,
)
from services.notification.consumers import ROSTER
from services.notification.subscriptions import Subscription


def _view(s: Subscription) -> SubscriptionView:
    return SubscriptionView(
        subscription_id=s.subscription_id,
        name=s.name,
        url=s.url,
        event_types=list(s.event_types),
        status=s.status,
        created_at=s.created_at,
    )


def _with_secret(s: Subscription) -> SubscriptionWithSecret:
    return SubscriptionWithSecret(**_view(s).model_dump(), secret=s.secret)


def subscription_router(settings: Settings) -> APIRouter:
    """The subscription routes."""
    router = APIRouter(prefix="/api/v1/subscriptions", tags=["外部订阅 / subscriptions"])
    # A valid token of a person who is known, active staff (notification's roster).
    authenticated = known_bearer(settings, ROSTER, lambda request: notification_of(request).pool)
    Admin = Annotated[Principal, Depends(require_roles(authenticated, Role.DISTRICT_ADMIN))]

    @router.post("", summary="新建订阅 / subscribe an outside system", status_code=201)
    async def create(
        body: SubscriptionBody, who: Admin, service: NotificationDep
    ) -> SubscriptionWithSecret:
        async with district_transaction(service.pool, who.district_id) as conn:
            created = await subscriptions.create(
                conn,
                who.district_id,
                body.name,
                str(body.url),
                list(body.event_types),
                who.subject,
                service.clock(),
                keys=service.settings.privacy_keys(),
            )
        return _with_secret(created)

    @router.get("", summary="本区的订阅 / the district's subscriptions")
    async def list_all(who: Admin, service: NotificationDep) -> SubscriptionList:
        async with district_transaction(service.pool, who.district_id) as conn:
            found = await subscriptions.listing(conn, who.district_id)
        return SubscriptionList(subscriptions=[_view(s) for s in found])

    @router.get("/{subscription_id}", summary="一个订阅 / one subscription")
    async def get(subscription_id: str, who: Admin, service: NotificationDep) -> SubscriptionView:
        async with district_transaction(service.pool, who.district_id) as conn:
            return _view(await subscriptions.get(conn, who.district_id, subscription_id))

    async def status(service: NotificationDep, who: Principal, sid: str, new: str) -> Subscription:
        async with district_transaction(service.pool, who.district_id) as conn:
            return await subscriptions.set_status(
                conn,
                who.district_id,
                sid,
                new,
                service.clock(),
                keys=service.settings.privacy_keys(),  # seals a secret kept in clear
            )

    @router.post("/{subscription_id}/pause", summary="暂停 / pause")
    async def pause(subscription_id: str, who: Admin, service: NotificationDep) -> SubscriptionView:
        return _view(await status(service, who, subscription_id, "paused"))

    @router.post("/{subscription_id}/resume", summary="恢复 / resume")
    async def resume(
        subscription_id: str, who: Admin, service: NotificationDep
    ) -> SubscriptionView:
        return _view(await status(service, who, subscription_id, "active"))

    @router.delete("/{subscription_id}", summary="删除 / delete (the log stays)")
    async def delete(
        subscription_id: str, who: Admin, service: NotificationDep
    ) -> SubscriptionView:
        return _view(await status(service, who, subscription_id, "deleted"))

    @router.post("/{subscription_id}/rotate-secret", summary="更换密钥 / rotate the secret")
    async def rotate(
        subscription_id: str, who: Admin, service: NotificationDep
    ) -> SubscriptionWithSecret:
        grace = timedelta(hours=service.settings.webhook_rotation_grace_hours)
        async with district_transaction(service.pool, who.district_id) as conn:
            rotated = await subscriptions.rotate(
                conn,
                who.district_id,
                subscription_id,
                grace,
                service.clock(),
                keys=service.settings.privacy_keys(),
            )
        return _with_secret(rotated)

    @router.get("/{subscription_id}/deliveries", summary="投递记录 / the delivery log")
    async def deliveries(
        subscription_id: str,
        who: Admin,
        service: NotificationDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> DeliveryLog:
        async with district_transaction(service.pool, who.district_id) as conn:
            rows = await subscriptions.deliveries(
                conn, who.district_id, subscription_id, limit, offset
            )
        return DeliveryLog(deliveries=[DeliveryView(**r) for r in rows])

    return router
