"""The sealer against the real PostgreSQL: what a seal covers, how seals chain, and that
nothing still being written slips under one."""

from __future__ import annotations

import asyncio
import hashlib
import itertools

import asyncpg

from contracts import AuditSealed
from eventkit.audit.digest import ZERO_HASH
from eventkit.audit.sealing import Sealer
from eventkit.audit.verification import verify_store
from eventkit.db import Conn, scope
from eventkit.store import EventStore
from tests.audit.support import generate_history
from tests.helpers import envelope


async def test_a_seal_covers_each_event_of_its_district_once_with_a_digest_anyone_can_recompute(
    store: EventStore, sealer: Sealer, conn: Conn
) -> None:
    await generate_history(store, "demo", matters=3)
    await generate_history(store, "haidian", matters=2)
    made = {s.district_id: s for s in await sealer.seal_all()}
    assert set(made) == {"demo", "haidian"}
    for district, seal in made.items():
        rows = await conn.fetch(
            "SELECT stream_id, stream_version, hash FROM eventstore.events "
            "WHERE district_id = $1 AND category <> 'audit' "
            "ORDER BY transaction_id, global_position",
            district,
        )
        assert seal.events == seal.total_events == len(rows)
        expected = hashlib.sha256(ZERO_HASH + b"".join(bytes(r["hash"]) for r in rows))
        assert seal.digest == expected.hexdigest()
        heads: dict[str, tuple[int, int, str]] = {}
        for r in rows:
            first = heads.get(r["stream_id"], (r["stream_version"], 0, ""))[0]
            heads[r["stream_id"]] = (first, r["stream_version"], bytes(r["hash"]).hex())
        assert {
            s.stream_id: (s.first_version, s.last_version, s.head_hash) for s in seal.streams
        } == heads
        assert seal.stream_id == f"audit-{district}"


async def test_a_backlog_is_sealed_in_several_seals_each_continuing_the_last(
    store: EventStore, conn: Conn
) -> None:
    await generate_history(store, matters=6)
    seals = await Sealer(store, max_events=10).seal("demo")
    assert [s.events for s in seals] == [10, 10, 10, 10, 2]
    assert [s.seal_seq for s in seals] == [1, 2, 3, 4, 5]
    assert seals[-1].total_events == 42
    assert seals[0].previous_digest == ZERO_HASH.hex()
    for before, after in itertools.pairwise(seals):
        assert after.previous_digest == before.digest
        assert (after.after_transaction_id, after.after_position) == (
            before.through_transaction_id,
            before.through_position,
        )
    assert (await verify_store(conn)).intact


async def test_nothing_new_makes_no_seal(store: EventStore, sealer: Sealer) -> None:
    await generate_history(store, matters=1)
    assert len(await sealer.seal("demo")) == 1
    assert await sealer.seal("demo") == []
    assert await sealer.seal("nowhere") == []


async def test_an_event_of_a_transaction_still_running_waits_for_the_next_seal(
    store: EventStore, sealer: Sealer, pool: asyncpg.Pool, conn: Conn
) -> None:
    """The horizon: an event committed later than a newer one is never left behind."""
    await store.append("case-early", [envelope("case-early")])
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        await scope(slow, "demo")
        await store.append("case-slow", [envelope("case-slow")], conn=slow)
        await store.append("case-late", [envelope("case-late")])
        [first] = await sealer.seal("demo")
        assert [s.stream_id for s in first.streams] == ["case-early"]
        await tx.commit()
    [second] = await sealer.seal("demo")
    assert sorted(s.stream_id for s in second.streams) == ["case-late", "case-slow"]
    assert (await verify_store(conn)).intact


async def test_two_sealers_at_once_never_fork_the_chain_of_seals(
    store: EventStore, conn: Conn
) -> None:
    sealers = [Sealer(store, max_events=7), Sealer(store, max_events=7)]
    for _ in range(3):
        await generate_history(store, matters=2)
        await asyncio.gather(*(s.seal("demo") for s in sealers))
    rows = await conn.fetch(
        "SELECT stream_version, data FROM eventstore.events WHERE stream_id = 'audit-demo' "
        "ORDER BY stream_version"
    )
    seals = [AuditSealed.model_validate(r["data"]) for r in rows]
    assert [s.seal_seq for s in seals] == list(range(1, len(seals) + 1))
    assert seals[-1].total_events == 42
    assert (await verify_store(conn)).intact
