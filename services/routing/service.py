"""The application layer: load a case, decide, append its events and update the read
models, in one transaction.

Entry points (Kafka handlers, HTTP routes, the scanner, the CLI) only translate their
input and call a method here. Every method that writes runs in a transaction that
appends the events through the store and updates the projections with them; a lost
race (another writer moved the stream) is retried from a fresh read.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter

from contracts import registry
from contracts.base import Actor, ActorRole, Event
from contracts.cases import CaseEvent, CaseOverdue, Priority
from contracts.directory import (
    RepresentativeLeftStation,
    RepresentativeRetired,
    RoutingPolicyPublished,
    StationRetired,
)
from contracts.envelope import Envelope, Metadata
from contracts.intake import FeedbackSubmitted, OpinionSubmitted, OpinionWithdrawn
from eventkit.db import Conn
from eventkit.logging import get_logger
from eventkit.store import (
    ANY_VERSION,
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventIdError,
    EventStore,
    OrderingConflict,
    retrying,
)
from services.routing import projections
from services.routing.assignment import (
    Assignment,
    Matter,
    Place,
    StationChoice,
    assign,
    choose_station,
    community_of,
)
from services.routing.classification import (
    Classification,
    Classifier,
    Segmenter,
    Taxonomy,
    higher,
)
from services.routing.deadlines import Allowance, Due, WorkCalendar
from services.routing.directory import Directory, Station
from services.routing.district_file import DirectoryChanges, DistrictConfig, Plan, plan_changes
from services.routing.domain import (
    ALLOWED,
    SYSTEM,
    Accept,
    CaseState,
    CaseStatus,
    Classify,
    Close,
    Command,
    ConvertToSuggestion,
    Escalate,
    IllegalTransition,
    Link,
    LinkCase,
    Merge,
    OpenCase,
    OverdueRules,
    Reopen,
    Reply,
    Resolve,
    Rung,
    StaleFeedback,
    Transfer,
    TransferToDistrict,
    Withdraw,
    decide,
    evolve,
    fold,
    overdue_events,
)
from services.routing.duplicates import (
    BANDS,
    CaseFacts,
    bands,
    bounding_box,
    find_related,
    simhash,
)

log = get_logger(__name__)

NAMESPACE = uuid.UUID("6f1d3c2a-9a4e-5b8e-8c1f-6d696e71696e")
"""Namespace of the routing service's deterministic ids (cases, events)."""

RETRYABLE = (ConcurrencyError, OrderingConflict, DuplicateEventIdError)
"""Lost races: read again, decide again."""

CASES_OPENED = Counter(
    "minqing_routing_cases_opened_total",
    "Cases opened from opinions",
    ["district", "queue", "priority"],
)
DEADLINES_MISSED = Counter(
    "minqing_routing_deadlines_missed_total",
    "Missed deadlines recorded (CaseOverdue)",
    ["district", "deadline", "level"],
)
SCAN_FAILURES = Counter(
    "minqing_routing_overdue_scan_failures_total",
    "Cases the overdue scanner could not handle (tried again on the next scan)",
    ["district"],
)


def case_id_for(district_id: str, opinion_id: str) -> str:
    """The case of an opinion: one opinion, one case, whoever handles it and how often."""
    return uuid.uuid5(NAMESPACE, f"case:{district_id}:{opinion_id}").hex[:20]


def overdue_event_id(case_id: str, kind: str, due: datetime, ordinal: int) -> uuid.UUID:
    """One id per missed deadline, whoever notices it: the store keeps one event.

    ``ordinal`` is how many deadlines of the case were missed before this one, so that
    two deadlines of the same kind due at the same moment still get two ids.
    """
    moment = due.astimezone(UTC).isoformat()
    return uuid.uuid5(NAMESPACE, f"overdue:{case_id}:{ordinal}:{kind}:{moment}")


def default_policy(district_id: str) -> RoutingPolicyPublished:
    """The policy of a district that has published none."""
    return RoutingPolicyPublished(
        district_id=district_id,
        occurred_at=datetime(2000, 1, 1, tzinfo=UTC),
        actor=SYSTEM,
        version=1,
    )


# --------------------------------------------------------------------------- errors


class RoutingError(Exception):
    """A request the service refuses, with words for people (zh-CN and English)."""

    status = 422
    code = "routing-error"

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


class CaseNotFound(RoutingError):
    """No such case in the caller's district (another district's case is "not found")."""

    status = 404
    code = "case-not-found"


class UnknownDistrict(RoutingError):
    """The district is not registered in the directory."""

    status = 404
    code = "district-not-found"


class DirectoryNotFound(RoutingError):
    """No such station or representative."""

    status = 404
    code = "not-found"


class Conflict(RoutingError):
    """The case kept changing under us: try again."""

    status = 409
    code = "conflict"


# --------------------------------------------------------------------------- district


