"""A table for the test handlers' effects, writable by the runtime role."""

from __future__ import annotations

import asyncpg
import pytest

from eventkit.db import connect


@pytest.fixture
async def effects_table(database_url: str) -> str:
    owner: asyncpg.Connection = await connect(database_url)
    try:
        await owner.execute(
            """
            CREATE TABLE public.effects (
                event_id uuid NOT NULL,
                stream_id text NOT NULL,
                stream_version bigint NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
            );
            GRANT SELECT, INSERT ON public.effects TO minqing_runtime;
            """
        )
    finally:
        await owner.close()
    return "public.effects"
