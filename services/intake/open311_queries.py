"""What Open311 clients ask for: a district's service requests (opinions with their
latest case) and the service request updates (the case steps), filtered as GeoReport v2
and mySociety's extension allow. Each read runs in the district's row-level security
scope (a jurisdiction is a district)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from eventkit.db import district_transaction
from services.intake.opinions import columns, record_from_row
from services.intake.progress import CaseProgress, Step
from services.intake.tracking_views import RequestView


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
    async with district_transaction(pool, district_id) as conn:
        rows = await conn.fetch(query, *params)
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
    async with district_transaction(pool, district_id) as conn:
        rows = await conn.fetch(
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
