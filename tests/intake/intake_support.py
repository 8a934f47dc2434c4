"""Builders shared by intake's tests: directory and case events, tokens, a demo taxonomy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import (
    Actor,
    ActorRole,
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    DeadlinePair,
    DistrictRegistered,
    LatLong,
    Priority,
    PriorityDeadlines,
    RepresentativeJoinedStation,
    RepresentativeLevel,
    RepresentativeRegistered,
    StationKind,
    StationRegistered,
    TaxonomyCategory,
    TaxonomyPublished,
)
from contracts.base import Event
from contracts.cases import CaseEvent
from contracts.envelope import Envelope
from eventkit.auth import issue_token
from eventkit.consumer import Consumer
from eventkit.identity import Role
from eventkit.settings import Settings
from eventkit.store import EventStore
from tests.staff_support import staff_events

DISTRICT = "demo"
OTHER_DISTRICT = "other"
STATION = "zgc_home"
COMMUNITY_STATION = "kxy_comm"
REPRESENTATIVE = "rep_0042"
API_KEY = "k-demo-9f3a1c07d2e4b6a8"
PHONE = "13912345678"
NAME = "王秀英"

ADMIN = Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)
ROUTING = Actor(id="routing", role=ActorRole.SYSTEM)
LIAISON = Actor(id="staff_0012", role=ActorRole.LIAISON)

CATEGORIES = [
    TaxonomyCategory(
        code="municipal.street_light",
        name_zh="路灯照明",
        name_en="Street lights",
        keywords=["路灯", "不亮", "照明"],
    ),
    TaxonomyCategory(
        code="municipal.road",
        name_zh="道路破损",
        name_en="Damaged roads",
        keywords=["坑", "路面", "井盖"],
    ),
    TaxonomyCategory(
        code="property.elevator",
        name_zh="电梯故障",
        name_en="Lift breakdowns",
        keywords=["电梯", "困人"],
    ),
]
"""The demo district's categories, as routing publishes them."""


def now() -> datetime:
    return datetime.now(UTC)


def taxonomy_published(
    version: int = 1, categories: Sequence[TaxonomyCategory] = CATEGORIES, district: str = DISTRICT
) -> TaxonomyPublished:
    """The district's taxonomy as routing publishes it."""
    return TaxonomyPublished(
        district_id=district,
        occurred_at=now(),
        actor=ADMIN,
        version=version,
        categories=list(categories),
        default_deadlines=PriorityDeadlines(normal=DeadlinePair(response="2wd", resolution="15wd")),
    )


Known = Callable[..., Awaitable[None]]
"""``known(role, person, district)``: make a person known, active staff (conftest)."""

STAFF = ("staff_0012", "sp_0031", "staff_0077", "lo_dh_01")
"""The people the tests' tokens name: the home station's liaison officers, and (by
:func:`cast`) representatives, spokespersons, street supervisors, department staff and
community commissioners; an account role is given by ``known`` where a test needs one."""


def cast(district: str = DISTRICT) -> list[Event]:
    """:data:`STAFF` in every role the directory lists (but the district office), and
    the district administrator ``admin_01``, as routing would publish them."""
    roles = (
        Role.REPRESENTATIVE,
        Role.SPOKESPERSON,
        Role.STREET_SUPERVISOR,
        Role.DEPARTMENT,
        Role.COMMUNITY_COMMISSIONER,
    )
    people = [(person, role) for person in STAFF for role in roles]
    return staff_events(
        district,
        [*people, ("admin_01", Role.DISTRICT_ADMIN)],
        station=STATION,
        street=("zgc", "中关村街道"),
    )


