"""Each district's assessment criteria (configuration, kept across rebuilds)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from eventkit.db import Conn
from services.reporting.assessment import DEFAULT_CRITERIA, Criteria
from services.reporting.errors import InvalidCriteria


async def load_criteria(conn: Conn, district_id: str) -> Criteria:
    """The district's criteria, or the defaults when it set none."""
    stored = await conn.fetchval(
        "SELECT criteria FROM reporting.assessment_criteria WHERE district_id = $1", district_id
    )
    return Criteria.model_validate(stored) if stored is not None else DEFAULT_CRITERIA


def parse_criteria(document: object) -> Criteria:
    """Criteria from a request body, refused with the reason when they do not hold."""
    try:
        return Criteria.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidCriteria(problems, problems) from exc


async def save_criteria(
    conn: Conn, district_id: str, criteria: Criteria, by: str, at: datetime
) -> None:
    """Replace the district's criteria."""
    await conn.execute(
        """
        INSERT INTO reporting.assessment_criteria (district_id, criteria, updated_at, updated_by)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (district_id) DO UPDATE
           SET criteria = excluded.criteria, updated_at = excluded.updated_at,
               updated_by = excluded.updated_by
        """,
        district_id,
        criteria.model_dump(mode="json"),
        at,
        by,
    )
