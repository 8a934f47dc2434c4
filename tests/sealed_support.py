"""Helpers for tests that read opinions' sealed texts in stored events."""

from __future__ import annotations

from typing import Any

import asyncpg

from eventkit.db import district_transaction
from eventkit.keys import KeyRing
from eventkit.sealed_texts import TextKeys, open_case_data, opened_data
from eventkit.store import EventStore


async def opened(
    pool: asyncpg.Pool, data: dict[str, Any], event_type: str = "OpinionSubmitted"
) -> dict[str, Any]:
    """A stored opinion's (or rating's, withdrawal's) data with its sealed texts opened,
    as readers see it."""
    sealed = data.get("sealed")
    async with district_transaction(pool, data["district_id"]) as conn:
        keys = await TextKeys().found(conn, [sealed["key_id"]] if sealed else [])
    return opened_data(data, keys, event_type)


async def opened_case_events(
    store: EventStore, case_id: str, keys: KeyRing | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """A case's stored events, (type, data), with the staff's sealed texts opened with
    the case's key, as readers see them (``keys``: the vault's keys the services were
    given, the process's by default)."""
    records = await store.read_stream(f"case-{case_id}")
    if not records:
        return []
    async with district_transaction(store.pool, records[0].district_id) as conn:
        opened = await open_case_data(
            conn, TextKeys(keys), [(r.event_type, r.data) for r in records]
        )
    return [(r.event_type, data) for r, data in zip(records, opened, strict=True)]
