"""Histories of a district for the reporting tests: events with the moment the store
recorded them.

The store stamps ``recorded_at`` itself (``clock_timestamp()`` in its insert trigger), so
a test that needs events recorded at chosen moments (a case at 23:30 on 31 March in
Shanghai) appends them as routing and intake would, in the order of those moments, and
then moves their ``recorded_at`` with :func:`backdate`: a superuser session with
triggers off (``session_replication_role = replica``), in the test's own database only.
The hash chain no longer verifies afterwards; nothing here checks it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from contracts import (
    Actor,
    ActorRole,
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseMerged,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    CommunityRegistered,
    DistrictRegistered,
    FeedbackSubmitted,
    Priority,
    RepresentativeJoinedStation,
    RepresentativeRegistered,
    StationRegistered,
    StreetRegistered,
    TaxonomyCategory,
    TaxonomyPublished,
)
from contracts.base import Event
from contracts.directory import DeadlinePair, PriorityDeadlines
from contracts.envelope import Envelope
from eventkit.store import EventStore, RecordedEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROUTING = Actor(id="routing", role=ActorRole.SYSTEM)
ADMIN = Actor(id="admin_demo", role=ActorRole.DISTRICT_ADMIN)


def local(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> datetime:
    """A moment in Shanghai."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@dataclass
class History:
    """Events of one or more districts, each with the moment it is to be recorded."""

    events: list[tuple[datetime, Event]] = field(default_factory=list)

    def add(self, at: datetime, event: Event) -> None:
        self.events.append((at, event))

    # ------------------------------------------------------------------ directory

    def district(
        self,
        at: datetime,
        district: str,
        name: str,
        streets: dict[str, tuple[str, list[str], list[str]]],
        stations: list[tuple[str, str, str, str, int | None, list[str]]],
        representatives: list[tuple[str, str, str, str]],
        categories: list[tuple[str, str, str]],
    ) -> None:
        """A district: ``streets`` code → (name, supervisors, communities); ``stations``
        (code, name, kind, street, stars, liaison officers); ``representatives`` (id,
        name, level, station); ``categories`` (code, zh, en)."""
        tick = iter(range(10_000))

        def t() -> datetime:
            return at + timedelta(seconds=next(tick))

        self.add(
            t(),
            DistrictRegistered(
                district_id=district,
                occurred_at=at,
                actor=ADMIN,
                name_zh=name,
                name_en=name,
                timezone="Asia/Shanghai",
            ),
        )
        for code, (street_name, supervisors, communities) in streets.items():
            self.add(
                t(),
                StreetRegistered(
                    district_id=district,
                    occurred_at=at,
                    actor=ADMIN,
                    street_code=code,
                    name_zh=street_name,
                    supervisors=supervisors,
                ),
            )
            for community in communities:
                self.add(
                    t(),
                    CommunityRegistered(
                        district_id=district,
                        occurred_at=at,
                        actor=ADMIN,
                        community=community,
                        street_code=code,
                    ),
                )
        pair = DeadlinePair(response="1d", resolution="5d")
        self.add(
            t(),
            TaxonomyPublished(
                district_id=district,
                occurred_at=at,
                actor=ADMIN,
                version=1,
                categories=[
                    TaxonomyCategory(code=code, name_zh=zh, name_en=en, keywords=[zh])
                    for code, zh, en in categories
                ],
                default_deadlines=PriorityDeadlines(normal=pair, important=pair, urgent=pair),
            ),
        )
        for code, station_name, kind, street, stars, liaison in stations:
            self.add(
                t(),
                StationRegistered(
                    district_id=district,
                    occurred_at=at,
                    actor=ADMIN,
                    station_code=code,
                    name_zh=station_name,
                    kind=kind,
                    street_code=street,
                    star_rating=stars,
                    liaison_officers=liaison,
                ),
            )
        for rep, rep_name, level, station in representatives:
            self.add(
                t(),
                RepresentativeRegistered(
                    district_id=district,
                    occurred_at=at,
                    actor=ADMIN,
                    representative_id=rep,
                    name_zh=rep_name,
                    level=level,
                ),
            )
            self.add(
                t(),
                RepresentativeJoinedStation(
                    district_id=district,
                    occurred_at=at,
                    actor=ADMIN,
                    representative_id=rep,
                    station_code=station,
                ),
            )

    # ------------------------------------------------------------------ cases

    def case(
        self,
        case_id: str,
        at: datetime,
        *,
        district: str = "demo",
        category: str | None = None,
        community: str | None = None,
        street: str | None = None,
        station: str | None = None,
        representative: str | None = None,
        channel: str = "qr",
        transferred_from: str | None = None,
    ) -> Case:
        """A case opened (and assigned, when a station is given) at ``at``."""
        opened = CaseOpened(
            district_id=district,
            occurred_at=at,
            actor=ROUTING,
            case_id=case_id,
            opinion_id="op_" + case_id,
            category_code=category,
            priority=Priority.NORMAL,
            response_due=at + timedelta(days=1),
            resolution_due=at + timedelta(days=5),
            channel=channel,
            community=community,
            street_code=street,
            transferred_from_district_id=transferred_from,
            transferred_from_case_id=("c_from" if transferred_from else None),
        )
        self.add(at, opened)
        c = Case(self, case_id, district)
        if station is not None:
            queue = "representative" if representative else "liaison"
            c.event(
                at + timedelta(seconds=1),
                CaseAssigned,
                station_code=station,
                representative_id=representative,
                queue=queue,
                reason="按社区分派",
            )
        else:
            c.event(
                at + timedelta(seconds=1),
                CaseAssigned,
                station_code=None,
                representative_id=None,
                queue="triage",
                reason="无法确定联络站",
            )
        return c

    def ordered(self) -> list[tuple[datetime, Event]]:
        """The events in the order of their moments (stable for equal moments)."""
        return sorted(self.events, key=lambda pair: pair[0])