@dataclass(frozen=True)
class DistrictContext:
    """What routing needs to know about one district, cached by its directory version."""

    version: int
    config: DistrictConfig
    taxonomy: Taxonomy | None
    classifier: Classifier | None
    calendar: WorkCalendar
    policy: RoutingPolicyPublished

    @property
    def directory(self) -> Directory:
        """The district's directory."""
        return self.config.directory

    def classify(self, text: str, hint: str | None) -> Classification:
        """Classification with the district's taxonomy (none published: no category)."""
        if self.classifier is None:
            return Classification(None, (), Priority.NORMAL, ())
        return self.classifier.classify(text, hint)

    def deadlines(
        self, category: str | None, priority: Priority, start: datetime
    ) -> tuple[Due, Due]:
        """Response and resolution deadlines of a matter received at ``start``."""
        if self.taxonomy is not None:
            pair = self.taxonomy.deadlines(category, priority)
            response, resolution = pair.response, pair.resolution
        else:
            response, resolution = "2wd", "15wd"
        return self.calendar.add(start, response), self.calendar.add(start, resolution)

    def expertise(self, category: str | None) -> frozenset[str]:
        """Expertise tags fitting a category."""
        return self.taxonomy.expertise(category) if self.taxonomy else frozenset()

    def today(self, now: datetime) -> date:
        """The district's local date at ``now``."""
        return self.calendar.local(now).date()

    def rules(self, state: CaseState) -> OverdueRules:
        """The escalation ladder of a case (its station's head, its street…)."""
        d = self.directory
        station = d.stations.get(state.station_code) if state.station_code else None
        street = d.streets.get(station.street_code) if station else None
        rungs: list[Rung] = []
        for level in self.policy.escalation_ladder:
            if level == "station_head":
                # Nobody to tell if the station has no head, and no point telling the
                # representative who missed the deadline: the street is next.
                head_id = station.head_representative_id if station else None
                head = d.representatives.get(head_id) if head_id else None
                if station is not None and head is not None and head_id != state.representative_id:
                    rungs.append(Rung(level, f"{station.name_zh}站长{head.name_zh}"))
            elif level == "street" and street is not None:
                rungs.append(Rung(level, street.committee))
            elif level == "district":
                rungs.append(Rung(level, f"{d.name_zh}人大常委会"))
        if not rungs:
            rungs.append(Rung("district", f"{d.name_zh}人大常委会"))
        supervision = Allowance.parse(self.policy.supervision)
        calendar = self.calendar
        return OverdueRules(tuple(rungs), lambda due: calendar.add(due, supervision).at)


@dataclass(frozen=True)
class Step:
    """The moment a command is built: its transaction, district, case and time."""

    conn: Conn
    ctx: DistrictContext
    state: CaseState
    now: datetime
    actor: Actor


CommandBuilder = Callable[[Step], Awaitable[Command]]
AfterSave = Callable[[Step, CaseState, list[CaseEvent]], Awaitable[None]]


def utc_now() -> datetime:
    """The current time (the default clock)."""
    return datetime.now(UTC)


