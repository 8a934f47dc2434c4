"""The cases' read model in schema ``routing``, written in the transaction of their events.

A case's row is the state the domain folds from its stream plus the facts of the
opinion it came from, so the queues, the overdue scanner and the case views can never
disagree with the domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.cases import CaseEvent, CaseLinked
from contracts.intake import FeedbackSubmitted, OpinionSubmitted
from eventkit.db import Conn
from services.routing.case_state import CaseState
from services.routing.duplicates import bands, normalise_text, simhash
from services.routing.liaison_projection import save_whistles


@dataclass(frozen=True, slots=True)
class OpinionFacts:
    """What a case keeps of the opinion it came from (never the submitter)."""

    channel: str | None
    text: str
    community: str | None
    address: str | None
    point: tuple[float, float] | None
    collected_by: str | None = None
    """The staff id of whoever took the opinion down for the resident."""
    collected_by_role: str | None = None
    tracking_ref: str | None = None
    """The keyed hash of the resident's tracking code (``OpinionSubmitted.tracking_ref``):
    staff find the case by the code; a transferred case keeps its opinion's."""

    @classmethod
    def of(cls, opinion: OpinionSubmitted) -> OpinionFacts:
        """The facts of ``opinion`` as it was submitted."""
        location = opinion.location
        point = (
            (location.lat, location.long)
            if location.lat is not None and location.long is not None
            else None
        )
        behalf = opinion.on_behalf_of
        return cls(
            opinion.channel.value,
            opinion.text,
            location.community,
            location.address,
            point,
            behalf.staff_id if behalf else None,
            behalf.role if behalf else None,
            opinion.tracking_ref,
        )

    @property
    def normalised(self) -> str:
        """The text as duplicate detection compares it."""
        return normalise_text(self.text)


_STATE_COLUMNS = """status, is_open, category_code, matched_keywords, priority, station_code,
    representative_id, queue, response_due, resolution_due, next_due, deadlines_provisional,
    overdue, overdue_count, resolution_seq, updated_at, closed_at, version"""


def _state_values(state: CaseState) -> list[Any]:
    response = state.latest("response")
    resolution = state.latest("resolution")
    return [
        state.status.value,
        state.is_open,
        state.category_code,
        list(state.matched_keywords),
        state.priority.value,
        state.station_code,
        state.representative_id,
        state.queue,
        response.due if response else None,
        resolution.due if resolution else None,
        state.next_due,
        state.provisional,
        state.overdue,
        state.overdue_count,
        state.resolution_seq,
        state.updated_at,
        state.closed_at,
        state.version,
    ]


async def insert_case(
    conn: Conn, state: CaseState, facts: OpinionFacts, fingerprint: int | None = None
) -> None:
    """Write a new case's row (or rewrite it, on a rebuild).

    ``fingerprint`` is the SimHash of the normalised text, when the caller has it.
    """
    await insert_cases(conn, [(state, facts, fingerprint)])
    # A new case has neither whistles nor callbacks; a rebuilt one may.
    await _followed_up(conn, state)


async def insert_cases(
    conn: Conn, cases: Sequence[tuple[CaseState, OpinionFacts, int | None]]
) -> None:
    """Write new cases' rows in one round trip (see :func:`insert_case`).

    The rows go in their districts' and representatives' order: each row's trigger
    (``routing.count_open_cases``) locks its representative's counter until the
    transaction ends, so two consumers' batches of new cases, written at once, take those
    locks in one order and wait for each other instead of deadlocking (a deadlock costs
    the server's ``deadlock_timeout``, a second, and the batch its retry record by
    record). The order holds within one call: a transaction that writes new cases in
    two calls (a batch whose opinions a withdrawal or another district's opinion splits
    into two runs) or also moves other cases between representatives can still meet
    another in the opposite order, rarely; the server then fails one, which is retried."""
    if not cases:
        return
    statement = ""
    rows: list[list[Any]] = []
    in_order = sorted(cases, key=lambda c: (c[0].district_id, c[0].representative_id or ""))
    for state, facts, fingerprint in in_order:
        statement, values = _insert_statement(state, facts, fingerprint)
        rows.append(values)
    await conn.executemany(statement, rows)


def _insert_statement(
    state: CaseState, facts: OpinionFacts, fingerprint: int | None
) -> tuple[str, list[Any]]:
    text_norm = facts.normalised
    if fingerprint is None:
        fingerprint = simhash(text_norm)
    band_values = bands(fingerprint)
    lat, long = facts.point if facts.point else (None, None)
    columns = [c.strip() for c in _STATE_COLUMNS.split(",")]
    fixed = [
        "case_id",
        "district_id",
        "opinion_id",
        "channel",
        "text",
        "text_norm",
        "simhash",
        *(f"band{i}" for i in range(len(band_values))),
        "community",
        "address",
        "lat",
        "long",
        "opened_at",
        "collected_by",
        "collected_by_role",
        "tracking_ref",
    ]
    values = [
        state.case_id,
        state.district_id,
        state.opinion_id,
        facts.channel,
        facts.text,
        text_norm,
        fingerprint,
        *band_values,
        facts.community,
        facts.address,
        lat,
        long,
        state.opened_at,
        facts.collected_by,
        facts.collected_by_role,
        facts.tracking_ref,
        *_state_values(state),
    ]
    names = fixed + columns
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    statement = (
        f"INSERT INTO routing.cases ({', '.join(names)}) VALUES ({placeholders}) "
        f"ON CONFLICT (case_id) DO UPDATE SET {updates}"
    )
    return statement, values


