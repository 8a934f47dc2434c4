"""What reporting holds of a resident's matters, for their rights (docs/privacy.md): the
facts of their cases (times, on time or not), their ratings (never the comment), and the
notes of the case steps of a representative's archive, which copy the replies and results
(and may quote the resident).

Reporting knows no resident: its rows name cases. Every function runs in the caller's
transaction, scoped to the district (``eventkit.db.scope``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from eventkit.db import Conn
from eventkit.privacy_rights import ERASED, Erasure
from services.reporting.case_facts import StepKind
from services.reporting.projection import live_slots
from services.reporting.tables import ASOF_SCHEMA, SCHEMA

TEXT_STEPS: Final = (
    StepKind.REPLIED,
    StepKind.RESOLVED,
    StepKind.CLOSED,
    StepKind.REOPENED,
    StepKind.CONVERTED,
)
"""Steps whose note is free text (a reply, a result, a reason, a suggestion's title);
the others note a level, a name or a number."""


async def export(conn: Conn, case_ids: Sequence[str]) -> dict[str, Any]:
    """The facts reporting counts of these cases, and the residents' ratings."""
    slots = await live_slots(conn)
    cases = await conn.fetch(
        f"""
        SELECT case_id, status, withdrawn, opened_at, first_response_at, responded_on_time,
               first_resolved_at, resolved_on_time, closed_at, reopened_count
          FROM {SCHEMA}.cases WHERE slot = $1 AND case_id = ANY($2::text[])
         ORDER BY opened_at, case_id
        """,
        slots["cases"],
        list(case_ids),
    )
    ratings = await conn.fetch(
        f"""
        SELECT case_id, resolution_seq, satisfaction, resolved, recorded_at
          FROM {SCHEMA}.ratings WHERE slot = $1 AND case_id = ANY($2::text[])
         ORDER BY recorded_at
        """,
        slots["ratings"],
        list(case_ids),
    )
    return {"cases": [dict(r) for r in cases], "ratings": [dict(r) for r in ratings]}


async def erase(conn: Conn, erasure: Erasure) -> dict[str, int]:
    """Erase the free-text notes of these cases' steps, in every slot (the next rebuild
    swaps one in) and in the projections built as of a past moment, in ``conn``'s
    transaction. Idempotent.

    Like the consumer, it holds the projections' rows shared first (:func:`live_slots`):
    a rebuild's swap, which compares the slots under that lock, never sees an erasure
    half done, nor one running while it compares."""
    changed = 0
    for schema in (SCHEMA, ASOF_SCHEMA):
        await live_slots(conn, schema, lock=True)
    for schema in (SCHEMA, ASOF_SCHEMA):
        changed += await erase_notes(conn, schema, erasure.case_ids)
    return {"step_notes": changed}


async def erase_notes(
    conn: Conn, schema: str, case_ids: Sequence[str], *, slot: int | None = None
) -> int:
    """Replace the free-text notes of these cases' steps with the erased mark, in every
    slot of ``schema`` or in ``slot`` only (a rebuild's shadow); how many changed."""
    in_slot = "AND slot = $4" if slot is not None else ""
    changed = await conn.fetchval(
        f"""
        WITH changed AS (
            UPDATE {schema}.case_steps SET note = $3
             WHERE case_id = ANY($1::text[]) AND kind = ANY($2::text[])
               AND note IS NOT NULL AND note <> $3 {in_slot}
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        list(case_ids),
        list(TEXT_STEPS),
        ERASED,
        *([slot] if slot is not None else []),
    )
    return int(changed)
