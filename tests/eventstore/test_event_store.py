"""The event store against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import asyncpg
import pytest

from contracts import REGISTRY
from contracts.envelope import Envelope
from eventkit.db import connect, district_transaction, scope
from eventkit.store import (
    ANY_VERSION,
    NO_STREAM,
    START,
    ConcurrencyError,
    DistrictMismatchError,
    DuplicateEventIdError,
    EventStore,
    OrderingConflict,
    verify_chains,
)
from tests.every_district import every_district
from tests.helpers import case_opened, envelope


def new_stream() -> str:
    return f"case-{uuid.uuid4().hex[:12]}"


async def test_appended_events_get_contiguous_versions_from_one(store: EventStore) -> None:
    stream = new_stream()
    first = await store.append(
        stream, [envelope(stream), envelope(stream)], expected_version=NO_STREAM
    )
    second = await store.append(stream, [envelope(stream)], expected_version=2)
    assert (first.stream_version, second.stream_version) == (2, 3)
    events = await store.read_stream(stream)
    assert [e.stream_version for e in events] == [1, 2, 3]
    assert [e.category for e in events] == ["case"] * 3


async def test_a_stale_expected_version_raises_a_typed_concurrency_error(store: EventStore) -> None:
    stream = new_stream()
    await store.append(stream, [envelope(stream)], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError) as raised:
        await store.append(stream, [envelope(stream)], expected_version=NO_STREAM)
    assert (raised.value.expected, raised.value.actual) == (0, 1)
    assert await store.stream_version(stream) == 1


async def test_re_appending_the_same_event_id_is_a_no_op(store: EventStore) -> None:
    stream = new_stream()
    event = envelope(stream)
    await store.append(stream, [event], expected_version=NO_STREAM)
    again = await store.append(stream, [event], expected_version=NO_STREAM)
    assert again.duplicate
    assert again.stream_version == 1
    assert len(await store.read_stream(stream)) == 1


async def test_an_event_id_reused_with_other_content_is_refused(store: EventStore) -> None:
    stream = new_stream()
    event = envelope(stream)
    await store.append(stream, [event])
    forged = event.model_copy(update={"data": {**event.data, "message": "篡改"}})
    with pytest.raises(DuplicateEventIdError):
        await store.append(stream, [forged])
    other = new_stream()
    with pytest.raises(DuplicateEventIdError):
        await store.append(other, [event.model_copy(update={"stream_id": other})])


async def test_a_stream_never_changes_district(store: EventStore) -> None:
    stream = new_stream()
    await store.append(stream, [envelope(stream, district="demo")])
    with pytest.raises(DistrictMismatchError):
        await store.append(stream, [envelope(stream, district="other")])


async def test_a_stored_contract_event_reads_back_as_the_same_event(store: EventStore) -> None:
    event = case_opened()
    await store.append(event.stream_id, [Envelope.wrap(event)], expected_version=NO_STREAM)
    [stored] = await store.read_stream(event.stream_id)
    assert stored.envelope().event(REGISTRY) == event


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE eventstore.events SET data = '{}'::jsonb",
        "DELETE FROM eventstore.events",
        "TRUNCATE eventstore.events",
    ],
)
async def test_the_runtime_role_may_not_change_events(
    store: EventStore, pool: asyncpg.Pool, statement: str
) -> None:
    stream = new_stream()
    await store.append(stream, [envelope(stream)])
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE eventstore.events SET data = '{}'::jsonb",
        "DELETE FROM eventstore.events",
        "TRUNCATE eventstore.events",
    ],
)
async def test_even_the_owner_may_not_change_events(
    store: EventStore, database_url: str, statement: str
) -> None:
    stream = new_stream()
    await store.append(stream, [envelope(stream)])
    owner = await connect(database_url)
    try:
        with pytest.raises(asyncpg.PostgresError, match="append-only") as raised:
            await owner.execute(statement)
        assert raised.value.sqlstate == "MQ005"
        assert await owner.fetchval("SELECT count(*) FROM eventstore.events") == 1
    finally:
        await owner.close()


async def test_inserting_past_the_head_of_a_stream_is_refused_by_the_database(
    pool: asyncpg.Pool,
) -> None:
    with pytest.raises(asyncpg.PostgresError, match="has no version"):
        await pool.execute(
            """INSERT INTO eventstore.events (district_id, category, stream_id, stream_version,
               event_id, event_type, schema_version, data, occurred_at, prev_hash, hash)
               VALUES ('demo', 'case', 'case-gap', 5, gen_random_uuid(), 'X', 1, '{}', now(),
                       '', '')"""
        )


async def test_each_event_is_chained_to_the_previous_one_by_hash(store: EventStore) -> None:
    stream = new_stream()
    await store.append(stream, [envelope(stream) for _ in range(3)])
    events = await store.read_stream(stream)
    assert events[0].prev_hash == bytes(32)
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert len({e.hash for e in events}) == 3


async def test_audit_finds_the_first_tampered_event(store: EventStore, database_url: str) -> None:
    stream = new_stream()
    await store.append(stream, [envelope(stream) for _ in range(3)])
    owner = await connect(database_url)
    try:
        assert await verify_chains(owner) == []
        # A superuser who disables the guard can still change a row, but not unseen.
        await owner.execute("ALTER TABLE eventstore.events DISABLE TRIGGER USER")
        await owner.execute(
            "UPDATE eventstore.events SET data = jsonb_set(data, '{message}', '\"改过\"') "
            "WHERE stream_id = $1 AND stream_version = 2",
            stream,
        )
        await owner.execute("ALTER TABLE eventstore.events ENABLE TRIGGER USER")
        broken = await verify_chains(owner)
    finally:
        await owner.close()
    assert broken[0]["stream_id"] == stream
    assert broken[0]["stream_version"] == 2
    assert broken[0]["problem"] == "changed_content"
    assert "hash does not match the content" in broken[0]["detail"]


async def test_an_append_in_an_older_transaction_than_the_head_is_refused(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """The inversion guard: delivering by xid would put the later version first."""
    stream = new_stream()
    async with pool.acquire() as older:
        tx = older.transaction()
        await tx.start()
        await scope(older, "demo")
        # This transaction takes its xid now, before the other writer's.
        await older.execute("SELECT pg_current_xact_id()")
        await store.append(stream, [envelope(stream)])  # commits with a newer xid
        with pytest.raises(OrderingConflict):
            await store.append(stream, [envelope(stream)], conn=older)
        await tx.rollback()
    assert await store.stream_version(stream) == 1


async def test_read_all_returns_nothing_above_a_running_transaction(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """An event committed while an older transaction runs waits below the horizon."""
    before = new_stream()
    await store.append(before, [envelope(before)])
    seen = [e.stream_id for e in await store.read_all(START)]
    assert seen == [before]
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        await scope(slow, "demo")
        slow_stream = new_stream()
        await store.append(slow_stream, [envelope(slow_stream)], conn=slow)
        late = new_stream()
        await store.append(late, [envelope(late)])  # committed, newer xid
        after = (await store.read_all(START))[-1].checkpoint
        assert [e.stream_id for e in await store.read_all(after)] == []
        await tx.commit()
    # The horizon is server-wide: give any other session's transaction time to end.
    rest: list[str] = []
    for _ in range(100):
        rest = [e.stream_id for e in await store.read_all(after)]
        if rest:
            break
        await asyncio.sleep(0.02)
    assert rest == [slow_stream, late]


async def test_rolled_back_appends_leave_holes_the_reader_passes(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    streams = []
    for i in range(6):
        stream = new_stream()
        if i % 2:
            async with pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                await scope(conn, "demo")
                await store.append(stream, [envelope(stream)], conn=conn)
                await tx.rollback()
        else:
            await store.append(stream, [envelope(stream)])
            streams.append(stream)
    read = await asyncio.wait_for(store.read_all(START), 2)
    positions = [e.global_position for e in read]
    assert [e.stream_id for e in read] == streams
    assert positions != list(range(positions[0], positions[0] + len(positions)))  # holes


async def test_any_version_appends_whatever_the_head(store: EventStore) -> None:
    stream = new_stream()
    for _ in range(3):
        await store.append(stream, [envelope(stream)], expected_version=ANY_VERSION)
    assert await store.stream_version(stream) == 3


async def test_checkpoints_only_move_forward(store: EventStore) -> None:
    from eventkit.store import Checkpoint

    await store.save_checkpoint("reader", Checkpoint(10, 5))
    await store.save_checkpoint("reader", Checkpoint(9, 50))
    assert await store.load_checkpoint("reader") == Checkpoint(10, 5)
    await store.save_checkpoint("reader", Checkpoint(0, 0), rewind=True)
    assert await store.load_checkpoint("reader") == START


async def test_appends_notify_only_while_the_relay_waits(
    store: EventStore, database_url: str
) -> None:
    listener = await connect(database_url)
    received: list[str] = []
    await listener.add_listener("minqing_events", lambda *args: received.append(args[2]))
    try:
        stream = new_stream()
        await store.append(stream, [envelope(stream)])
        await asyncio.sleep(0.2)
        assert received == []
        await listener.execute(
            "INSERT INTO eventstore.wakeup (relay_waiting) VALUES (true) "
            "ON CONFLICT (id) DO UPDATE SET relay_waiting = true"
        )
        await store.append(stream, [envelope(stream)])
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.02)
        assert received == ["minqing_events"]
    finally:
        await listener.close()


async def test_retrying_repeats_a_lost_race_and_gives_up_with_the_last_error() -> None:
    from eventkit.store import retrying

    calls: list[int] = []

    async def wins_on_the_third() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrencyError("case-1", 1, 2)
        return "saved"

    assert await retrying(wins_on_the_third, backoff=0) == "saved"
    assert len(calls) == 3

    async def always_loses() -> str:
        raise OrderingConflict("older transaction")

    with pytest.raises(OrderingConflict):
        await retrying(always_loses, attempts=2, backoff=0)

    async def other_error() -> str:
        calls.append(1)
        raise ValueError("not a race")

    calls.clear()
    with pytest.raises(ValueError, match="not a race"):
        await retrying(other_error, backoff=0)
    assert len(calls) == 1


async def test_a_batch_appends_to_many_streams_at_once_all_or_nothing(store: EventStore) -> None:
    streams = [f"notification-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    batch = [(s, [envelope(s)], NO_STREAM) for s in streams]
    async with district_transaction(store.pool, "demo") as conn:
        await store.append_batch(batch, conn=conn)
    assert [await store.stream_version(s) for s in streams] == [1, 1, 1]

    # The same batch again is a retry: nothing new.
    async with district_transaction(store.pool, "demo") as conn:
        await store.append_batch(batch, conn=conn)
    assert [await store.stream_version(s) for s in streams] == [1, 1, 1]

    # One stale expectation fails the whole batch: its new stream is not written either.
    fresh = f"notification-{uuid.uuid4().hex[:12]}"
    stale = [(fresh, [envelope(fresh)], NO_STREAM), (streams[0], [envelope(streams[0])], 0)]
    with pytest.raises(ConcurrencyError):
        async with district_transaction(store.pool, "demo") as conn:
            await store.append_batch(stale, conn=conn)
    assert not await store.stream_exists(fresh)


async def test_a_set_of_appends_chains_every_stream_from_its_head(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """One statement for the whole batch (eventstore.append_set): streams with a head and
    without, one to three events each, each event chained to its stream's previous one."""
    old, new, other = new_stream(), new_stream(), new_stream()
    await store.append(old, [envelope(old), envelope(old)], expected_version=NO_STREAM)
    batch = [
        (old, [envelope(old)], 2),
        (new, [envelope(new), envelope(new), envelope(new)], NO_STREAM),
        (other, [envelope(other), envelope(other)], NO_STREAM),
    ]
    async with district_transaction(store.pool, "demo") as conn:
        await store.append_batch(batch, conn=conn)
    assert [await store.stream_version(s) for s in (old, new, other)] == [3, 3, 2]
    for stream in (old, new, other):
        chain = await store.read_stream(stream)
        assert [e.stream_version for e in chain] == list(range(1, len(chain) + 1))
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    async with pool.acquire() as conn:
        await scope(conn, "*")
        assert await verify_chains(conn) == []