@dataclass
class Case:
    """The events of one case, added to its history."""

    history: History
    case_id: str
    district: str
    resolutions: int = 0
    overdue: int = 0

    def event(self, at: datetime, kind: type[Event], **data: Any) -> Case:
        actor = data.pop("actor", Actor(id="staff", role=ActorRole.LIAISON))
        self.history.add(
            at,
            kind(
                district_id=self.district, occurred_at=at, actor=actor, case_id=self.case_id, **data
            ),
        )
        return self

    def accept(self, at: datetime) -> Case:
        return self.event(at, CaseAccepted)

    def reply(self, at: datetime, message: str = "已联系相关部门，正在处理") -> Case:
        return self.event(at, CaseReplied, message=message)

    def missed(self, at: datetime, deadline: str) -> Case:
        """A ``CaseOverdue`` recorded at ``at`` (its ``occurred_at`` is the deadline)."""
        self.overdue += 1
        self.history.add(
            at,
            CaseOverdue(
                district_id=self.district,
                occurred_at=at - timedelta(hours=1),
                actor=ROUTING,
                case_id=self.case_id,
                deadline=deadline,
                due=at - timedelta(hours=1),
                escalation_level="street",
                escalated_to="街道工委",
            ),
        )
        return self

    def escalate(self, at: datetime, to_name: str = "城管执法队") -> Case:
        return self.event(
            at, CaseEscalated, to_level="department", to_name=to_name, reason="需要职能部门处理"
        )

    def resolve(self, at: datetime, result: str = "已修复") -> Case:
        self.resolutions += 1
        return self.event(at, CaseResolved, resolution_seq=self.resolutions, result=result)

    def close(self, at: datetime) -> Case:
        return self.event(at, CaseClosed, note="核实完毕")

    def withdraw(self, at: datetime) -> Case:
        return self.event(at, CaseClosed, withdrawn=True, note="居民撤回")

    def reopen(self, at: datetime, representative: str | None = None) -> Case:
        return self.event(
            at,
            CaseReopened,
            reason="居民不满意",
            representative_id=representative,
            resolution_due=at + timedelta(days=5),
        )

    def transfer(self, at: datetime, station: str, representative: str | None) -> Case:
        return self.event(
            at,
            CaseTransferred,
            to_station_code=station,
            to_representative_id=representative,
            reason="更适合的代表",
        )

    def transfer_out(self, at: datetime, district: str, case_id: str) -> Case:
        return self.event(
            at, CaseTransferred, to_district_id=district, to_case_id=case_id, reason="属外区事项"
        )

    def merge(self, at: datetime, into: str) -> Case:
        return self.event(at, CaseMerged, into_case_id=into, reason="重复反映")

    def convert(self, at: datetime, representative: str, title: str) -> Case:
        return self.event(
            at,
            CaseConvertedToSuggestion,
            representative_id=representative,
            title=title,
            reply_due=at + timedelta(days=90),
        )

    def rate(self, at: datetime, satisfaction: int, resolved: bool = True) -> Case:
        """The resident's feedback on the latest resolution (an intake event)."""
        self.history.add(
            at,
            FeedbackSubmitted(
                district_id=self.district,
                occurred_at=at,
                actor=Actor(id="subj_x", role=ActorRole.RESIDENT),
                opinion_id="op_" + self.case_id,
                case_id=self.case_id,
                resolution_seq=self.resolutions,
                satisfaction=satisfaction,
                resolved=resolved,
                comment="王女士说谢谢",
            ),
        )
        return self


