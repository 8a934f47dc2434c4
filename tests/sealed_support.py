"""Helpers for tests that read opinions' sealed texts in stored events."""

from __future__ import annotations

from typing import Any

import asyncpg

from eventkit.db import district_transaction
from eventkit.sealed_texts import TextKeys, opened_data


async def opened(
    pool: asyncpg.Pool, data: dict[str, Any], event_type: str = "OpinionSubmitted"
) -> dict[str, Any]:
    """A stored opinion's (or rating's, withdrawal's) data with its sealed texts opened,
    as readers see it."""
    sealed = data.get("sealed")
    async with district_transaction(pool, data["district_id"]) as conn:
        keys = await TextKeys().found(conn, [sealed["key_id"]] if sealed else [])
    return opened_data(data, keys, event_type)