class RoutingService:
    """Routing's use cases over one database pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        *,
        segmenter: Segmenter,
        clock: Callable[[], datetime] = utc_now,
        max_attempts: int = 6,
    ) -> None:
        self._pool = pool
        self._store = store
        self._segmenter = segmenter
        self._clock = clock
        self._max_attempts = max_attempts
        self._contexts: dict[str, DistrictContext] = {}

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool the service uses."""
        return self._pool

    @property
    def store(self) -> EventStore:
        """The event store the service appends to."""
        return self._store

    def now(self) -> datetime:
        """The service's clock."""
        return self._clock()

    # ----------------------------------------------------------------- district context

    async def context(self, conn: Conn, district_id: str) -> DistrictContext | None:
        """The district's context, rebuilt only when its directory version moved."""
        version = await projections.config_version(conn, district_id)
        return await self._context_at(conn, district_id, version)

    async def _context_at(
        self, conn: Conn, district_id: str, version: int | None
    ) -> DistrictContext | None:
        if version is None:
            return None
        cached = self._contexts.get(district_id)
        if cached is not None and cached.version == version:
            return cached
        loaded = await projections.load_config(conn, district_id)
        if loaded is None:
            return None
        version, config = loaded
        taxonomy = Taxonomy(config.taxonomy) if config.taxonomy else None
        classifier = Classifier(taxonomy, self._segmenter) if taxonomy else None
        timezone = config.directory.timezone
        if config.calendar is not None:
            calendar = WorkCalendar.from_years(
                config.calendar.years,
                timezone=timezone,
                opens=config.calendar.office_opens,
                closes=config.calendar.office_closes,
            )
        else:
            calendar = WorkCalendar.from_years((), timezone=timezone)
        ctx = DistrictContext(
            version=version,
            config=config,
            taxonomy=taxonomy,
            classifier=classifier,
            calendar=calendar,
            policy=config.policy or default_policy(district_id),
        )
        self._contexts[district_id] = ctx
        return ctx

    async def require_context(self, conn: Conn, district_id: str) -> DistrictContext:
        """The district's context, or :class:`UnknownDistrict`."""
        ctx = await self.context(conn, district_id)
        if ctx is None:
            raise UnknownDistrict(
                f"区 {district_id} 未登记", f"district {district_id} is not registered"
            )
        return ctx

    # ----------------------------------------------------------------- directory

    async def change_directory(
        self,
        district_id: str,
        changes: DirectoryChanges,
        actor: Actor,
        *,
        retire_missing: bool = False,
    ) -> Plan:
        """Apply a description of (part of) a district: emit and project the differences."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            now = self._clock()
            tz = current.directory.timezone if current else "Asia/Shanghai"
            if changes.district is not None:
                tz = changes.district.timezone
            today = WorkCalendar.from_years((), timezone=tz).local(now).date()
            result = plan_changes(
                current,
                changes,
                district_id=district_id,
                actor=actor,
                now=now,
                today=today,
                retire_missing=retire_missing,
            )
            summary.update(result.summary)
            return result.events

        summary: dict[str, int] = {}
        events = await self._directory_transaction(district_id, plan)
        return Plan(list(events), summary)

    async def retire_station(
        self, district_id: str, station_code: str, reason: str | None, actor: Actor
    ) -> None:
        """Close a station; its history and its cases stay."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            station = current.directory.stations.get(station_code) if current else None
            if station is None:
                raise DirectoryNotFound(
                    f"联络站 {station_code} 不存在", f"no station {station_code}"
                )
            if not station.active:
                return []
            return [
                StationRetired(
                    district_id=district_id,
                    occurred_at=self._clock(),
                    actor=actor,
                    station_code=station_code,
                    reason=reason,
                )
            ]

        await self._directory_transaction(district_id, plan)

    async def retire_representative(
        self, district_id: str, representative_id: str, reason: str | None, actor: Actor
    ) -> None:
        """End a representative's service: they leave their stations, history stays."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            rep = current.directory.representatives.get(representative_id) if current else None
            if rep is None:
                raise DirectoryNotFound(
                    f"代表 {representative_id} 不存在", f"no representative {representative_id}"
                )
            if not rep.active:
                return []
            now = self._clock()
            base: dict[str, Any] = {
                "district_id": district_id,
                "occurred_at": now,
                "actor": actor,
                "representative_id": representative_id,
            }
            events: list[Event] = [
                RepresentativeLeftStation(**base, station_code=code)
                for code in sorted(rep.stations)
            ]
            events.append(RepresentativeRetired(**base, reason=reason))
            return events

        await self._directory_transaction(district_id, plan)

    async def _directory_transaction(
        self,
        district_id: str,
        plan: Callable[[Conn, DistrictConfig | None], Awaitable[Sequence[Event]]],
    ) -> Sequence[Event]:
        async with self._pool.acquire() as conn, conn.transaction():
            # One directory change at a time per district: each plan sees the last one's
            # result, and every append finds its stream's head older than itself.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('routing.directory'), hashtext($1))",
                district_id,
            )
            loaded = await projections.load_config(conn, district_id)
            events = await plan(conn, loaded[1] if loaded else None)
            if not events:
                return events
            metadata = Metadata(correlation_id=str(uuid.uuid4()))
            for stream_id, group in _by_stream(events):
                await self._store.append(
                    stream_id,
                    [Envelope.wrap(e, metadata) for e in group],
                    expected_version=ANY_VERSION,
                    conn=conn,
                )
            await projections.project_directory(conn, events)
        log.info("directory changed", district=district_id, events=len(events))
        return events

    # ----------------------------------------------------------------- cases from opinions

    async def open_case(
        self, opinion: OpinionSubmitted, envelope: Envelope, conn: Conn
    ) -> CaseState | None:
        """Turn an opinion into a classified, assigned case (None if it already is one)."""
        district_id = opinion.district_id
        case_id = case_id_for(district_id, opinion.opinion_id)
        now = self._clock()
        # Everything the database must tell about a new case comes in one round trip,
        # asked with the cached directory; if that turns out to be stale, ask again.
        ctx = self._contexts.get(district_id)
        while True:
            opening = _Opening.plan(ctx, opinion, case_id, now) if ctx is not None else None
            row = await conn.fetchrow(
                _OPENING_QUERY, district_id, f"case-{case_id}", *_opening_args(ctx, opening)
            )
            assert row is not None
            if row["opened"]:
                log.info("the opinion already has its case", case_id=case_id)
                return None
            if ctx is not None and opening is not None and ctx.version == row["v"]:
                break
            ctx = await self._context_at(conn, district_id, row["v"])
            if ctx is None:
                raise UnknownDistrict(
                    f"区 {district_id} 未登记", f"district {district_id} is not registered"
                )
        assert ctx is not None
        assert opening is not None
        assignment = assign(
            ctx.directory,
            opening.choice,
            opening.matter,
            classified=opening.classified,
            open_cases=row["loads"] or {},
            policy=ctx.policy,
        )
        candidates = [
            CaseFacts(
                c[0],
                c[1],
                c[2],
                (c[3], c[4]) if c[3] is not None and c[4] is not None else None,
                c[5],
                datetime.fromtimestamp(c[6], UTC),
                text_candidate=c[7],
            )
            for c in row["candidates"] or []
        ]
        related = find_related(opening.facts_for_duplicates, candidates, ctx.policy, now)
        classification = opening.classification
        response, resolution = ctx.deadlines(
            classification.category_code, classification.priority, opinion.occurred_at
        )
        command = OpenCase(
            actor=SYSTEM,
            now=now,
            case_id=case_id,
            district_id=district_id,
            opinion_id=opinion.opinion_id,
            category_code=classification.category_code,
            matched_keywords=classification.matched_keywords,
            priority=classification.priority,
            priority_keywords=classification.priority_keywords,
            hint_matched=classification.hint_matched,
            response_due=response,
            resolution_due=resolution,
            assignment=assignment,
            related=tuple(Link(r.case_id, r.relation, r.reason) for r in related),
            taxonomy_version=ctx.taxonomy.version if ctx.taxonomy else None,
        )
        events = decide(None, command)
        metadata = Metadata(
            correlation_id=envelope.metadata.correlation_id or str(envelope.event_id),
            causation_id=str(envelope.event_id),
        )
        state = await self._save(
            conn,
            None,
            events,
            _ids(events, f"{envelope.event_id}"),
            metadata,
            opening.facts,
            opening.fingerprint,
        )
        CASES_OPENED.labels(district_id, assignment.queue, classification.priority.value).inc()
        log.info(
            "case opened",
            case_id=case_id,
            category=classification.category_code,
            priority=classification.priority.value,
            queue=assignment.queue,
            station=assignment.station_code,
            representative=assignment.representative_id,
        )
        return state

    async def _assign(
        self,
        conn: Conn,
        ctx: DistrictContext,
        choice: StationChoice,
        classification: Classification,
        community: Any,
        now: datetime,
    ) -> Assignment:
        station = choice.station
        workloads: dict[str, int] = {}
        if station is not None:
            workloads = await self._workloads(conn, ctx, station)
        matter = Matter(
            community=community,
            expertise=ctx.expertise(classification.category_code),
            priority=classification.priority,
            today=ctx.today(now),
        )
        return assign(
            ctx.directory,
            choice,
            matter,
            classified=classification.category_code is not None
            or classification.priority is Priority.URGENT,
            open_cases=workloads,
            policy=ctx.policy,
        )

    async def _workloads(
        self, conn: Conn, ctx: DistrictContext, station: Station
    ) -> dict[str, int]:
        ids = [r.id for r in ctx.directory.candidates_at(station.code)]
        if not ids:
            return {}
        rows = await conn.fetch(
            "SELECT representative_id, open_cases FROM routing.representatives "
            "WHERE district_id = $1 AND representative_id = ANY($2::text[])",
            ctx.directory.district_id,
            ids,
        )
        return {r["representative_id"]: r["open_cases"] for r in rows}

    async def on_feedback(
        self, feedback: FeedbackSubmitted, envelope: Envelope, conn: Conn
    ) -> None:
        """Record a rating; an unhappy or unsolved one reopens the case (same representative)."""
        state = await self._load(conn, feedback.case_id)
        if state is None or state.district_id != feedback.district_id:
            raise CaseNotFound(
                f"反馈所指案件 {feedback.case_id} 不存在",
                f"feedback for unknown case {feedback.case_id}",
            )
        await projections.record_feedback(conn, feedback)
        if feedback.satisfaction > 2 and feedback.resolved:
            return
        ctx = await self.require_context(conn, feedback.district_id)
        now = self._clock()
        reason = (
            f"居民评价不满意（满意度 {feedback.satisfaction}/5）"
            if feedback.satisfaction <= 2
            else "居民反映问题未解决"
        )
        if not feedback.resolved and feedback.satisfaction <= 2:
            reason += "，且问题未解决"
        reason += " / the resident is not satisfied or the matter is not solved"
        _, resolution = ctx.deadlines(state.category_code, state.priority, now)
        command = Reopen(
            actor=Actor(id=feedback.actor.id, role=ActorRole.RESIDENT),
            now=now,
            reason=reason,
            resolution_due=resolution,
            for_resolution=feedback.resolution_seq,
        )
        try:
            await self._decide_and_save(
                conn, ctx, state, command, str(envelope.event_id), _metadata(envelope)
            )
        except (StaleFeedback, IllegalTransition) as exc:
            log.info("feedback does not reopen the case", case_id=state.case_id, why=str(exc))

    async def on_withdrawn(
        self, withdrawn: OpinionWithdrawn, envelope: Envelope, conn: Conn
    ) -> None:
        """The resident withdrew the opinion: the case carrying it is closed, if still open.

        A case transferred to another district is followed there: the new case carries
        the work. A case merged into another is not followed: the case it was merged
        into carries other residents' opinions, so one withdrawal does not close it.
        """
        case_id = case_id_for(withdrawn.district_id, withdrawn.opinion_id)
        state = await self._load(conn, case_id)
        if state is None:
            log.info("withdrawn opinion had no case", opinion_id=withdrawn.opinion_id)
            return
        seen = {case_id}
        while state.transferred_to is not None:
            to_case_id = state.transferred_to[1]
            following = await self._load(conn, to_case_id) if to_case_id else None
            if following is None or to_case_id in seen:
                break
            seen.add(to_case_id)
            state = following
        case_id = state.case_id
        if state.merged_into is not None:
            log.info("withdrawn opinion's case was merged", case_id=case_id)
            return
        ctx = await self.require_context(conn, state.district_id)
        command = Withdraw(
            actor=Actor(id=withdrawn.actor.id, role=ActorRole.RESIDENT), now=self._clock()
        )
        try:
            await self._decide_and_save(
                conn, ctx, state, command, str(envelope.event_id), _metadata(envelope)
            )
        except IllegalTransition:
            log.info("withdrawn opinion's case is already done", case_id=case_id)

    # ----------------------------------------------------------------- staff commands

    async def execute(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        build: CommandBuilder,
        *,
        after: AfterSave | None = None,
        command: str | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> CaseState:
        """Run a staff command on a case of ``district_id``; lost races are retried.

        ``command`` names it, so that a command the case's status does not allow is
        refused before anything else is checked. With an ``idempotency_key``, a request
        repeated after success changes nothing and returns the case as it is.
        """
        source = f"{idempotency_key}:{case_id}" if idempotency_key else None
        metadata = Metadata(correlation_id=correlation_id, causation_id=source)

        async def attempt() -> CaseState:
            async with self._pool.acquire() as conn, conn.transaction():
                state = await self._load(conn, case_id)
                if state is None or state.district_id != district_id:
                    raise CaseNotFound(f"案件 {case_id} 不存在", f"no case {case_id}")
                if source is not None and await self._event_exists(conn, source):
                    return state
                if command is not None and state.status not in ALLOWED[command]:
                    raise IllegalTransition(command, state.status)
                ctx = await self.require_context(conn, district_id)
                now = self._clock()
                rules = ctx.rules(state)
                overdue = overdue_events(state, now, rules)
                current = fold(overdue, state)
                assert current is not None
                asked = await build(Step(conn, ctx, current, now, actor))
                events = [*overdue, *decide(current, asked)]
                saved = await self._save(
                    conn,
                    state,
                    events,
                    _ids(events, source or uuid.uuid4().hex, state.overdue_count),
                    metadata,
                )
                if after is not None:
                    await after(Step(conn, ctx, saved, now, actor), saved, events)
                return saved

        try:
            return await retrying(attempt, on=RETRYABLE, attempts=self._max_attempts)
        except RETRYABLE as exc:
            raise Conflict(
                "案件正被他人同时处理，请稍后重试",
                "the case is being changed by someone else; please retry",
            ) from exc

    async def _decide_and_save(
        self,
        conn: Conn,
        ctx: DistrictContext,
        state: CaseState,
        command: Command,
        source: str,
        metadata: Metadata,
    ) -> CaseState:
        overdue = overdue_events(state, command.now, ctx.rules(state))
        current = fold(overdue, state)
        assert current is not None
        events = [*overdue, *decide(current, command)]
        return await self._save(
            conn, state, events, _ids(events, source, state.overdue_count), metadata
        )

    async def accept(self, district_id: str, case_id: str, actor: Actor, **kw: Any) -> CaseState:
        """报到."""

        async def build(step: Step) -> Command:
            return Accept(actor=actor, now=step.now)

        return await self.execute(district_id, case_id, actor, build, command="accept", **kw)

    async def reply(
        self, district_id: str, case_id: str, actor: Actor, message: str, **kw: Any
    ) -> CaseState:
        """Answer the resident."""

        async def build(step: Step) -> Command:
            return Reply(actor=actor, now=step.now, message=message)

        return await self.execute(district_id, case_id, actor, build, command="reply", **kw)

    async def resolve(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        result: str,
        evidence_urls: Sequence[str] = (),
        **kw: Any,
    ) -> CaseState:
        """办结: the result and its evidence."""

        async def build(step: Step) -> Command:
            return Resolve(
                actor=actor, now=step.now, result=result, evidence_urls=tuple(evidence_urls)
            )

        return await self.execute(district_id, case_id, actor, build, command="resolve", **kw)

    async def close(
        self, district_id: str, case_id: str, actor: Actor, note: str | None = None, **kw: Any
    ) -> CaseState:
        """核实结项."""

        async def build(step: Step) -> Command:
            return Close(actor=actor, now=step.now, note=note)

        return await self.execute(district_id, case_id, actor, build, command="close", **kw)

    async def reopen(
        self, district_id: str, case_id: str, actor: Actor, reason: str, **kw: Any
    ) -> CaseState:
        """Back to work with a new resolution deadline (staff's decision)."""

        async def build(step: Step) -> Command:
            _, resolution = step.ctx.deadlines(
                step.state.category_code, step.state.priority, step.now
            )
            return Reopen(actor=actor, now=step.now, reason=reason, resolution_due=resolution)

        return await self.execute(district_id, case_id, actor, build, command="reopen", **kw)

    async def escalate(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        *,
        to_level: str,
        to_name: str,
        reason: str,
        due: datetime | None = None,
        due_in: str | None = None,
        **kw: Any,
    ) -> CaseState:
        """吹哨: summon a department (or a level) with a deadline of its own."""

        async def build(step: Step) -> Command:
            when = due
            if when is None:
                allowance = due_in or step.ctx.policy.escalation_default
                when = step.ctx.calendar.add(step.now, allowance).at
            return Escalate(
                actor=actor,
                now=step.now,
                to_level=to_level,
                to_name=to_name,
                due=when,
                reason=reason,
            )

        return await self.execute(district_id, case_id, actor, build, command="escalate", **kw)

    async def convert(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        *,
        title: str,
        representative_id: str | None = None,
        reply_due: datetime | None = None,
        **kw: Any,
    ) -> CaseState:
        """转代表建议: the matter becomes a representative suggestion with a reply deadline."""

        async def build(step: Step) -> Command:
            if representative_id is not None:
                self._active_representative(step.ctx, representative_id)
            when = reply_due or step.ctx.calendar.add(step.now, step.ctx.policy.suggestion_reply).at
            return ConvertToSuggestion(
                actor=actor,
                now=step.now,
                title=title,
                representative_id=representative_id,
                reply_due=when,
            )

        return await self.execute(district_id, case_id, actor, build, command="convert", **kw)

    async def classify(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        *,
        reason: str,
        category_code: str | None = None,
        priority: Priority | None = None,
        **kw: Any,
    ) -> CaseState:
        """Set the category and/or the priority (staff override); a triaged case is routed."""

        async def build(step: Step) -> Command:
            state, ctx = step.state, step.ctx
            category = category_code or state.category_code
            if category_code is not None and (
                ctx.taxonomy is None or category_code not in ctx.taxonomy.categories
            ):
                raise RoutingError(
                    f"分类 {category_code} 不存在", f"no category {category_code} in the taxonomy"
                )
            level = priority
            if level is None:
                # A new category may raise the priority (safety is important), never lower
                # it: lowering is a decision staff state explicitly.
                own = ctx.taxonomy.category(category) if ctx.taxonomy else None
                changed = own is not None and category != state.category_code
                level = higher(state.priority, own.priority) if own and changed else state.priority
            response, resolution = ctx.deadlines(category, level, step.now)
            assignment = None
            if state.status is CaseStatus.TRIAGE and state.station_code is not None:
                station = ctx.directory.active_station(state.station_code)
                if station is not None:
                    choice = StationChoice(station, "triage", f"分拣后分派：{station.name_zh}")
                    assignment = await self._assign(
                        step.conn,
                        ctx,
                        choice,
                        Classification(category, (), level, ()),
                        await self._community_of_case(step.conn, ctx, state),
                        step.now,
                    )
            return Classify(
                actor=actor,
                now=step.now,
                category_code=category,
                priority=level,
                reason=reason,
                response_due=response,
                resolution_due=resolution,
                assignment=assignment,
            )

        return await self.execute(district_id, case_id, actor, build, command="classify", **kw)

    async def transfer(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        *,
        reason: str,
        to_representative_id: str | None = None,
        to_station_code: str | None = None,
        to_district_id: str | None = None,
        **kw: Any,
    ) -> CaseState:
        """转办: to a representative, a station, or another district (a case of its own)."""
        if to_district_id is not None and to_district_id != district_id:
            return await self._transfer_out(
                district_id, case_id, actor, to_district_id, to_station_code, reason, **kw
            )

        async def build(step: Step) -> Command:
            ctx, state = step.ctx, step.state
            station_code = to_station_code
            assignment = None
            if station_code is not None:
                station = ctx.directory.active_station(station_code)
                if station is None:
                    raise DirectoryNotFound(
                        f"联络站 {station_code} 不存在或已撤销",
                        f"no active station {station_code}",
                    )
            if to_representative_id is not None:
                rep = self._active_representative(ctx, to_representative_id)
                if station_code is None:
                    here = state.station_code
                    if here is None or (here not in rep.stations and rep.contact_point != here):
                        station_code = min(rep.stations) if rep.stations else rep.contact_point
            elif station_code is not None:
                station = ctx.directory.active_station(station_code)
                assert station is not None
                choice = StationChoice(station, "transfer", f"转办至{station.name_zh}")
                assignment = await self._assign(
                    step.conn,
                    ctx,
                    choice,
                    Classification(state.category_code, (), state.priority, ()),
                    await self._community_of_case(step.conn, ctx, state),
                    step.now,
                )
            return Transfer(
                actor=actor,
                now=step.now,
                to_station_code=station_code,
                to_representative_id=to_representative_id,
                reason=reason,
                assignment=assignment,
            )

        return await self.execute(district_id, case_id, actor, build, command="transfer", **kw)

    async def _transfer_out(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        to_district_id: str,
        to_station_code: str | None,
        reason: str,
        **kw: Any,
    ) -> CaseState:
        new_case_id = uuid.uuid5(NAMESPACE, f"transfer:{case_id}:{to_district_id}").hex[:20]

        async def build(step: Step) -> Command:
            target = await self.context(step.conn, to_district_id)
            if target is None:
                raise UnknownDistrict(
                    f"区 {to_district_id} 未登记", f"district {to_district_id} is not registered"
                )
            if (
                to_station_code is not None
                and target.directory.active_station(to_station_code) is None
            ):
                raise DirectoryNotFound(
                    f"{to_district_id} 没有联络站 {to_station_code}",
                    f"no active station {to_station_code} in {to_district_id}",
                )
            if await self._stream_exists(step.conn, new_case_id):
                raise RoutingError(
                    f"案件已转至 {to_district_id}", f"already transferred to {to_district_id}"
                )
            return TransferToDistrict(
                actor=actor,
                now=step.now,
                to_district_id=to_district_id,
                to_case_id=new_case_id,
                reason=reason,
            )

        async def after(step: Step, saved: CaseState, events: list[CaseEvent]) -> None:
            target = await self.require_context(step.conn, to_district_id)
            row = await step.conn.fetchrow(
                "SELECT channel, text, community, address, lat, long FROM routing.cases "
                "WHERE case_id = $1",
                case_id,
            )
            assert row is not None
            point = (row["lat"], row["long"]) if row["lat"] is not None else None
            facts = projections.OpinionFacts(
                row["channel"], row["text"], row["community"], row["address"], point
            )
            classification = target.classify(facts.text, None)
            place = Place(to_station_code, facts.community, point)
            choice = choose_station(target.directory, place)
            community = community_of(target.directory, place)
            assignment = await self._assign(
                step.conn, target, choice, classification, community, step.now
            )
            response, resolution = target.deadlines(
                classification.category_code, classification.priority, step.now
            )
            command = OpenCase(
                actor=actor,
                now=step.now,
                case_id=new_case_id,
                district_id=to_district_id,
                opinion_id=saved.opinion_id,
                category_code=classification.category_code,
                matched_keywords=classification.matched_keywords,
                priority=classification.priority,
                priority_keywords=classification.priority_keywords,
                response_due=response,
                resolution_due=resolution,
                assignment=assignment,
                taxonomy_version=target.taxonomy.version if target.taxonomy else None,
                transferred_from=(district_id, case_id),
            )
            opened = decide(None, command)
            await self._save(
                step.conn,
                None,
                opened,
                _ids(opened, f"transfer:{case_id}:{to_district_id}"),
                Metadata(causation_id=case_id),
                facts,
            )

        return await self.execute(
            district_id, case_id, actor, build, after=after, command="transfer", **kw
        )

    async def merge(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        *,
        into_case_id: str,
        reason: str,
        **kw: Any,
    ) -> CaseState:
        """并案: this case duplicates ``into_case_id``; the other case records the merge."""

        async def build(step: Step) -> Command:
            target = await self._load(step.conn, into_case_id)
            if target is None or target.district_id != district_id:
                raise CaseNotFound(f"案件 {into_case_id} 不存在", f"no case {into_case_id}")
            if target.status in (CaseStatus.MERGED, CaseStatus.TRANSFERRED_OUT):
                raise RoutingError(
                    f"案件 {into_case_id} 已并案或转出", f"case {into_case_id} is no longer here"
                )
            return Merge(actor=actor, now=step.now, into_case_id=into_case_id, reason=reason)

        async def after(step: Step, saved: CaseState, events: list[CaseEvent]) -> None:
            target = await self._load(step.conn, into_case_id)
            assert target is not None
            command = LinkCase(
                actor=actor, now=step.now, related_case_id=case_id, relation="merged", reason=reason
            )
            linked = decide(target, command)
            if linked:
                await self._save(
                    step.conn, target, linked, _ids(linked, f"merge:{case_id}"), Metadata()
                )

        return await self.execute(
            district_id, case_id, actor, build, after=after, command="merge", **kw
        )

    async def link(
        self,
        district_id: str,
        case_id: str,
        actor: Actor,
        *,
        related_case_id: str,
        relation: str,
        reason: str,
        **kw: Any,
    ) -> CaseState:
        """Record by hand that two cases belong together."""

        async def build(step: Step) -> Command:
            other = await self._load(step.conn, related_case_id)
            if other is None or other.district_id != district_id:
                raise CaseNotFound(f"案件 {related_case_id} 不存在", f"no case {related_case_id}")
            return LinkCase(
                actor=actor,
                now=step.now,
                related_case_id=related_case_id,
                relation=relation,
                reason=reason,
            )

        return await self.execute(district_id, case_id, actor, build, command="link", **kw)

    def _active_representative(self, ctx: DistrictContext, representative_id: str) -> Any:
        rep = ctx.directory.representatives.get(representative_id)
        if rep is None or not rep.active:
            raise DirectoryNotFound(
                f"代表 {representative_id} 不存在或已离任",
                f"no active representative {representative_id}",
            )
        return rep

    async def _community_of_case(self, conn: Conn, ctx: DistrictContext, state: CaseState) -> Any:
        row = await conn.fetchrow(
            "SELECT community, lat, long FROM routing.cases WHERE case_id = $1", state.case_id
        )
        if row is None:
            return None
        point = (row["lat"], row["long"]) if row["lat"] is not None else None
        return community_of(ctx.directory, Place(None, row["community"], point))

    # ----------------------------------------------------------------- overdue

    async def scan_overdue(self, now: datetime | None = None, *, batch: int = 200) -> int:
        """Record every missed deadline up to ``now``; return how many were recorded.

        Safe to run in several processes at once: each missed deadline has one event id.
        """
        moment = now or self._clock()
        recorded = 0
        seen: set[str] = set()
        while True:
            rows = await self._pool.fetch(
                "SELECT case_id, district_id FROM routing.cases "
                "WHERE is_open AND next_due <= $1 AND NOT (case_id = ANY($2::text[])) "
                "ORDER BY next_due LIMIT $3",
                moment,
                sorted(seen),
                batch,
            )
            for row in rows:
                seen.add(row["case_id"])
                try:
                    recorded += await self._record_overdue(
                        row["district_id"], row["case_id"], moment
                    )
                except Exception as exc:
                    # One case must not stop the others; the next scan tries it again.
                    # Only ids and the error's type are logged: no resident's words.
                    SCAN_FAILURES.labels(row["district_id"]).inc()
                    log.error(
                        "overdue scan of a case failed",
                        case_id=row["case_id"],
                        district_id=row["district_id"],
                        error=type(exc).__name__,
                    )
            if len(rows) < batch:
                return recorded

    async def _record_overdue(self, district_id: str, case_id: str, now: datetime) -> int:
        async def attempt() -> int:
            async with self._pool.acquire() as conn, conn.transaction():
                state = await self._load(conn, case_id)
                if state is None:
                    return 0
                ctx = await self.require_context(conn, district_id)
                events = overdue_events(state, now, ctx.rules(state))
                if not events:
                    await projections.update_case(conn, state)
                    return 0
                appended = await self._save(
                    conn,
                    state,
                    list(events),
                    _ids(events, "scanner", state.overdue_count),
                    Metadata(),
                )
                if appended.version == state.version:
                    return 0  # another scanner recorded the very same events first
                for event in events:
                    DEADLINES_MISSED.labels(
                        district_id, event.deadline, event.escalation_level or ""
                    ).inc()
                    log.warning(
                        "deadline missed",
                        case_id=case_id,
                        deadline=event.deadline,
                        due=event.due.isoformat(),
                        escalated_to=event.escalated_to,
                    )
                return len(events)

        return await retrying(attempt, on=RETRYABLE, attempts=self._max_attempts)

    # ----------------------------------------------------------------- storage

    async def load_case(self, case_id: str) -> CaseState | None:
        """The case as its stream describes it (None when there is no such case)."""
        async with self._pool.acquire() as conn:
            return await self._load(conn, case_id)

    async def case_in(self, conn: Conn, case_id: str) -> CaseState | None:
        """The case as its stream describes it, read in ``conn``."""
        return await self._load(conn, case_id)

    async def _load(self, conn: Conn, case_id: str) -> CaseState | None:
        records = await self._store.read_stream(f"case-{case_id}", conn=conn)
        state: CaseState | None = None
        for record in records:
            event = record.envelope().event(registry)
            assert isinstance(event, CaseEvent)
            state = evolve(state, event)
        return state

    async def _stream_exists(self, conn: Conn, case_id: str) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM eventstore.events WHERE stream_id = $1)",
                f"case-{case_id}",
            )
        )

    async def _event_exists(self, conn: Conn, source: str) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM eventstore.events WHERE event_id = $1)",
                _command_event_id(source, 0),
            )
        )

    async def _save(
        self,
        conn: Conn,
        before: CaseState | None,
        events: list[CaseEvent],
        ids: list[uuid.UUID],
        metadata: Metadata,
        facts: projections.OpinionFacts | None = None,
        fingerprint: int | None = None,
    ) -> CaseState:
        """Append ``events`` to the case's stream and update its row, in ``conn``.

        Returns the case after them (``before`` when they were stored already).
        """
        if not events:
            assert before is not None
            return before
        case_id = events[0].case_id
        envelopes = [
            Envelope.wrap(e, metadata, event_id=i) for e, i in zip(events, ids, strict=True)
        ]
        result = await self._store.append(
            f"case-{case_id}",
            envelopes,
            expected_version=before.version if before else NO_STREAM,
            conn=conn,
        )
        if result.duplicate and before is not None:
            # The very same events were stored by someone else (two scanners): nothing
            # was appended here, and the writer that did updated the row.
            return before
        after = fold(events, before)
        assert after is not None
        if before is None:
            assert facts is not None
            await projections.insert_case(conn, after, facts, fingerprint)
        else:
            await projections.update_case(conn, after)
        await projections.add_links(conn, events)
        return after