# ---------------------------------------------------------------------- storing


async def store_history(
    store: EventStore, superuser_url: str | None, events: Iterable[tuple[datetime, Event]]
) -> list[RecordedEvent]:
    """Append the events in order, then (given the superuser's URL) move each one's
    ``recorded_at`` to its moment; the stored events, in the store's order."""
    moments: dict[uuid.UUID, datetime] = {}
    for at, event in events:
        envelope = Envelope.wrap(event)
        await store.append(event.stream_id, [envelope])
        moments[envelope.event_id] = at
    if superuser_url is not None:
        await backdate(superuser_url, moments)
    return await read_everything(store)


async def backdate(superuser_url: str, moments: dict[uuid.UUID, datetime]) -> None:
    """Set the ``recorded_at`` of stored events (test databases only: see the module)."""
    conn = await asyncpg.connect(superuser_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(
                "UPDATE eventstore.events e SET recorded_at = m.at "
                "FROM unnest($1::uuid[], $2::timestamptz[]) AS m(id, at) WHERE e.event_id = m.id",
                list(moments),
                list(moments.values()),
            )
    finally:
        await conn.close()


async def read_everything(store: EventStore) -> list[RecordedEvent]:
    """Every stored event, in the store's order."""
    return [e async for e in store.iterate_all(batch_size=5000)]


def interleaved(events: list[RecordedEvent], seed: int) -> list[RecordedEvent]:
    """The events as a consumer of several topics and partitions may meet them: each
    stream in order, streams shuffled against each other."""
    rng = random.Random(seed)
    queues: dict[str, list[RecordedEvent]] = {}
    for e in events:
        queues.setdefault(e.stream_id, []).append(e)
    streams = list(queues)
    out: list[RecordedEvent] = []
    while streams:
        stream = rng.choice(streams)
        out.append(queues[stream].pop(0))
        if not queues[stream]:
            streams.remove(stream)
    return out


def random_cases(history: History, n: int, seed: int, start: datetime) -> None:
    """``n`` cases of district ``demo`` (the March directory) with the usual mix: most
    resolved and closed, some late, reopened, transferred, merged, withdrawn, converted."""
    rng = random.Random(seed)
    stations = [
        ("dh_donghu", "r1", "东湖社区", "dh"),
        ("dh_home", "r2", "湖滨社区", "dh"),
        ("xs_home", "r3", "西山社区", "xs"),
        ("xs_home", "r4", "西山社区", "xs"),
    ]
    categories = ["property", "env", "road"]
    for i in range(n):
        at = start + timedelta(minutes=37 * i + rng.randint(0, 30))
        station, rep, community, street = rng.choice(stations)
        c = history.case(
            f"R{i:04d}",
            at,
            category=rng.choice(categories),
            station=station,
            representative=rep,
            community=community,
            street=street,
        )
        t = at + timedelta(hours=1)
        roll = rng.random()
        if roll < 0.05:
            c.merge(t, "R0000")
            continue
        if roll < 0.08:
            c.withdraw(t)
            continue
        if roll < 0.15:
            c.missed(at + timedelta(days=1), "response")
            t = at + timedelta(days=1, hours=2)
        if roll > 0.95:
            other = rng.choice([s for s in stations if s[1] != rep])
            c.transfer(t, other[0], other[1])
            t += timedelta(minutes=5)
        c.accept(t)
        if rng.random() < 0.05:
            c.convert(t + timedelta(hours=3), rep, "关于改善社区设施的建议")
            continue
        c.reply(t + timedelta(hours=2))
        days = rng.randint(1, 6)
        if days > 4:
            c.missed(at + timedelta(days=5), "resolution")
        c.resolve(t + timedelta(days=days, hours=1))
        if rng.random() < 0.7:
            c.rate(t + timedelta(days=7), rng.randint(1, 5))
        if rng.random() < 0.1:
            c.reopen(t + timedelta(days=7, minutes=1))
            c.resolve(t + timedelta(days=9))
        c.close(t + timedelta(days=10))
