"""What the workbench shows: cases, queues, a case with its full history, the directory.

Reads only, always scoped to one district; answers are the models of
:mod:`services.routing.api_models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from contracts import REGISTRY
from contracts.cases import Priority
from eventkit.db import Conn, scope
from eventkit.sealed_texts import TextKeys, open_case_data
from eventkit.store import EventStore
from services.routing.api_models import (
    AllowedAction,
    CallbackView,
    CaseDetail,
    CaseSummary,
    CaseView,
    ClusterEntry,
    DeadlineView,
    DirectoryView,
    DistrictView,
    EscalationView,
    FeedbackView,
    HistoryEntry,
    Label,
    OpinionView,
    Position,
    RepresentativeView,
    StationView,
    StreetView,
    SuggestionAnswerView,
    TransferredFrom,
    TransferredTo,
    WhistleView,
)
from services.routing.case_state import (
    COMMAND_LABELS,
    STATUS_LABELS,
    CaseState,
    CaseStatus,
    Whistle,
    allowed_commands,
)
from services.routing.case_store import stream_of
from services.routing.directory import Directory, Representative, Station
from services.routing.district_context import DistrictContext

PRIORITY_LABELS: dict[str, tuple[str, str]] = {
    Priority.NORMAL.value: ("小事", "normal"),
    Priority.IMPORTANT.value: ("大事", "important"),
    Priority.URGENT.value: ("要事", "urgent"),
}

EVENT_LABELS: dict[str, str] = {
    "CaseOpened": "立案",
    "CaseAssigned": "分派",
    "CaseClassified": "分类定级",
    "CaseAccepted": "报到",
    "CaseReplied": "答复居民",
    "CaseTransferred": "转办",
    "CaseEscalated": "吹哨",
    "CaseResolved": "办结",
    "CaseClosed": "核实结项",
    "CaseReopened": "重新办理",
    "CaseOverdue": "超期督办",
    "CaseLinked": "关联案件",
    "CaseMerged": "并案",
    "CaseConvertedToSuggestion": "转代表建议",
    "DepartmentReportedIn": "部门报到",
    "DepartmentResponded": "部门处理反馈",
    "DepartmentRated": "一哨一评价",
    "CallbackRecorded": "回访",
    "SuggestionAnswered": "代表建议答复",
}

_ORDER = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'important' THEN 1 ELSE 2 END, "
    "next_due NULLS LAST, opened_at"
)
"""Urgent matters first (they skip every queue), then the nearest deadline."""

_LIST_COLUMNS = """case_id, district_id, opinion_id, status, priority, category_code,
    station_code, representative_id, queue, next_due, response_due, resolution_due, overdue,
    deadlines_provisional, opened_at, updated_at, left(text, 80) AS excerpt, community"""


def _label(pair: tuple[str, str]) -> Label:
    return Label(zh=pair[0], en=pair[1])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def row_view(row: Any) -> CaseSummary:
    """A case in a list."""
    status = CaseStatus(row["status"])
    return CaseSummary(
        case_id=row["case_id"],
        opinion_id=row["opinion_id"],
        status=status.value,
        status_label=_label(STATUS_LABELS[status]),
        priority=row["priority"],
        priority_label=_label(PRIORITY_LABELS[row["priority"]]),
        category_code=row["category_code"],
        station_code=row["station_code"],
        representative_id=row["representative_id"],
        queue=row["queue"],
        community=row["community"],
        excerpt=row["excerpt"],
        next_due=_iso(row["next_due"]),
        response_due=_iso(row["response_due"]),
        resolution_due=_iso(row["resolution_due"]),
        deadlines_provisional=row["deadlines_provisional"],
        overdue=row["overdue"],
        opened_at=_iso(row["opened_at"]),
        updated_at=_iso(row["updated_at"]),
    )


async def list_cases(
    conn: Conn,
    district_id: str,
    *,
    status: str | None = None,
    open_only: bool = False,
    stations: Sequence[str] | None = None,
    representative_id: str | None = None,
    queues: Sequence[str] | None = None,
    priority: str | None = None,
    category_code: str | None = None,
    overdue: bool | None = None,
    unplaced_or_overdue: bool = False,
    escalated_or_overdue: bool = False,
    channel: str | None = None,
    text: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[CaseSummary]:
    """Cases of one district matching every given filter, the most pressing first."""
    where = ["district_id = $1"]
    params: list[Any] = [district_id]

    def add(condition: str, value: Any) -> None:
        params.append(value)
        where.append(condition.replace("?", f"${len(params)}"))

    if status is not None:
        add("status = ?", status)
    if open_only:
        where.append("is_open")
    if stations is not None:
        add("station_code = ANY(?::text[])", list(stations))
    if representative_id is not None:
        add("representative_id = ?", representative_id)
    if queues is not None:
        add("queue = ANY(?::text[])", list(queues))
    if priority is not None:
        add("priority = ?", priority)
    if category_code is not None:
        add("category_code = ?", category_code)
    if overdue is not None:
        add("overdue = ?", overdue)
    if unplaced_or_overdue:
        where.append("(station_code IS NULL OR overdue)")
    if escalated_or_overdue:
        where.append("(status = 'escalated' OR overdue)")
    if channel is not None:
        add("channel = ?", channel)
    if text is not None:
        # The words anywhere in the resident's text (or the case's id).
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        add("(text ILIKE ? OR case_id ILIKE ?)", f"%{escaped}%")
    params += [limit, offset]
    rows = await conn.fetch(
        f"SELECT {_LIST_COLUMNS} FROM routing.cases WHERE {' AND '.join(where)} "
        f"ORDER BY {_ORDER} LIMIT ${len(params) - 1} OFFSET ${len(params)}",
        *params,
    )
    return [row_view(r) for r in rows]


def state_view(state: CaseState) -> CaseView:
    """A case as the domain sees it, with what may be done next."""
    return CaseView(**_state_fields(state))


def _state_fields(state: CaseState) -> dict[str, Any]:
    return {
        "case_id": state.case_id,
        "district_id": state.district_id,
        "opinion_id": state.opinion_id,
        "status": state.status.value,
        "status_label": _label(STATUS_LABELS[state.status]),
        "priority": state.priority.value,
        "priority_label": _label(PRIORITY_LABELS[state.priority.value]),
        "category_code": state.category_code,
        "matched_keywords": list(state.matched_keywords),
        "station_code": state.station_code,
        "representative_id": state.representative_id,
        "queue": state.queue,
        "next_due": _iso(state.next_due),
        "deadlines": [
            DeadlineView(
                kind=d.kind, due=d.due.isoformat(), demands=d.demands, met=d.met, overdue=d.overdue
            )
            for d in state.deadlines
        ],
        "deadlines_provisional": state.provisional,
        "overdue": state.overdue,
        "overdue_count": state.overdue_count,
        "resolution_seq": state.resolution_seq,
        "escalations": [
            EscalationView(to_level=level, to_name=name, due=_iso(due))
            for level, name, due in state.escalations
        ],
        "merged_into": state.merged_into,
        "transferred_to": (
            TransferredTo(district_id=state.transferred_to[0], case_id=state.transferred_to[1])
            if state.transferred_to
            else None
        ),
        "suggestion_title": state.suggestion_title,
        "opened_at": state.opened_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "closed_at": _iso(state.closed_at),
        "version": state.version,
        "allowed_actions": [
            AllowedAction(command=name, label=COMMAND_LABELS[name])
            for name in allowed_commands(state.status)
        ],
        "whistles": [whistle_view(w) for w in state.whistles],
        "callback": (
            CallbackView(
                resolution_seq=state.callback.resolution_seq,
                satisfaction=state.callback.satisfaction,
                resolved=state.callback.resolved,
                at=state.callback.at.isoformat(),
                by=state.callback.by,
            )
            if state.callback
            else None
        ),
        "suggestion_answer": (
            SuggestionAnswerView(
                answer=state.suggestion_answer[0],
                answered_by=state.suggestion_answer[1],
                at=state.suggestion_answer[2].isoformat(),
            )
            if state.suggestion_answer
            else None
        ),
    }


def whistle_view(w: Whistle) -> WhistleView:
    """A whistle and what the summoned body did."""
    return WhistleView(
        seq=w.seq,
        to_level=w.to_level,
        to_name=w.to_name,
        department_code=w.department_code,
        whistled_at=w.whistled_at.isoformat(),
        whistled_by=w.whistled_by,
        report_due=_iso(w.report_due),
        due=_iso(w.due),
        reported_at=_iso(w.reported_at),
        reported_by=w.reported_by,
        responded_at=_iso(w.responded_at),
        responded_by=w.responded_by,
        action=w.action,
        rating=w.rating,
        rated_at=_iso(w.rated_at),
    )


async def history(
    store: EventStore, conn: Conn, case_id: str, texts: TextKeys | None = None
) -> list[HistoryEntry]:
    """Every event of the case, in order: who did what, when (吹哨全留痕); the staff's
    sealed texts opened with the case's key (``texts``: the process's vault key by
    default), erased once the key is gone."""
    entries = []
    records = await store.read_stream(stream_of(case_id), conn=conn)
    opened = await open_case_data(
        conn, texts or TextKeys(), [(r.event_type, r.data) for r in records]
    )
    for record, stored in zip(records, opened, strict=True):
        data = REGISTRY.parse(record.event_type, record.schema_version, stored).model_dump(
            mode="json", exclude={"sealed"}
        )
        actor = data.pop("actor")
        for key in ("district_id", "case_id", "occurred_at"):
            data.pop(key, None)
        entries.append(
            HistoryEntry(
                version=record.stream_version,
                event_id=str(record.event_id),
                type=record.event_type,
                label=EVENT_LABELS.get(record.event_type, record.event_type),
                occurred_at=record.occurred_at.isoformat(),
                recorded_at=record.recorded_at.isoformat(),
                actor=actor,
                data=data,
            )
        )
    return entries


async def case_detail(
    store: EventStore,
    conn: Conn,
    state: CaseState,
    directory: Directory | None,
    texts: TextKeys | None = None,
) -> CaseDetail:
    """A case with its opinion, names, cluster and full history (its sealed texts opened
    with ``texts``, see :func:`history`)."""
    extra: dict[str, Any] = {}
    row = await conn.fetchrow(
        "SELECT channel, text, community, address, lat, long, satisfaction, feedback_resolved "
        "FROM routing.cases WHERE case_id = $1",
        state.case_id,
    )
    if row is not None:
        extra["opinion"] = OpinionView(
            channel=row["channel"],
            text=row["text"],
            community=row["community"],
            address=row["address"],
            lat=row["lat"],
            long=row["long"],
        )
        if row["satisfaction"] is not None:
            extra["feedback"] = FeedbackView(
                satisfaction=row["satisfaction"], resolved=row["feedback_resolved"]
            )
    if directory is not None:
        station = directory.stations.get(state.station_code or "")
        rep = directory.representatives.get(state.representative_id or "")
        extra["station_name"] = station.name_zh if station else None
        extra["representative_name"] = rep.name_zh if rep else None
    links = await conn.fetch(
        """
        SELECT l.case_id, l.related_case_id, l.relation, l.reason, l.linked_at, c.status
          FROM routing.case_links l
          JOIN routing.cases c
            ON c.case_id = CASE WHEN l.case_id = $1 THEN l.related_case_id ELSE l.case_id END
         WHERE (l.case_id = $1 OR l.related_case_id = $1) AND c.district_id = $2
         ORDER BY l.linked_at
        """,
        state.case_id,
        state.district_id,
    )
    cluster = [
        ClusterEntry(
            case_id=r["related_case_id"] if r["case_id"] == state.case_id else r["case_id"],
            relation=r["relation"],
            reason=r["reason"],
            status=r["status"],
            linked_at=r["linked_at"].isoformat(),
        )
        for r in links
    ]
    entries = await history(store, conn, state.case_id, texts)
    opened = entries[0].data if entries else {}
    source = opened.get("transferred_from_case_id")
    if source:
        # The other district handed the case over with its record: show what was done.
        # That record is the other district's: read in its row-level security scope
        # (the one case named by this case's own opening event), then back to ours.
        from_district = opened.get("transferred_from_district_id") or state.district_id
        await scope(conn, from_district)
        handed_over = await history(store, conn, source, texts)
        await scope(conn, state.district_id)
        extra["transferred_from"] = TransferredFrom(
            district_id=opened.get("transferred_from_district_id"),
            case_id=source,
            history=handed_over,
        )
    return CaseDetail(**_state_fields(state), **extra, cluster=cluster, history=entries)


def station_view(s: Station) -> StationView:
    """A station of the directory."""
    return StationView(**station_fields(s))


def station_fields(s: Station) -> dict[str, Any]:
    """A station of the directory, as the fields of a view."""
    return {
        "code": s.code,
        "name_zh": s.name_zh,
        "kind": s.kind.value,
        "street_code": s.street_code,
        "communities": sorted(s.communities),
        "address": s.address,
        "position": Position(lat=s.position[0], long=s.position[1]) if s.position else None,
        "star_rating": s.star_rating,
        "head_representative_id": s.head_representative_id,
        "liaison_officers": sorted(s.liaison_officers),
        "active": s.active,
    }


def representative_fields(r: Representative) -> dict[str, Any]:
    """A representative of the directory, as the fields of a view."""
    return {
        "id": r.id,
        "name_zh": r.name_zh,
        "level": r.level.value,
        "electoral_district": r.electoral_district,
        "residence_community": r.residence_community,
        "expertise": sorted(r.expertise),
        "contact_point": r.contact_point,
        "leading_cadre": r.leading_cadre,
        "stations": sorted(r.stations),
        "active": r.active,
    }


def directory_view(ctx: DistrictContext) -> DirectoryView:
    """The district's directory as routing knows it now."""
    d = ctx.directory
    return DirectoryView(
        district=DistrictView(
            code=d.district_id,
            name_zh=d.name_zh,
            name_en=ctx.config.name_en,
            timezone=d.timezone,
            version=ctx.version,
        ),
        streets=[
            StreetView(
                code=s.code,
                name_zh=s.name_zh,
                committee_name_zh=s.committee,
                communities=sorted(
                    c.name for c in d.communities.values() if c.street_code == s.code
                ),
            )
            for s in sorted(d.streets.values(), key=lambda s: s.code)
        ],
        stations=[station_view(s) for s in sorted(d.stations.values(), key=lambda s: s.code)],
        representatives=[
            RepresentativeView(**representative_fields(r))
            for r in sorted(d.representatives.values(), key=lambda r: r.id)
        ],
        taxonomy_version=ctx.taxonomy.version if ctx.taxonomy else None,
        calendar_version=ctx.config.calendar.version if ctx.config.calendar else None,
        policy_version=ctx.config.policy.version if ctx.config.policy else None,
    )
