"""What a message says by name, looked up once per batch the sender claims: the district
(name, time zone, categories), stations, representatives, staff contacts, the residents'
sealed contacts, subscriptions and the district's own templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from eventkit.db import Conn, scope
from services.notification import contacts, subscriptions
from services.notification.contact_book import ContactEntry
from services.notification.messages import Message, Template, default_template, render
from services.notification.outbox import Delivery
from services.notification.subscriptions import Subscription

PRIORITY = {
    "normal": ("小事", "normal"),
    "important": ("大事", "important"),
    "urgent": ("要事", "urgent"),
}
DEADLINE = {
    "response": ("响应", "response"),
    "resolution": ("办结", "resolution"),
    "escalation": ("督办", "supervision"),
}
_TIMES = ("response_due", "resolution_due", "due", "next_due", "reply_due", "report_due")


@dataclass(frozen=True)
class SealedResident:
    subject_id: str | None
    phone_ciphertext: str | None
    tracking_code_ciphertext: str | None


@dataclass(frozen=True)
class District:
    name: str
    timezone: str
    categories: dict[str, list[str]]


class Names:
    """Lookups for the deliveries of one batch (see the module's note)."""

    def __init__(self, pool: asyncpg.Pool, public_base_url: str) -> None:
        self._pool = pool
        self.public_base_url = public_base_url
        self._districts: dict[str, District] = {}
        self._stations: dict[tuple[str, str], str] = {}
        self._people: dict[tuple[str, str], str] = {}
        self._contacts: dict[tuple[str, str], ContactEntry] = {}
        self._residents: dict[str, SealedResident] = {}
        self._subscriptions: dict[str, Subscription | None] = {}
        self._templates: dict[tuple[str, str], Template] = {}

    @classmethod
    async def load(
        cls, pool: asyncpg.Pool, public_base_url: str, batch: Sequence[Delivery]
    ) -> Names:
        """What the deliveries of ``batch`` need, looked up in a few queries."""
        names = cls(pool, public_base_url)
        await names.prepare(batch)
        return names

    async def prepare(self, batch: Sequence[Delivery]) -> None:
        """Look up, in a few queries per district, what the deliveries of ``batch`` need.

        A batch may hold several districts' deliveries (the sender claims for all of
        them); each district's names are looked up in that district's row-level
        security scope, so a delivery can only be given what its own district holds
        (and a resident's sealed contact what the district that took the opinion down
        holds: :func:`resident_district`).
        """
        districts = sorted({d.district_id for d in batch} | {resident_district(d) for d in batch})
        async with self._pool.acquire() as conn, conn.transaction():
            for district in districts:
                await scope(conn, district)
                own = [d for d in batch if d.district_id == district]
                if own:
                    await self._prepare_district(conn, district, own)
                await self._prepare_residents(
                    conn, [d for d in batch if resident_district(d) == district]
                )

    async def _prepare_district(self, conn: Conn, district: str, batch: Sequence[Delivery]) -> None:
        row = await conn.fetchrow(
            "SELECT * FROM notification.districts WHERE district_id = $1", district
        )
        if row is not None:
            self._districts[district] = District(
                row["name_zh"], row["timezone"], dict(row["categories"] or {})
            )
        for row in await conn.fetch(
            "SELECT station_code, name_zh FROM notification.stations WHERE district_id = $1",
            district,
        ):
            self._stations[(district, row["station_code"])] = row["name_zh"]
        for row in await conn.fetch(
            "SELECT representative_id, name_zh FROM notification.representatives"
            " WHERE district_id = $1",
            district,
        ):
            self._people[(district, row["representative_id"])] = row["name_zh"]
        staff = [d.recipient for d in batch if d.recipient_kind == "staff"]
        for staff_id, entry in (await contacts.load(conn, district, staff)).items():
            self._contacts[(district, staff_id)] = entry
        for row in await conn.fetch(
            "SELECT template, subject, body FROM notification.template_overrides "
            "WHERE district_id = $1",
            district,
        ):
            self._templates[(district, row["template"])] = Template(row["subject"], row["body"])
        for subscriber in sorted({d.recipient for d in batch if d.recipient_kind == "subscriber"}):
            self._subscriptions[subscriber] = await subscriptions.by_id(conn, subscriber)

    async def _prepare_residents(self, conn: Conn, batch: Sequence[Delivery]) -> None:
        opinions = sorted(
            {d.opinion_id for d in batch if d.recipient_kind == "resident" and d.opinion_id}
        )
        if opinions:
            for row in await conn.fetch(
                "SELECT opinion_id, subject_id, phone_ciphertext, tracking_code_ciphertext "
                "FROM notification.opinions WHERE opinion_id = ANY($1)",
                opinions,
            ):
                self._residents[row["opinion_id"]] = SealedResident(
                    row["subject_id"], row["phone_ciphertext"], row["tracking_code_ciphertext"]
                )

    def district(self, district_id: str) -> District:
        return self._districts.get(district_id) or District(district_id, "Asia/Shanghai", {})

    def station(self, district_id: str, code: str | None) -> str:
        return self._stations.get((district_id, code or ""), code or "")

    def person(self, district_id: str, staff_id: str | None) -> str:
        return self._people.get((district_id, staff_id or ""), staff_id or "")

    def contact(self, district_id: str, staff_id: str) -> ContactEntry | None:
        return self._contacts.get((district_id, staff_id))

    def resident(self, opinion_id: str | None) -> SealedResident | None:
        return self._residents.get(opinion_id or "")

    def subscription(self, subscription_id: str) -> Subscription | None:
        return self._subscriptions.get(subscription_id)

    async def render(self, delivery: Delivery, context: dict[str, Any]) -> Message:
        """The delivery's message: the district's own template, else the one shipped."""
        template = self._templates.get((delivery.district_id, delivery.template))
        return render(template or default_template(delivery.template), context)


def resident_district(delivery: Delivery) -> str:
    """Where the resident of a delivery's opinion is kept: the district that took the
    opinion down (the planner names it when a case was transferred from there), else
    the delivery's own."""
    return str(delivery.context.get("resident_district") or delivery.district_id)


def message_context(delivery: Delivery, names: Names) -> dict[str, Any]:
    """What the templates may use: the planned context, names looked up, times in the
    district's time zone (``2026-09-29 17:30``), labels in both languages."""
    context = dict(delivery.context)
    district = names.district(delivery.district_id)
    category = context.get("category_code")
    names_of_category = district.categories.get(category or "") or []
    name_zh = names_of_category[0] if names_of_category else None
    name_en = names_of_category[1] if len(names_of_category) > 1 else None
    priority = PRIORITY.get(context.get("priority") or "normal", ("", ""))
    deadline = DEADLINE.get(context.get("deadline") or "", ("", ""))
    context.update(
        district_name=district.name,
        station_name=names.station(delivery.district_id, context.get("station_code")),
        representative_name=names.person(delivery.district_id, context.get("representative_id"))
        if context.get("representative_id")
        else None,
        category_name=name_zh or "未分类",
        category_name_en=name_en or "not classified",
        priority_zh=priority[0],
        priority_en=priority[1],
        deadline_zh=deadline[0],
        deadline_en=deadline[1],
        recipient_name=names.person(delivery.district_id, delivery.recipient),
    )
    for key in (
        "case_id",
        "community",
        "reason",
        "message",
        "result",
        "title",
        "to_name",
        "escalated_to",
        "answer",
        "answered_by",
        "subject",
    ):
        context.setdefault(key, None)
    zone = ZoneInfo(district.timezone)
    for key in _TIMES:
        value = context.get(key)
        context[key] = (
            datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")
            if value
            else None
        )
    return context