async def test_a_stream_that_comes_twice_in_a_set_follows_its_earlier_append(
    store: EventStore,
) -> None:
    twice, once = new_stream(), new_stream()
    batch = [
        (twice, [envelope(twice)], NO_STREAM),
        (once, [envelope(once)], NO_STREAM),
        (twice, [envelope(twice), envelope(twice)], 1),
    ]
    async with district_transaction(store.pool, "demo") as conn:
        await store.append_batch(batch, conn=conn)
    chain = await store.read_stream(twice)
    assert [e.stream_version for e in chain] == [1, 2, 3]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))


async def test_a_batch_retried_after_part_of_it_was_stored_appends_only_the_rest(
    store: EventStore,
) -> None:
    a, b = new_stream(), new_stream()
    first = (a, [envelope(a)], NO_STREAM)
    async with district_transaction(store.pool, "demo") as conn:
        await store.append_batch([first], conn=conn)
    async with district_transaction(store.pool, "demo") as conn:
        await store.append_batch([first, (b, [envelope(b)], NO_STREAM)], conn=conn)
    assert [await store.stream_version(s) for s in (a, b)] == [1, 1]


async def test_a_batch_with_another_district_s_stream_is_refused_whole(store: EventStore) -> None:
    theirs, fresh = new_stream(), new_stream()
    await store.append(theirs, [envelope(theirs, district="other")])
    batch = [(fresh, [envelope(fresh)], NO_STREAM), (theirs, [envelope(theirs)], ANY_VERSION)]
    with pytest.raises(DistrictMismatchError):
        async with district_transaction(store.pool, "demo") as conn:
            await store.append_batch(batch, conn=conn)
    assert not await store.stream_exists(fresh)