@dataclass(frozen=True)
class _Opening:
    """What a new case needs that the cached directory can tell without the database."""

    classification: Classification
    choice: StationChoice
    matter: Matter
    facts: projections.OpinionFacts
    text: str
    fingerprint: int
    facts_for_duplicates: CaseFacts
    candidates: tuple[str, ...]
    """Representatives whose workload scoring needs."""

    @property
    def classified(self) -> bool:
        """Whether the case can go to a representative (a category, or urgent)."""
        c = self.classification
        return c.category_code is not None or c.priority is Priority.URGENT

    @classmethod
    def plan(
        cls, ctx: DistrictContext, opinion: OpinionSubmitted, case_id: str, now: datetime
    ) -> _Opening:
        """Classify and place the opinion with the district's context."""
        classification = ctx.classify(opinion.text, opinion.category_hint)
        facts = projections.OpinionFacts.of(opinion)
        place = Place(opinion.location.station_code, opinion.location.community, facts.point)
        choice = choose_station(ctx.directory, place)
        community = community_of(ctx.directory, place)
        text = facts.normalised
        station = choice.station
        return cls(
            classification=classification,
            choice=choice,
            matter=Matter(
                community=community,
                expertise=ctx.expertise(classification.category_code),
                priority=classification.priority,
                today=ctx.today(now),
            ),
            facts=facts,
            text=text,
            fingerprint=simhash(text),
            facts_for_duplicates=CaseFacts(
                case_id,
                classification.category_code,
                community.name if community else None,
                facts.point,
                text,
                now,
            ),
            candidates=tuple(r.id for r in ctx.directory.candidates_at(station.code))
            if station is not None
            else (),
        )