async def update_case(conn: Conn, state: CaseState) -> None:
    """Bring an existing case's row to ``state``, unless the row already shows a later one.

    A reader that loaded the stream before someone else saved (the overdue scanner, say)
    must not put the older state back.
    """
    columns = [c.strip() for c in _STATE_COLUMNS.split(",")]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
    version = 2 + columns.index("version")
    await conn.execute(
        f"UPDATE routing.cases SET {sets} WHERE case_id = $1 AND version <= ${version}",
        state.case_id,
        *_state_values(state),
    )
    await _followed_up(conn, state)


async def _followed_up(conn: Conn, state: CaseState) -> None:
    """What the liaison work added to the case: its whistles, and a callback's rating,
    which the case shows unless the resident rated later themselves."""
    await save_whistles(conn, state)
    callback = state.callback
    if callback is not None:
        await conn.execute(
            "UPDATE routing.cases SET satisfaction = $2, feedback_resolved = $3, rated_at = $4, "
            "rating_source = 'callback' WHERE case_id = $1 "
            "AND (rated_at IS NULL OR rated_at <= $4)",
            state.case_id,
            callback.satisfaction,
            callback.resolved,
            callback.at,
        )


async def add_links(conn: Conn, events: Iterable[CaseEvent]) -> None:
    """Record the ``CaseLinked`` among ``events`` (one statement for all of them)."""
    links = [e for e in events if isinstance(e, CaseLinked)]
    if not links:
        return
    await conn.execute(
        """
        INSERT INTO routing.case_links
               (case_id, related_case_id, relation, reason, linked_at, district_id)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                             $6::text[])
        ON CONFLICT DO NOTHING
        """,
        [e.case_id for e in links],
        [e.related_case_id for e in links],
        [e.relation for e in links],
        [e.reason for e in links],
        [e.occurred_at for e in links],
        [e.district_id for e in links],
    )


async def record_feedback(
    conn: Conn, feedback: FeedbackSubmitted, *, district_id: str | None = None
) -> None:
    """Keep the resident's latest rating on the case (its comment stays with intake),
    unless a callback taken later already stands. ``district_id``: the case's, when the
    rated case continues the opinion in another district."""
    await conn.execute(
        "UPDATE routing.cases SET satisfaction = $3, feedback_resolved = $4, rated_at = $5, "
        "rating_source = 'resident' WHERE case_id = $1 AND district_id = $2 "
        "AND (rated_at IS NULL OR rated_at <= $5)",
        feedback.case_id,
        district_id or feedback.district_id,
        feedback.satisfaction,
        feedback.resolved,
        feedback.occurred_at,
    )


# --------------------------------------------------------------------------- reads


async def opinion_facts(conn: Conn, case_id: str) -> OpinionFacts | None:
    """The facts of the opinion a case came from, as its row keeps them."""
    row = await conn.fetchrow(
        "SELECT channel, text, community, address, lat, long, collected_by, collected_by_role, "
        "tracking_ref FROM routing.cases WHERE case_id = $1",
        case_id,
    )
    if row is None:
        return None
    point = (row["lat"], row["long"]) if row["lat"] is not None else None
    return OpinionFacts(
        row["channel"],
        row["text"],
        row["community"],
        row["address"],
        point,
        row["collected_by"],
        row["collected_by_role"],
        row["tracking_ref"],
    )


async def workloads(conn: Conn, district_id: str, representative_ids: list[str]) -> dict[str, int]:
    """The open cases of each of ``representative_ids`` (those with none are left out)."""
    if not representative_ids:
        return {}
    rows = await conn.fetch(
        "SELECT representative_id, open_cases FROM routing.representatives "
        "WHERE district_id = $1 AND representative_id = ANY($2::text[])",
        district_id,
        representative_ids,
    )
    return {r["representative_id"]: r["open_cases"] for r in rows}


async def cases_due(
    conn: Conn, moment: datetime, skip: Iterable[str], limit: int
) -> list[tuple[str, str]]:
    """(case id, district id) of open cases with a deadline due by ``moment``, earliest
    first, leaving out ``skip``."""
    # Two index scans: open cases, and suggestions whose answer is supervised.
    rows = await conn.fetch(
        "SELECT case_id, district_id FROM ("
        " (SELECT case_id, district_id, next_due FROM routing.cases"
        "   WHERE is_open AND next_due <= $1 AND NOT (case_id = ANY($2::text[]))"
        "   ORDER BY next_due LIMIT $3)"
        " UNION ALL"
        " (SELECT case_id, district_id, next_due FROM routing.cases"
        "   WHERE status = 'converted' AND next_due <= $1 AND NOT (case_id = ANY($2::text[]))"
        "   ORDER BY next_due LIMIT $3)"
        ") due ORDER BY next_due LIMIT $3",
        moment,
        sorted(skip),
        limit,
    )
    return [(r["case_id"], r["district_id"]) for r in rows]