async def test_concurrent_appends_commit_together_and_each_fails_alone(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """Appends made at the same time go in one transaction (group commit); a refused one
    (a stale version, a reused id, another district) fails alone, with its own error."""
    taken = new_stream()
    await store.append(taken, [envelope(taken)], expected_version=NO_STREAM)
    stored = await store.read_stream(taken)
    reused = stored[0].envelope().model_copy(update={"data": {"message": "改过的内容"}})
    fresh = [new_stream() for _ in range(20)]
    outcomes = await asyncio.gather(
        *(store.append(s, [envelope(s), envelope(s)], expected_version=NO_STREAM) for s in fresh),
        store.append(taken, [envelope(taken)], expected_version=NO_STREAM),
        store.append(taken, [reused], expected_version=ANY_VERSION),
        store.append(taken, [envelope(taken, district="elsewhere")]),
        store.append(taken, [envelope(taken)], expected_version=1),
        return_exceptions=True,
    )
    assert [o.stream_version for o in outcomes[:20]] == [2] * 20  # type: ignore[union-attr]
    stale, other_content, other_district, good = outcomes[20:]
    assert isinstance(stale, ConcurrencyError)
    assert stale.actual == 1
    assert isinstance(other_content, DuplicateEventIdError)
    assert isinstance(other_district, DistrictMismatchError)
    assert not isinstance(good, BaseException)
    assert good.stream_version == 2
    transactions = await every_district(pool).fetchval(
        "SELECT count(DISTINCT transaction_id) FROM eventstore.events "
        "WHERE stream_id = ANY($1::text[])",
        fresh,
    )
    assert transactions < len(fresh)
    chain = await store.read_stream(taken)
    assert [e.stream_version for e in chain] == [1, 2]
    assert chain[1].prev_hash == chain[0].hash


async def test_without_group_commit_each_append_has_its_own_transaction(
    pool: asyncpg.Pool,
) -> None:
    store = EventStore(pool, group_commit=False)
    fresh = [new_stream() for _ in range(5)]
    await asyncio.gather(*(store.append(s, [envelope(s)]) for s in fresh))
    transactions = await every_district(pool).fetchval(
        "SELECT count(DISTINCT transaction_id) FROM eventstore.events "
        "WHERE stream_id = ANY($1::text[])",
        fresh,
    )
    assert transactions == len(fresh)


async def test_a_group_never_waits_for_a_lock_while_holding_another(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """A transaction holds stream b and then wants stream a, while a group of appends to
    a and b forms: if the group took a and then waited for b, the two would deadlock and
    one of them would fail. The group commits a, leaves b for later, and everyone wins."""
    a, b = new_stream(), new_stream()
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await scope(conn, "demo")
        # Holds b's stream lock, as an append to b in a longer transaction would (without
        # taking a transaction id yet, so that its later append is not an inversion).
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", b)
        group = asyncio.gather(store.append(a, [envelope(a)]), store.append(b, [envelope(b)]))
        await asyncio.sleep(0.2)  # the group takes a, finds b locked
        await store.append(a, [envelope(a)], conn=conn)
        await transaction.commit()
    first, second = await asyncio.wait_for(group, 10)
    assert (first.stream_version, second.stream_version) == (1, 1)
    assert [e.stream_version for e in await store.read_stream(a)] == [1, 2]