_OPENING_QUERY = """
WITH recent AS NOT MATERIALIZED (
    SELECT * FROM routing.cases
     WHERE $4 AND district_id = $1 AND is_open AND opened_at >= to_timestamp($13)
       AND case_id <> $20
), by_text AS (
    (SELECT * FROM recent WHERE band0 = $5 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band1 = $6 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band2 = $7 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band3 = $8 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band4 = $9 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band5 = $10 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band6 = $11 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band7 = $12 ORDER BY opened_at DESC LIMIT 10)
), by_place AS (
    (SELECT * FROM recent WHERE category_code = $14 AND community = $15
      ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE category_code = $14
             AND lat BETWEEN $16 AND $17 AND long BETWEEN $18 AND $19
           ORDER BY opened_at DESC LIMIT 10)
), found AS (
    SELECT case_id, category_code, community, lat, long, text_norm, opened_at,
           bool_or(by_text) AS shares_band
      FROM (SELECT *, true AS by_text FROM by_text
            UNION ALL SELECT *, false FROM by_place) c
     GROUP BY case_id, category_code, community, lat, long, text_norm, opened_at
)
SELECT (SELECT config_version FROM routing.districts WHERE district_id = $1) AS v,
       EXISTS (SELECT 1 FROM eventstore.events WHERE stream_id = $2) AS opened,
       (SELECT jsonb_object_agg(representative_id, open_cases) FROM routing.representatives
         WHERE district_id = $1 AND representative_id = ANY($3::text[])) AS loads,
       (SELECT jsonb_agg(jsonb_build_array(case_id, category_code, community, lat, long,
                         text_norm, extract(epoch FROM opened_at), shares_band))
          FROM found) AS candidates
"""
"""For a new case: the directory version, whether the case exists, the candidates'
workloads, and the open cases it may duplicate or relate to (see duplicates.py)."""


