"""Following a case: its progress from the case events, the resident's timeline, the
Open311 views of it, and the feedback once it is resolved.

Routing's case events reference the opinion only through ``CaseOpened.opinion_id``; the
handlers keep ``intake.cases`` (case id → opinion, progress) and one row per event in
``intake.case_steps``, both written in the consumer's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from contracts import (
    CaseAccepted,
    CaseAssigned,
    CaseClassified,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseLinked,
    CaseMerged,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
)
from contracts.base import Event
from contracts.cases import CaseEvent
from contracts.envelope import Envelope, Metadata
from eventkit.consumer import Consumer, HandlerContext, PermanentError
from eventkit.db import Conn
from eventkit.logging import get_logger
from eventkit.store import ANY_VERSION, EventStore, OrderingConflict, retrying
from services.intake.directory import SHANGHAI, Directory
from services.intake.domain import (
    FeedbackState,
    GiveFeedback,
    IntakeError,
    WithdrawalState,
    decide_feedback,
    decide_withdrawal,
    format_tracking_code,
    normalise_tracking_code,
)
from services.intake.opinions import (
    OpinionRecord,
    columns,
    opinion_by_tracking_code,
    record_from_row,
)
from services.intake.progress import (
    CLOSED_STAGES,
    STAGE_WORDS,
    CaseProgress,
    Names,
    NotOpened,
    Stage,
    Step,
    describe,
    evolve,
    open311_status,
)
from services.intake.taxonomy import TaxonomySource

log = get_logger(__name__)

CASE_EVENTS: Final[tuple[type[CaseEvent], ...]] = (
    CaseOpened,
    CaseClassified,
    CaseMerged,
    CaseAssigned,
    CaseAccepted,
    CaseTransferred,
    CaseEscalated,
    CaseReplied,
    CaseResolved,
    CaseClosed,
    CaseReopened,
    CaseOverdue,
    CaseLinked,
    CaseConvertedToSuggestion,
)

CHANNEL_WORDS: Final[dict[str, tuple[str, str]]] = {
    "qr": ("扫描民情码", "QR code"),
    "walk_in": ("到站当面反映", "in person at a station"),
    "spokesperson": ("群众代言员代为反映", "through a citizen spokesperson"),
    "visit": ("代表走访收集", "on a representative's visit"),
    "hotline_12345": ("12345热线派发", "dispatched by the 12345 hotline"),
    "online": ("网上提交", "online"),
    "open311": ("Open311 接口", "Open311"),
}

_FEEDBACK_NAMESPACE: Final = uuid.UUID("3f0e9d1c-8b7a-4c6d-9e5f-1a2b3c4d5e6f")
_WITHDRAWAL_NAMESPACE: Final = uuid.UUID("8d2c4b6a-1e3f-4a5b-8c7d-9e0f1a2b3c4d")


# --- the projection -------------------------------------------------------------------


async def _on_case_event(event: CaseEvent, ctx: HandlerContext) -> None:
    row = await ctx.conn.fetchrow(
        "SELECT progress FROM intake.cases WHERE case_id = $1 FOR UPDATE", event.case_id
    )
    before = CaseProgress.from_json(row["progress"]) if row is not None else None
    try:
        progress, step = evolve(before, event, str(ctx.envelope.event_id))
    except NotOpened as exc:
        raise PermanentError(str(exc)) from exc
    await ctx.conn.execute(
        """
        INSERT INTO intake.cases (case_id, opinion_id, district_id, stage, open311_status,
            category_code, progress, opened_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (case_id) DO UPDATE
           SET stage = excluded.stage, open311_status = excluded.open311_status,
               category_code = excluded.category_code, progress = excluded.progress,
               updated_at = excluded.updated_at
        """,
        progress.case_id,
        progress.opinion_id,
        progress.district_id,
        progress.stage.value,
        open311_status(progress.stage),
        progress.category_code,
        progress.to_json(),
        progress.opened_at,
        progress.updated_at,
    )
    await ctx.conn.execute(
        """
        INSERT INTO intake.case_steps (event_id, case_id, opinion_id, district_id,
            stream_version, occurred_at, step)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING
        """,
        ctx.envelope.event_id,
        progress.case_id,
        progress.opinion_id,
        progress.district_id,
        ctx.envelope.stream_version,
        step.at,
        step.to_json(),
    )


def register_case_handlers(consumer: Consumer) -> None:
    """Teach ``consumer`` to follow every case event."""
    for model in CASE_EVENTS:
        consumer.handles(model)(_on_case_event)


# --- reading ----------------------------------------------------------------------------


class TrackingNotFound(IntakeError):
    """No opinion has this tracking code (or it is not one): the same answer for both."""

    status = 404

    def __init__(self) -> None:
        super().__init__(
            "tracking-code-not-found",
            "查询码不存在",
            "Unknown tracking code",
            "请核对查询码（12 位字母和数字，不区分大小写）",
            "Check the code: 12 letters and digits, case does not matter",
        )


@dataclass(frozen=True)
class FeedbackGiven:
    """A rating the resident gave."""

    case_id: str
    resolution_seq: int
    satisfaction: int
    resolved: bool
    comment: str | None
    submitted_at: datetime


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline, in plain words."""

    at: datetime
    kind: str
    status: str
    text_zh: str
    text_en: str


@dataclass(frozen=True)
class Tracking:
    """Everything the tracking page shows."""

    opinion: OpinionRecord
    progress: CaseProgress | None
    entries: tuple[TimelineEntry, ...]
    feedback: tuple[FeedbackGiven, ...]
    station_name: str | None
    category: tuple[str, str] | None
    names: Names

    @property
    def stage(self) -> Stage:
        """Where the matter stands."""
        return stage_of(self.opinion, self.progress)

    @property
    def withdrawal_open(self) -> bool:
        """Whether the resident may still withdraw the matter."""
        return self.opinion.withdrawn_at is None and self.stage not in CLOSED_STAGES

    @property
    def feedback_open(self) -> bool:
        """Whether a rating may be given now."""
        progress = self.progress
        return (
            progress is not None
            and progress.resolved
            and all(f.resolution_seq != progress.resolution_seq for f in self.feedback)
        )

    def to_json(self) -> dict[str, Any]:
        """The tracking view for ``GET /api/v1/track/<code>``."""
        opinion, progress = self.opinion, self.progress
        zh, en = STAGE_WORDS[self.stage]
        tz = self.names.timezone
        return {
            "tracking_code": format_tracking_code(opinion.tracking_code),
            "opinion_id": opinion.opinion_id,
            "district": opinion.district_id,
            "channel": opinion.channel,
            "submitted_at": opinion.submitted_at.astimezone(tz).isoformat(),
            "text": opinion.text,
            "station": (
                {"code": opinion.station_code, "name_zh": self.station_name}
                if opinion.station_code
                else None
            ),
            "category": (
                {
                    "code": progress.category_code if progress else opinion.category_hint,
                    "name_zh": self.category[0],
                    "name_en": self.category[1],
                }
                if self.category
                else None
            ),
            "status": {
                "stage": self.stage.value,
                "label_zh": zh,
                "label_en": en,
                "open311_status": open311_status(self.stage),
            },
            "case_id": progress.case_id if progress else None,
            "resolution_due": (
                progress.resolution_due.astimezone(tz).isoformat()
                if progress and progress.resolution_due
                else None
            ),
            "timeline": [
                {
                    "at": e.at.astimezone(tz).isoformat(),
                    "kind": e.kind,
                    "status": e.status,
                    "text_zh": e.text_zh,
                    "text_en": e.text_en,
                }
                for e in self.entries
            ],
            "withdrawal": {
                "open": self.withdrawal_open,
                "withdrawn_at": (
                    opinion.withdrawn_at.astimezone(tz).isoformat()
                    if opinion.withdrawn_at
                    else None
                ),
            },
            "feedback": {
                "open": self.feedback_open,
                "resolution_seq": progress.resolution_seq if progress else 0,
                "given": [
                    {
                        "resolution_seq": f.resolution_seq,
                        "satisfaction": f.satisfaction,
                        "resolved": f.resolved,
                        "comment": f.comment,
                        "submitted_at": f.submitted_at.astimezone(tz).isoformat(),
                    }
                    for f in self.feedback
                ],
            },
        }


def stage_of(opinion: OpinionRecord, progress: CaseProgress | None) -> Stage:
    """Where an opinion stands: its case's stage, or withdrawn before a case closed it."""
    stage = progress.stage if progress is not None else Stage.SUBMITTED
    if opinion.withdrawn_at is not None and stage not in CLOSED_STAGES:
        return Stage.WITHDRAWN
    return stage


async def latest_case(conn: asyncpg.Pool | Conn, opinion_id: str) -> CaseProgress | None:
    """The most recent case opened for an opinion (normally its only one)."""
    row = await conn.fetchrow(
        "SELECT progress FROM intake.cases WHERE opinion_id = $1 ORDER BY opened_at DESC LIMIT 1",
        opinion_id,
    )
    return None if row is None else CaseProgress.from_json(row["progress"])


def _feedback(row: asyncpg.Record) -> FeedbackGiven:
    return FeedbackGiven(
        row["case_id"],
        row["resolution_seq"],
        row["satisfaction"],
        row["resolved"],
        row["comment"],
        row["submitted_at"],
    )


class TrackingService:
    """Tracking views and feedback."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        store: EventStore,
        directory: Directory,
        taxonomy: TaxonomySource,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._store = store
        self._directory = directory
        self._taxonomy = taxonomy
        self._clock = clock

    async def names(
        self,
        district_id: str,
        station_codes: Sequence[str | None],
        representative_ids: Sequence[str | None],
        *,
        also: Sequence[str] = (),
    ) -> Names:
        """The names needed to tell a district's cases in plain words (``also``: other
        districts involved, when a case was transferred to one)."""
        stations, reps = await self._directory.names(
            [district_id, *also],
            [c for c in station_codes if c],
            [r for r in representative_ids if r],
        )
        district = await self._directory.district(district_id)
        return Names(
            stations=stations,
            representatives=reps,
            categories=(await self._taxonomy.for_district(district_id)).names(),
            districts=await self._directory.district_names(),
            timezone=district.timezone if district else SHANGHAI,
        )

    async def opinion(self, raw_code: str) -> OpinionRecord:
        """The opinion of a tracking code, or :class:`TrackingNotFound`."""
        code = normalise_tracking_code(raw_code)
        record = await opinion_by_tracking_code(self._pool, code) if code else None
        if record is None:
            raise TrackingNotFound()
        return record

    async def track(self, raw_code: str) -> Tracking:
        """The tracking view of a code."""
        opinion = await self.opinion(raw_code)
        progress = await latest_case(self._pool, opinion.opinion_id)
        rows = await self._pool.fetch(
            "SELECT step FROM intake.case_steps WHERE opinion_id = $1 "
            "ORDER BY occurred_at, stream_version",
            opinion.opinion_id,
        )
        steps = [Step.from_json(r["step"]) for r in rows]
        feedback = [
            _feedback(r)
            for r in await self._pool.fetch(
                "SELECT * FROM intake.feedback WHERE opinion_id = $1 ORDER BY submitted_at",
                opinion.opinion_id,
            )
        ]
        names = await self.names(
            opinion.district_id,
            [opinion.station_code, *(s.station_code for s in steps)],
            [s.representative_id for s in steps],
            also=[progress.district_id] if progress else [],
        )
        channel_zh, channel_en = CHANNEL_WORDS.get(
            opinion.channel, (opinion.channel, opinion.channel)
        )
        entries = [
            TimelineEntry(
                opinion.submitted_at,
                "Submitted",
                "open",
                f"已提交（{channel_zh}）",
                f"Submitted ({channel_en})",
            )
        ]
        for step in steps:
            zh, en = describe(step, names)
            entries.append(TimelineEntry(step.at, step.kind, step.status.value, zh, en))
        if opinion.withdrawn_at is not None:
            reason = f"：{opinion.withdraw_reason}" if opinion.withdraw_reason else ""
            reason_en = f": {opinion.withdraw_reason}" if opinion.withdraw_reason else ""
            entries.append(
                TimelineEntry(
                    opinion.withdrawn_at,
                    "OpinionWithdrawn",
                    "closed",
                    f"您已撤回此事项{reason}",
                    f"You withdrew this matter{reason_en}",
                )
            )
        for given in feedback:
            verdict_zh = "问题已解决" if given.resolved else "问题未解决"
            verdict_en = "solved" if given.resolved else "not solved"
            entries.append(
                TimelineEntry(
                    given.submitted_at,
                    "FeedbackSubmitted",
                    "closed" if given.resolved else "open",
                    f"您已评价：满意度 {given.satisfaction}/5，{verdict_zh}",
                    f"You rated it {given.satisfaction}/5, {verdict_en}",
                )
            )
        entries.sort(key=lambda e: e.at)
        category_code = (progress.category_code if progress else None) or opinion.category_hint
        return Tracking(
            opinion=opinion,
            progress=progress,
            entries=tuple(entries),
            feedback=tuple(feedback),
            station_name=names.stations.get(opinion.station_code or ""),
            category=names.categories.get(category_code or ""),
            names=names,
        )

    async def give_feedback(
        self, raw_code: str, command: GiveFeedback, *, metadata: Metadata | None = None
    ) -> FeedbackGiven:
        """Record the resident's rating of the current resolution, once."""
        opinion = await self.opinion(raw_code)
        return await retrying(
            lambda: self._give_feedback_once(opinion, command, metadata), on=(OrderingConflict,)
        )

    async def _give_feedback_once(
        self, opinion: OpinionRecord, command: GiveFeedback, metadata: Metadata | None
    ) -> FeedbackGiven:
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            # Locking the case row serialises feedback on one case.
            row = await conn.fetchrow(
                "SELECT progress FROM intake.cases WHERE opinion_id = $1 "
                "ORDER BY opened_at DESC LIMIT 1 FOR UPDATE",
                opinion.opinion_id,
            )
            progress = CaseProgress.from_json(row["progress"]) if row else None
            rated = await conn.fetch(
                "SELECT resolution_seq FROM intake.feedback WHERE case_id = $1",
                progress.case_id if progress else "",
            )
            state = FeedbackState(
                opinion_id=opinion.opinion_id,
                district_id=opinion.district_id,
                case_id=progress.case_id if progress else None,
                resolved=progress.resolved if progress else False,
                resolution_seq=progress.resolution_seq if progress else 0,
                rated=frozenset(r["resolution_seq"] for r in rated),
                subject_id=opinion.subject_id,
            )
            event = decide_feedback(state, command, now=now)
            event_id = uuid.uuid5(_FEEDBACK_NAMESPACE, f"{event.case_id}\n{event.resolution_seq}")
            await self._append(conn, event, event_id, metadata)
            await conn.execute(
                """
                INSERT INTO intake.feedback (case_id, resolution_seq, opinion_id, event_id,
                    satisfaction, resolved, comment, submitted_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                """,
                event.case_id,
                event.resolution_seq,
                event.opinion_id,
                event_id,
                event.satisfaction,
                event.resolved,
                event.comment,
                event.occurred_at,
            )
        log.info(
            "feedback accepted",
            opinion_id=opinion.opinion_id,
            case_id=event.case_id,
            resolution_seq=event.resolution_seq,
            district=opinion.district_id,
        )
        return FeedbackGiven(
            event.case_id,
            event.resolution_seq,
            event.satisfaction,
            event.resolved,
            event.comment,
            event.occurred_at,
        )

    async def withdraw(
        self, raw_code: str, reason: str | None, *, metadata: Metadata | None = None
    ) -> datetime:
        """Take the opinion back while it is not handled yet; when it was withdrawn."""
        opinion = await self.opinion(raw_code)
        return await retrying(
            lambda: self._withdraw_once(opinion.opinion_id, reason, metadata),
            on=(OrderingConflict,),
        )

    async def _withdraw_once(
        self, opinion_id: str, reason: str | None, metadata: Metadata | None
    ) -> datetime:
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            # Locking the opinion's row serialises withdrawal and feedback on it.
            row = await conn.fetchrow(
                f"SELECT {columns('o')} FROM intake.opinions o WHERE o.opinion_id = $1 FOR UPDATE",
                opinion_id,
            )
            assert row is not None
            opinion = record_from_row(row)
            progress = await latest_case(conn, opinion_id)
            state = WithdrawalState(
                opinion_id=opinion_id,
                district_id=opinion.district_id,
                withdrawn=opinion.withdrawn_at is not None,
                finished=stage_of(opinion, progress) in CLOSED_STAGES,
                subject_id=opinion.subject_id,
            )
            event = decide_withdrawal(state, reason, now=now)
            await self._append(conn, event, uuid.uuid5(_WITHDRAWAL_NAMESPACE, opinion_id), metadata)
            await conn.execute(
                "UPDATE intake.opinions SET withdrawn_at = $2, withdraw_reason = $3 "
                "WHERE opinion_id = $1",
                opinion_id,
                event.occurred_at,
                event.reason,
            )
        log.info("opinion withdrawn", opinion_id=opinion_id, district=opinion.district_id)
        return event.occurred_at

    async def _append(
        self, conn: Conn, event: Event, event_id: uuid.UUID, metadata: Metadata | None
    ) -> None:
        # The case row is locked first, so the transaction may be older than the stream's
        # head: the store then raises OrderingConflict and the caller retries.
        await self._store.append(
            event.stream_id,
            [Envelope.wrap(event, metadata, event_id=event_id)],
            expected_version=ANY_VERSION,
            conn=conn,
        )


