"""What a message says by name, looked up once per batch the sender claims: the district
(name, time zone, categories), stations, representatives, staff contacts, subscriptions
and the district's own templates from its setup, kept between batches
(:mod:`services.notification.setup`), and the residents' sealed contacts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from eventkit.db import Conn, scope
from services.notification.contact_book import ContactEntry
from services.notification.messages import Message, default_template, render
from services.notification.outbox import Delivery
from services.notification.setup import DistrictSetup, Setups
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

_LOOKUP = """
SELECT (SELECT stamp FROM notification.setup_stamps WHERE district_id = $1) AS stamp,
       (SELECT jsonb_agg(jsonb_build_array(opinion_id, subject_id, phone_ciphertext,
                                           tracking_code_ciphertext))
          FROM notification.opinions WHERE opinion_id = ANY($2::text[])) AS residents
"""
"""Per district of a batch, one statement: the district's stamp (its setup is read again
only when it moved) and the sealed contacts of the residents it holds."""


@dataclass(frozen=True)
class SealedResident:
    subject_id: str | None
    phone_ciphertext: str | None
    tracking_code_ciphertext: str | None


class Names:
    """Lookups for the deliveries of one batch (see the module's note)."""

    def __init__(
        self,
        public_base_url: str,
        setups: Mapping[str, DistrictSetup],
        residents: Mapping[str, SealedResident],
    ) -> None:
        self.public_base_url = public_base_url
        self._setups = setups
        self._residents = residents

    @classmethod
    async def load(
        cls, conn: Conn, setups: Setups, public_base_url: str, batch: Sequence[Delivery]
    ) -> Names:
        """What the deliveries of ``batch`` need, in one statement per district, in
        ``conn``'s transaction.

        A batch may hold several districts' deliveries (the sender claims for all of
        them); each district's names are looked up in that district's row-level
        security scope, so a delivery can only be given what its own district holds
        (and a resident's sealed contact what the district that took the opinion down
        holds: :func:`resident_district`). The transaction is left in the last
        district's scope.
        """
        kept: dict[str, DistrictSetup] = {}
        residents: dict[str, SealedResident] = {}
        own = {d.district_id for d in batch}
        for district in sorted(own | {resident_district(d) for d in batch}):
            await scope(conn, district)
            opinions = sorted(
                {
                    d.opinion_id
                    for d in batch
                    if d.recipient_kind == "resident"
                    and d.opinion_id
                    and resident_district(d) == district
                }
            )
            row = await conn.fetchrow(_LOOKUP, district, opinions)
            assert row is not None
            if district in own:
                kept[district] = setups.stamp_is(district, row["stamp"]) or await setups.load(
                    conn, district
                )
            for opinion_id, subject_id, phone, code in row["residents"] or []:
                residents[opinion_id] = SealedResident(subject_id, phone, code)
        return cls(public_base_url, kept, residents)

    def district(self, district_id: str) -> DistrictSetup:
        return self._setups.get(district_id) or DistrictSetup(district_id, None, district_id)

    def station(self, district_id: str, code: str | None) -> str:
        found = self.district(district_id).stations.get(code or "")
        return found.name if found is not None else code or ""

    def person(self, district_id: str, staff_id: str | None) -> str:
        people = self.district(district_id).representatives
        return people.get(staff_id or "", staff_id or "")

    def contact(self, district_id: str, staff_id: str) -> ContactEntry | None:
        return self.district(district_id).contacts.get(staff_id)

    def resident(self, opinion_id: str | None) -> SealedResident | None:
        return self._residents.get(opinion_id or "")

    def subscription(self, district_id: str, subscription_id: str) -> Subscription | None:
        return self.district(district_id).subscription(subscription_id)

    async def render(self, delivery: Delivery, context: dict[str, Any]) -> Message:
        """The delivery's message: the district's own template, else the one shipped."""
        template = self.district(delivery.district_id).templates.get(delivery.template)
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
