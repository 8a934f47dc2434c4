"""Builders shared by the notification tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contracts import Actor, ActorRole
from contracts.base import Event
from contracts.cases import CaseAssigned, CaseOpened, Priority
from contracts.envelope import Envelope
from contracts.intake import Location, OpinionSubmitted, SubmitterRef
from eventkit.privacy import PersonalDataVault
from eventkit.store import EventStore
from services.notification.bootstrap import Notification
from tests.every_district import every_district

SHANGHAI = ZoneInfo("Asia/Shanghai")
ADMIN = Actor(id="admin_demo", role=ActorRole.DISTRICT_ADMIN)
ROUTING = Actor(id="routing", role=ActorRole.SYSTEM)
LIAISON = Actor(id="lo_dh_02", role=ActorRole.LIAISON)
PHONE = "13912345678"
NAME = "王秀英"


@dataclass
class Clock:
    """A clock the test moves by hand (Tuesday 29 September 2026, 10:00 in Shanghai)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


async def happen(store: EventStore, service: Notification, event: Event) -> Envelope:
    """Append ``event`` as its owner would and hand it to the notification consumer."""
    await store.append(event.stream_id, [Envelope.wrap(event)])
    recorded = (await store.read_stream(event.stream_id))[-1].envelope()
    await service.consumer.apply(recorded)
    return recorded


async def resident_opinion(
    vault: PersonalDataVault,
    pool: Any,
    *,
    channel: str = "qr",
    consent: bool = True,
    phone: str | None = PHONE,
    code: str = "ABCD2345EFGH",
    when: datetime | None = None,
) -> OpinionSubmitted:
    """An opinion with the resident's contact sealed as intake seals it."""
    async with every_district(pool).acquire() as conn:
        sealed = await vault.seal(
            "demo",
            {"name": NAME, "phone": phone, "tracking_code": code},
            identifier=phone,
            conn=conn,
        )
    return OpinionSubmitted(
        district_id="demo",
        occurred_at=when or datetime(2026, 9, 29, 9, 0, tzinfo=SHANGHAI),
        actor=Actor(id=sealed.subject_id, role=ActorRole.RESIDENT),
        opinion_id="op_" + uuid.uuid4().hex[:12],
        channel=channel,
        text="小区东门的路灯坏了三个多月，晚上老人出门很不方便",
        location=Location(station_code="dh_donghu", community="东湖社区"),
        submitter=SubmitterRef(
            subject_id=sealed.subject_id,
            name_ciphertext=sealed.values["name"],
            phone_ciphertext=sealed.values["phone"],
            tracking_code_ciphertext=sealed.values["tracking_code"],
            contact_consent=consent,
        ),
    )


def opened(
    opinion_id: str,
    case_id: str | None = None,
    priority: Priority = Priority.NORMAL,
    when: datetime | None = None,
) -> CaseOpened:
    return CaseOpened(
        district_id="demo",
        occurred_at=when or datetime(2026, 9, 29, 9, 1, tzinfo=SHANGHAI),
        actor=ROUTING,
        case_id=case_id or uuid.uuid4().hex[:20],
        opinion_id=opinion_id,
        category_code="municipal",
        matched_keywords=["路灯"],
        priority=priority,
        response_due=datetime(2026, 9, 30, 17, 30, tzinfo=SHANGHAI),
        resolution_due=datetime(2026, 10, 16, 17, 30, tzinfo=SHANGHAI),
        channel="qr",
        community="东湖社区",
        street_code="dh",
    )


def assigned(
    case_id: str,
    representative_id: str | None = "r002",
    station_code: str | None = "dh_donghu",
    queue: str = "representative",
) -> CaseAssigned:
    return CaseAssigned(
        district_id="demo",
        occurred_at=datetime(2026, 9, 29, 9, 1, tzinfo=SHANGHAI),
        actor=ROUTING,
        case_id=case_id,
        station_code=station_code,
        representative_id=representative_id,
        queue=queue,
        reason="选区、专长",
    )