# --- Open311 ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestView:
    """An opinion and its latest case, as an Open311 service request."""

    opinion: OpinionRecord
    progress: CaseProgress | None

    @property
    def stage(self) -> Stage:
        """Where the request stands."""
        return stage_of(self.opinion, self.progress)

    @property
    def service_code(self) -> str | None:
        """The category routing gave it, else the one the resident chose."""
        return (self.progress.category_code if self.progress else None) or (
            self.opinion.category_hint
        )

    @property
    def updated_at(self) -> datetime:
        """When it last changed."""
        return self.progress.updated_at if self.progress else self.opinion.submitted_at


async def service_requests(
    pool: asyncpg.Pool,
    district_id: str,
    *,
    ids: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    service_codes: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = 1000,
) -> list[RequestView]:
    """A district's requests, newest first. ``ids`` overrides every other filter."""
    conditions = ["o.district_id = $1"]
    params: list[Any] = [district_id]

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if ids is not None:
        conditions.append(f"o.opinion_id = ANY({param(list(ids))}::text[])")
    else:
        if start is not None:
            conditions.append(f"o.submitted_at >= {param(start)}")
        if end is not None:
            conditions.append(f"o.submitted_at <= {param(end)}")
        if service_codes:
            conditions.append(
                f"coalesce(c.category_code, o.category_hint) = ANY({param(list(service_codes))}"
                "::text[])"
            )
        if statuses:
            conditions.append(
                "(CASE WHEN o.withdrawn_at IS NOT NULL THEN 'closed' "
                f"ELSE coalesce(c.open311_status, 'open') END) = ANY({param(list(statuses))}"
                "::text[])"
            )
    query = f"""
        SELECT {columns("o")}, c.progress
          FROM intake.opinions o
          LEFT JOIN LATERAL (
              SELECT progress, category_code, open311_status FROM intake.cases
               WHERE opinion_id = o.opinion_id ORDER BY opened_at DESC LIMIT 1
          ) c ON true
         WHERE {" AND ".join(conditions)}
         ORDER BY o.submitted_at DESC
         LIMIT {param(limit)}
    """
    rows = await pool.fetch(query, *params)
    return [
        RequestView(
            record_from_row(r),
            CaseProgress.from_json(r["progress"]) if r["progress"] is not None else None,
        )
        for r in rows
    ]


async def service_request_updates(
    pool: asyncpg.Pool,
    district_id: str,
    *,
    start: datetime,
    end: datetime,
    limit: int = 1000,
) -> list[tuple[str, Step]]:
    """(opinion id, step) of a district's case events in a time range, oldest first."""
    rows = await pool.fetch(
        """
        SELECT opinion_id, step FROM intake.case_steps
         WHERE district_id = $1 AND occurred_at >= $2 AND occurred_at <= $3
         ORDER BY occurred_at, stream_version
         LIMIT $4
        """,
        district_id,
        start,
        end,
        limit,
    )
    return [(r["opinion_id"], Step.from_json(r["step"])) for r in rows]