def _opening_args(ctx: DistrictContext | None, opening: _Opening | None) -> list[Any]:
    if ctx is None or opening is None:
        return [[], False, *([0] * BANDS), 0.0, None, None, None, None, None, None, ""]
    policy = ctx.policy
    new = opening.facts_for_duplicates
    box = bounding_box(new.point, policy.duplicate_radius_m) if new.point else None
    return [
        list(opening.candidates),
        True,
        *bands(opening.fingerprint),
        new.opened_at.timestamp() - policy.duplicate_window_days * 86400,
        new.category_code,
        new.community,
        *(box if box else (None, None, None, None)),
        new.case_id,
    ]


def _command_event_id(source: str, index: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"event:{source}:{index}")


def _ids(events: Sequence[CaseEvent], source: str, overdue_before: int = 0) -> list[uuid.UUID]:
    """Event ids: one per missed deadline for ``CaseOverdue``, else derived from the source
    (the message or request that caused them), so that a retry cannot emit twice.

    ``overdue_before`` is the case's count of missed deadlines before ``events``.
    """
    ids: list[uuid.UUID] = []
    index = 0
    missed = overdue_before
    for event in events:
        if isinstance(event, CaseOverdue):
            ids.append(overdue_event_id(event.case_id, event.deadline, event.due, missed))
            missed += 1
        else:
            ids.append(_command_event_id(source, index))
            index += 1
    return ids


def _metadata(envelope: Envelope) -> Metadata:
    return Metadata(
        correlation_id=envelope.metadata.correlation_id or str(envelope.event_id),
        causation_id=str(envelope.event_id),
    )


def _by_stream(events: Sequence[Event]) -> list[tuple[str, list[Event]]]:
    """Events grouped by stream, each group in order, streams in order of first event."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event.stream_id, []).append(event)
    return list(groups.items())
