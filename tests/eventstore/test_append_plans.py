"""eventstore.append's statements keep their plans (``0008_append_generic_plans.sql``):
the duplicate check binds an array, and with the default plan cache mode PL/pgSQL
planned it anew at every append (0.15 ms of planning for 0.013 ms of work, measured
with pg_stat_statements' track_planning under bench/intake.py). Real PostgreSQL."""

from __future__ import annotations

import asyncpg

APPEND = (
    "eventstore.append(text, bigint, text, uuid[], text[], integer[], jsonb[], jsonb[], "
    "timestamptz[])"
)


async def test_append_runs_its_statements_on_generic_plans(pool: asyncpg.Pool) -> None:
    settings = await pool.fetchval(
        "SELECT proconfig FROM pg_proc WHERE oid = $1::text::regprocedure", APPEND
    )
    assert "plan_cache_mode=force_generic_plan" in settings