def directory_events(district: str = DISTRICT) -> list[Event]:
    """A district with a home station, a community station, one representative and its
    taxonomy, and the staff of :func:`cast`."""
    return [
        DistrictRegistered(
            district_id=district,
            occurred_at=now(),
            actor=ADMIN,
            name_zh="示范区",
            name_en="Demo District",
        ),
        StationRegistered(
            district_id=district,
            occurred_at=now(),
            actor=ADMIN,
            station_code=STATION,
            name_zh="中关村街道人大代表之家",
            kind=StationKind.HOME,
            street_code="zgc",
            street_name_zh="中关村街道",
            communities=["中关村南路社区", "科育社区"],
            address="中关村南大街12号",
            position=LatLong(lat=39.9601, long=116.3229),
            star_rating=4,
            liaison_officers=list(STAFF),
        ),
        StationRegistered(
            district_id=district,
            occurred_at=now(),
            actor=ADMIN,
            station_code=COMMUNITY_STATION,
            name_zh="科育社区代表联络站",
            kind=StationKind.COMMUNITY,
            street_code="zgc",
            communities=["科育社区"],
        ),
        RepresentativeRegistered(
            district_id=district,
            occurred_at=now(),
            actor=ADMIN,
            representative_id=REPRESENTATIVE,
            name_zh="李建华",
            level=RepresentativeLevel.DISTRICT,
        ),
        RepresentativeJoinedStation(
            district_id=district,
            occurred_at=now(),
            actor=ADMIN,
            representative_id=REPRESENTATIVE,
            station_code=STATION,
        ),
        taxonomy_published(district=district),
        *cast(district),
    ]


async def publish(store: EventStore, consumer: Consumer, events: Sequence[Event]) -> None:
    """Append each event to its stream and apply it with ``consumer``, as from Kafka."""
    for event in events:
        await store.append(event.stream_id, [Envelope.wrap(event)])
        stored = (await store.read_stream(event.stream_id))[-1]
        await consumer.apply(stored.envelope())


def case_events(
    case_id: str, opinion_id: str, *, district: str = DISTRICT, start: datetime | None = None
) -> dict[str, CaseEvent]:
    """The usual life of a case, by name, minute by minute from ``start`` (an hour ago)."""
    start = start or now() - timedelta(hours=1)
    common: dict[str, Any] = {"district_id": district, "case_id": case_id}
    return {
        "opened": CaseOpened(
            **common,
            occurred_at=start,
            actor=ROUTING,
            opinion_id=opinion_id,
            category_code="municipal.street_light",
            priority=Priority.NORMAL,
            response_due=start + timedelta(days=1),
            resolution_due=start + timedelta(days=15),
        ),
        "assigned": CaseAssigned(
            **common,
            occurred_at=start + timedelta(minutes=1),
            actor=ROUTING,
            station_code=STATION,
            representative_id=REPRESENTATIVE,
            queue="representative",
            reason="代表居住在该社区",
        ),
        "accepted": CaseAccepted(
            **common,
            occurred_at=start + timedelta(minutes=2),
            actor=Actor(id=REPRESENTATIVE, role=ActorRole.REPRESENTATIVE),
        ),
        "replied": CaseReplied(
            **common,
            occurred_at=start + timedelta(minutes=3),
            actor=LIAISON,
            message="已联系街道城管办，本周五前检修，联系人电话13800001111。",
        ),
        "resolved": CaseResolved(
            **common,
            occurred_at=start + timedelta(minutes=4),
            actor=LIAISON,
            resolution_seq=1,
            result="三盏路灯已更换为LED灯具",
            evidence_urls=["https://files.example.cn/after.jpg"],
        ),
        "closed": CaseClosed(
            **common, occurred_at=start + timedelta(minutes=5), actor=LIAISON, note="回访满意"
        ),
        "reopened": CaseReopened(
            **common,
            occurred_at=start + timedelta(minutes=6),
            actor=LIAISON,
            reason="修好两天后又不亮了",
        ),
        "resolved_again": CaseResolved(
            **common,
            occurred_at=start + timedelta(minutes=7),
            actor=LIAISON,
            resolution_seq=2,
            result="更换了损坏的线路",
        ),
    }


def token(
    settings: Settings, role: Role, district: str = DISTRICT, subject: str = "staff_0012"
) -> str:
    """A staff token's Authorization header value."""
    return "Bearer " + issue_token(settings, role=role, district_id=district, subject=subject)


def opinion_body(**overrides: Any) -> dict[str, Any]:
    """A valid QR submission."""
    body: dict[str, Any] = {
        "channel": "qr",
        "station_code": STATION,
        "text": "小区东门的三盏路灯坏了三个多月，晚上老人出门很不方便。",
        "category_hint": "municipal.street_light",
        "location": {
            "community": "中关村南路社区",
            "address": "东门",
            "lat": 39.9621,
            "long": 116.3245,
        },
    }
    body.update(overrides)
    return body
