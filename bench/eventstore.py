"""Event store benchmark: append rates, pgbench on the same server, relay lag.

Run with ``.venv/bin/python bench/eventstore.py`` (``make bench``). It starts its own
embedded PostgreSQL in a temporary directory and its own Tansu broker on a free port,
measures, prints a table and, as its last line, one JSON object with every figure, then
stops both and removes the directory, also on Ctrl-C, SIGTERM or failure.

Measured (docs/performance.md explains the figures):

1. single-event ``EventStore.append`` calls per second, 1 writer and 8 writers;
2. batches of 100 events per call, 1 and 8 writers (events per second);
3. pgbench single-row INSERT transactions per second on the same server, 1 and 8
   clients, and our single-event rates as a share of them;
4. relay lag at a paced 1,000 events/s: from the event's occurred_at (set just before its
   append) to a consumer's receipt, and to the relay's broker acknowledgement;
5. diagnostics in a scratch database (skip with ``--no-variants``): the append without
   ``pg_notify``, with a pool that skips its reset query, without the hash in the row
   trigger, the append function driven by pgbench (no Python; also without its duplicate
   pre-check), the relay polling every 20 ms instead of being notified.

Appends run as ``minqing_runtime``, the role of the services. CPU figures: PostgreSQL's
(the postmaster and all its children) and this process's (or pgbench's) CPU time per
event, which are less disturbed by other load on the machine than the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

# bench/harness.py: what the three benchmarks share (this script's folder is on sys.path)
from harness import (
    Column,
    CpuMeter,
    LocalStack,
    Results,
    Table,
    following,
    machine,
    machine_line,
    own_cpu,
    percentile,
    reaped_children_cpu,
    run,
    step,
    summary_ms,
    tree_cpu,
    verdict,
)

from contracts.envelope import Envelope, Metadata
from contracts.topics import CASES
from eventkit.db import _init_connection, create_pool
from eventkit.local import EmbeddedPostgres
from eventkit.relay import Relay
from eventkit.settings import Settings
from eventkit.store import EventStore, TailEvent

RUNTIME_ROLE = "minqing_runtime"
STREAMS = 1000
WRITERS = 8
BATCH = 100
DISTRICT = "demo"
RELAY_RATE = 1000
GOAL_APPEND_SHARE = 0.5
GOAL_RELAY_P99_MS = 100.0

RAW_SQL = """INSERT INTO bench_raw (data) VALUES ('{"a": 1, "text": "电梯坏了"}');\n"""
# The same call the store makes, one CaseReplied-sized event, streams round robin-ish.
APPEND_SQL = """\\set sid random(1, 1000)
SELECT * FROM eventstore.append('case-pgb' || :sid, -1, 'demo', ARRAY[gen_random_uuid()],
  ARRAY['CaseReplied'], ARRAY[1], ARRAY['{"actor": {"id": "liaison-07", "role": "liaison"},
  "case_id": "pgb", "district_id": "demo", "occurred_at": "2026-11-22T02:01:56.123456+00:00",
  "message": "已联系物业处理，电梯维修师傅明天上午到场，请您留意电话。"}'::jsonb],
  ARRAY['{"correlation_id": "req-1",
  "causation_id": "6f1c0d9e-5e8a-4d2b-9a43-1d2b3c4d5e6f"}'::jsonb],
  ARRAY[now()]);
""".replace("\n  ", " ")

APPEND_FUNCTION = (
    "eventstore.append(text, bigint, text, uuid[], text[], integer[], jsonb[], jsonb[],"
    " timestamptz[])"
)
TRIGGER_FUNCTION = "eventstore.before_insert()"
NOTIFY_CALL = "PERFORM pg_notify('minqing_events', '');"
HASH_CALL = "NEW.hash := sha256(v_prev || eventstore.canonical_bytes(NEW));"
DUPLICATE_CHECK = re.compile(
    r"SELECT count\(\*\) INTO v_existing .*?USING ERRCODE = 'MQ003';\s*END IF;", re.DOTALL
)


# --------------------------------------------------------------------------- measuring


@dataclass
class Phase:
    """The figures of one timed run."""

    name: str
    writers: int
    batch: int
    events: int = 0
    calls: int = 0
    seconds: float = 0.0
    events_per_s: float = 0.0
    calls_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    server_cpu_ms_per_event: float = 0.0
    """PostgreSQL's CPU time (all its processes) per event."""
    client_cpu_ms_per_event: float = 0.0
    """This process's CPU time (pgbench's for pgbench) per event."""
    machine_busy_pct: float = 0.0
    """Busy share of all cores over the run (PostgreSQL, the client and anything else)."""
    load_at_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    extra: dict[str, Any] = field(default_factory=dict)

    def rates(self, latencies: list[float] | None = None) -> None:
        """Derive the rates (and latency percentiles) from the counts and the time."""
        seconds = max(self.seconds, 1e-9)
        self.events_per_s = round(self.events / seconds, 1)
        self.calls_per_s = round(self.calls / seconds, 1)
        if latencies is not None:
            self.p50_ms = round(1000 * percentile(latencies, 50), 2)
            self.p99_ms = round(1000 * percentile(latencies, 99), 2)

    def charge(self) -> None:
        """Per-event CPU figures, once ``events`` is known."""
        if self.events:
            for kind in ("server", "client"):
                spent = self.extra.get(f"{kind}_cpu_s", 0.0)
                setattr(self, f"{kind}_cpu_ms_per_event", round(1000 * spent / self.events, 4))


@contextlib.contextmanager
def measuring(stack: LocalStack, phase: Phase, *, pgbench: bool = False) -> Iterator[None]:
    """Time ``phase`` and charge it the server's, the client's and the machine's CPU.

    ``pgbench``: the client is pgbench, a child process, not this one.
    """
    meter = CpuMeter(
        {
            "server": [tree_cpu(stack.postmaster_pid)],
            "client": [reaped_children_cpu if pgbench else own_cpu],
        }
    )
    with meter.measuring() as usage:
        phase.load_at_start = usage.load_at_start
        yield
    phase.seconds = round(usage.seconds, 3)
    phase.machine_busy_pct = usage.machine_busy_pct
    for part, seconds in usage.cpu_s.items():
        phase.extra[f"{part}_cpu_s"] = round(seconds, 3)


# --------------------------------------------------------------------------- appends


def make_envelope(stream_id: str, n: int = 0) -> Envelope:
    """A CaseReplied-shaped event as a service would append it; occurred_at is now."""
    now = datetime.now(UTC)
    return Envelope(
        event_type="CaseReplied",
        schema_version=1,
        stream_id=stream_id,
        district_id=DISTRICT,
        occurred_at=now,
        metadata=Metadata(correlation_id=f"req-{n}", causation_id=str(uuid.uuid4())),
        data={
            "district_id": DISTRICT,
            "occurred_at": now.isoformat(),
            "actor": {"id": "liaison-07", "role": "liaison"},
            "case_id": stream_id.partition("-")[2],
            "message": "已联系物业处理，电梯维修师傅明天上午到场，请您留意电话。",
        },
    )


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """A pool reset without the server round trip (asyncpg still rolls back)."""


async def runtime_pool(url: str, size: int, *, reset_query: bool = True) -> asyncpg.Pool:
    """A pool as the services make it (eventkit.db.create_pool), or one without the
    reset query asyncpg sends on every release (the variant)."""
    if reset_query:
        return await create_pool(url, role=RUNTIME_ROLE, min_size=size, max_size=size)

    async def init(conn: asyncpg.Connection) -> None:
        await _init_connection(conn, RUNTIME_ROLE)

    pool = await asyncpg.create_pool(
        url, min_size=size, max_size=size, init=init, reset=_no_reset, command_timeout=60
    )
    assert pool is not None
    return pool


async def run_appends(
    stack: LocalStack,
    url: str,
    name: str,
    *,
    writers: int,
    batch: int,
    duration: float,
    reset_query: bool = True,
) -> Phase:
    """``writers`` tasks calling ``EventStore.append`` with ``batch`` events each.

    Streams are taken round robin from 1,000 with a shared counter, so no two writers
    append to one stream at once. Every call borrows a pool connection, as the services
    do; the pool has one connection per writer.
    """
    pool = await runtime_pool(url, max(writers, 8), reset_query=reset_query)
    store = EventStore(pool)
    tag = uuid.uuid4().hex[:6]
    streams = [f"case-{tag}{i:04d}" for i in range(STREAMS)]
    counter = itertools.count()
    latencies: list[float] = []
    phase = Phase(name, writers, batch)

    async def writer(deadline: float) -> int:
        events = 0
        while time.perf_counter() < deadline:
            n = next(counter)
            stream = streams[n % STREAMS]
            envelopes = [make_envelope(stream, n) for _ in range(batch)]
            started = time.perf_counter()
            await store.append(stream, envelopes)
            latencies.append(time.perf_counter() - started)
            events += batch
        return events

    try:
        # Warm up: every connection used, the statement prepared, the pages cached.
        await asyncio.gather(*(writer(time.perf_counter() + 0.3) for _ in range(writers)))
        latencies.clear()
        with measuring(stack, phase):
            deadline = time.perf_counter() + duration
            counts = await asyncio.gather(*(writer(deadline) for _ in range(writers)))
    finally:
        await pool.close()
    phase.events, phase.calls = sum(counts), len(latencies)
    phase.rates(latencies)
    phase.charge()
    return phase


async def round_trip_ms(url: str) -> float:
    """The median time of ``SELECT 1`` on one connection: the floor of any call."""
    conn = await asyncpg.connect(url)
    try:
        times = []
        for _ in range(300):
            started = time.perf_counter()
            await conn.fetchval("SELECT 1")
            times.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return round(1000 * percentile(times, 50), 3)


# --------------------------------------------------------------------------- pgbench


def socket_and_user(stack: LocalStack) -> tuple[str, str]:
    """The server's Unix socket directory and its superuser's name, for pgbench."""
    parts = urlsplit(stack.admin_url)
    host = parse_qs(parts.query).get("host", [""])[0] or parts.hostname or ""
    return host, parts.username or "postgres"


async def run_pgbench(
    stack: LocalStack,
    database: str,
    name: str,
    script: str,
    clients: int,
    duration: float,
    *,
    role: str | None = None,
    prepared: bool = False,
) -> Phase:
    """pgbench running ``script`` (one transaction each) on ``clients`` connections.

    The raw INSERT reference runs as specified (``-n -f script -c N -j 2 -T 5``, simple
    protocol); the append function runs prepared, as asyncpg sends it.
    """
    socket_dir, user = socket_and_user(stack)
    phase = Phase(name, clients, 1)
    script_path = stack.workdir / "pgbench.sql"
    script_path.write_text(script, encoding="utf-8")
    env = {**os.environ, "PGCLIENTENCODING": "UTF8"}
    if role:
        env["PGOPTIONS"] = f"-c role={role}"
    with measuring(stack, phase, pgbench=True):
        argv = [str(EmbeddedPostgres.bin_dir() / "pgbench"), "-n", "-f", str(script_path)]
        argv += ["-c", str(clients), "-j", str(min(clients, 2))]
        argv += ["-T", str(max(1, round(duration)))]
        argv += ["-M", "prepared"] if prepared else []
        argv += ["-h", socket_dir, "-U", user, "-d", database]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
        )
        try:
            out, _ = await proc.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        await asyncio.sleep(0.2)  # let the postmaster reap the backends (their CPU)
    text = out.decode("utf-8", "replace")
    tps = re.search(r"tps = ([0-9.]+)", text)
    done = re.search(r"number of transactions actually processed: (\d+)", text)
    latency = re.search(r"latency average = ([0-9.]+) ms", text)
    if proc.returncode != 0 or tps is None or done is None:
        raise RuntimeError(f"pgbench failed ({proc.returncode}):\n{text}")
    phase.events = phase.calls = int(done.group(1))
    phase.events_per_s = phase.calls_per_s = round(float(tps.group(1)), 1)
    phase.p50_ms = round(float(latency.group(1)), 2) if latency else 0.0
    phase.extra["latency"] = "pgbench average, not p50"
    phase.charge()
    return phase


# --------------------------------------------------------------------------- relay


async def run_relay_lag(
    stack: LocalStack,
    url: str,
    name: str,
    *,
    duration: float,
    topic_prefix: str = "bench.",
    poll_interval: float | None = None,
) -> Phase:
    """Relay lag while 1,000 events/s are appended: 10 paced writers, one event each 10 ms.

    Consumer lag: from the event's occurred_at (ce_time; set just before the append) to
    the moment a consumer assigned to every partition of the topic receives the record.
    Ack lag: to the moment the relay has the broker's acknowledgement and has saved its
    checkpoint (``on_published``).
    """
    settings = Settings(
        database_url=url,
        kafka_bootstrap=stack.bootstrap,
        topic_prefix=topic_prefix,
        kafka_partitions=6,
    )
    if poll_interval:
        settings = settings.model_copy(update={"relay_poll_interval": poll_interval})
    topic = settings.topic(CASES)
    writer_pool = await runtime_pool(url, 10)
    relay_pool = await create_pool(url, role=RUNTIME_ROLE, min_size=1, max_size=4)
    writer_store = EventStore(writer_pool)
    ack_lags: list[float] = []
    consumer_lags: list[float] = []
    batches: list[int] = []

    async def published(batch: list[TailEvent]) -> None:
        now = datetime.now(UTC)
        batches.append(len(batch))
        ack_lags.extend((now - e.occurred_at).total_seconds() for e in batch)

    relay = TimedRelay(EventStore(relay_pool), settings, on_published=published)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    phase = Phase(name, 10, 1)
    expected: list[int] = []
    all_received = asyncio.Event()

    async def consume(consumer: Any) -> None:
        while True:
            got = await consumer.getmany(timeout_ms=100)
            now = datetime.now(UTC)
            for records in got.values():
                for record in records:
                    ce_time = dict(record.headers)["ce_time"].decode()
                    sent = datetime.fromisoformat(ce_time.replace("Z", "+00:00"))
                    consumer_lags.append((now - sent).total_seconds())
            if expected and len(consumer_lags) >= expected[0]:
                all_received.set()

    async def writer(w: int, start: float, end: float, interval: float) -> int:
        for k in itertools.count():
            due = start + k * interval
            if due >= end:
                return k
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            stream = f"case-lag{(k * 10 + w) % STREAMS:04d}"
            await writer_store.append(stream, [make_envelope(stream, k)])
        return 0  # unreachable

    try:
        async with following(
            stack.bootstrap, topic, fetch_max_wait_ms=10, timeout=30, alive=relay_task
        ) as consumer:
            consumer_task = asyncio.create_task(consume(consumer))
            try:
                with measuring(stack, phase):
                    start = time.monotonic() + 0.05
                    counts = await asyncio.gather(
                        *(writer(w, start, start + duration, 10 / RELAY_RATE) for w in range(10))
                    )
                    write_seconds = time.monotonic() - start
                    expected.append(sum(counts))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(all_received.wait(), 15)
            finally:
                consumer_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer_task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay_task, 15)
        await writer_pool.close()
        await relay_pool.close()
    phase.events = phase.calls = expected[0]
    phase.seconds = round(write_seconds, 3)
    phase.rates()
    consumer_lag = summary_ms(consumer_lags)
    phase.p50_ms, phase.p99_ms = consumer_lag["p50"], consumer_lag["p99"]
    phase.charge()
    phase.extra.update(
        relay_poll_interval_s=settings.relay_poll_interval,
        consumer_received=len(consumer_lags),
        consumer_lag_ms=consumer_lag,
        ack_lag_ms=summary_ms(ack_lags),
        relay_published=relay.published,
        relay_batches=len(batches),
        relay_mean_batch=round(sum(batches) / len(batches), 1) if batches else 0,
        relay_mean_iteration_ms=round(1000 * write_seconds / len(batches), 1) if batches else 0,
        relay_publish_ms=summary_ms(relay.publish_seconds),
    )
    return phase


class TimedRelay(Relay):
    """The relay, timing how long each batch takes to be published and acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.publish_seconds: list[float] = []

    async def _publish(self, producer: Any, batch: list[TailEvent]) -> None:
        started = time.perf_counter()
        await super()._publish(producer, batch)
        self.publish_seconds.append(time.perf_counter() - started)


# --------------------------------------------------------------------------- variants


async def function_times(admin: asyncpg.Connection) -> dict[str, tuple[int, float, float]]:
    """(calls, total ms, self ms) of the eventstore functions (track_functions = all)."""
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    rows = await admin.fetch(
        "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions "
        "WHERE schemaname = 'eventstore'"
    )
    return {r["funcname"]: (r["calls"], r["total_time"], r["self_time"]) for r in rows}


async def profiled(
    admin: asyncpg.Connection, timed: Callable[[], Awaitable[Phase]]
) -> tuple[Phase, dict[str, dict[str, float]]]:
    """Run a phase; also return the server time per call of each eventstore function."""
    before = await function_times(admin)
    phase = await timed()
    await asyncio.sleep(0.3)  # the closed backends flush their statistics as they exit
    after = await function_times(admin)
    profile = {}
    for name, (calls, total, self_) in after.items():
        c0, t0, s0 = before.get(name, (0, 0.0, 0.0))
        if calls > c0:
            n = calls - c0
            profile[name] = {
                "calls": n,
                "total_ms_per_call": round((total - t0) / n, 3),
                "self_ms_per_call": round((self_ - s0) / n, 3),
            }
    return phase, profile


@contextlib.asynccontextmanager
async def replaced(
    admin: asyncpg.Connection, function: str, old: str | re.Pattern[str], new: str
) -> AsyncIterator[bool]:
    """``function``'s body with ``old`` (text or pattern) replaced by ``new`` for the
    block; yields False (and changes nothing) when ``old`` is not in it."""
    original = await admin.fetchval("SELECT pg_get_functiondef($1::regprocedure)", function)
    pattern = old if isinstance(old, re.Pattern) else re.compile(re.escape(old))
    changed = pattern.sub(lambda _m: new, original)
    if changed == original:
        yield False
        return
    await admin.execute(changed)
    try:
        yield True
    finally:
        await admin.execute(original)


async def run_variants(stack: LocalStack, duration: float) -> dict[str, Phase]:
    """The same work in a scratch database with one thing changed at a time.

    The 8-writer runs are interleaved over two rounds (the median is what counts: the
    machine is shared).
    """
    url = await stack.create_database("bench_variant", track_functions=True)
    admin = await asyncpg.connect(url)
    out: dict[str, Phase] = {}

    async def appends(
        name: str, writers: int, batch: int = 1, *, reset_query: bool = True
    ) -> Phase:
        return await run_appends(
            stack,
            url,
            name,
            writers=writers,
            batch=batch,
            duration=duration,
            reset_query=reset_query,
        )

    try:
        for r in (1, 2):
            out[f"as_is_8_r{r}"] = await appends("8 writers, as is", WRITERS)
            async with replaced(admin, APPEND_FUNCTION, NOTIFY_CALL, "") as done:
                if done:
                    out[f"no_notify_8_r{r}"] = await appends("8 writers, no pg_notify", WRITERS)
                    out[f"no_notify_no_reset_8_r{r}"] = await appends(
                        "8 writers, no pg_notify, no pool reset", WRITERS, reset_query=False
                    )
        out["as_is_1"] = await appends("1 writer, as is", 1)
        out["no_reset_1"] = await appends("1 writer, no pool reset", 1, reset_query=False)
        out["batch_as_is_1"] = await appends("batch-100, 1 writer, as is", 1, BATCH)
        async with replaced(admin, TRIGGER_FUNCTION, HASH_CALL, "NEW.hash := v_prev;") as done:
            if done:
                out["batch_no_hash_1"] = await appends(
                    "batch-100, 1 writer, trigger without hash", 1, BATCH
                )
        for clients in (1, WRITERS):
            out[f"pgbench_append_{clients}"] = await run_pgbench(
                stack,
                "bench_variant",
                f"pgbench eventstore.append, {clients} client(s)",
                APPEND_SQL,
                clients,
                duration,
                role=RUNTIME_ROLE,
                prepared=True,
            )
        async with replaced(admin, APPEND_FUNCTION, DUPLICATE_CHECK, "") as done:
            if done:
                out["pgbench_append_no_dup_check_1"] = await run_pgbench(
                    stack,
                    "bench_variant",
                    "pgbench eventstore.append, 1 client, no dup check",
                    APPEND_SQL,
                    1,
                    duration,
                    role=RUNTIME_ROLE,
                    prepared=True,
                )
        async with replaced(admin, APPEND_FUNCTION, NOTIFY_CALL, "") as done:
            if done:
                out["pgbench_append_no_notify_8"] = await run_pgbench(
                    stack,
                    "bench_variant",
                    "pgbench eventstore.append, 8 clients, no pg_notify",
                    APPEND_SQL,
                    WRITERS,
                    duration,
                    role=RUNTIME_ROLE,
                    prepared=True,
                )
    finally:
        await admin.close()

    relay_url = await stack.create_database("bench_relay_poll", track_functions=True)
    admin = await asyncpg.connect(relay_url)
    try:
        async with replaced(admin, APPEND_FUNCTION, NOTIFY_CALL, "") as done:
            if done:
                out["relay_no_notify_poll_20ms"] = await run_relay_lag(
                    stack,
                    relay_url,
                    "relay, no pg_notify, polling every 20 ms",
                    duration=max(duration, 4.0),
                    topic_prefix="bench-poll.",
                    poll_interval=0.02,
                )
    finally:
        await admin.close()
    return out


# --------------------------------------------------------------------------- the run


async def measure(stack: LocalStack, args: argparse.Namespace) -> Results:
    """Every measurement; the JSON-ready results."""
    d = args.duration
    url = await stack.create_database("bench", track_functions=True)
    admin = await asyncpg.connect(url)
    phases: dict[str, Phase] = {}
    profiles: dict[str, Any] = {}
    try:
        await admin.execute(
            "CREATE TABLE bench_raw (id bigserial PRIMARY KEY, data jsonb NOT NULL)"
        )
        server_version = await admin.fetchval("SHOW server_version")
        pg_settings = {
            r["name"]: r["setting"]
            for r in await admin.fetch(
                "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                ["fsync", "synchronous_commit", "wal_sync_method", "shared_buffers"],
            )
        }
        rtt = await round_trip_ms(url)

        async def appends(key: str, name: str, writers: int, batch: int) -> None:
            step(name)
            phases[key], profiles[key] = await profiled(
                admin,
                lambda: run_appends(stack, url, name, writers=writers, batch=batch, duration=d),
            )

        await appends("single_1", "single appends, 1 writer", 1, 1)
        await appends("single_8", "single appends, 8 writers", WRITERS, 1)
        await appends("batch_1", "batch-100 appends, 1 writer", 1, BATCH)
        await appends("batch_8", "batch-100 appends, 8 writers", WRITERS, BATCH)
        for clients in (1, WRITERS):
            step(f"pgbench, {clients} client(s)")
            phases[f"pgbench_{clients}"] = await run_pgbench(
                stack, "bench", f"pgbench raw INSERT, {clients} client(s)", RAW_SQL, clients, d
            )
        step("relay lag")
        relay_url = await stack.create_database("bench_relay", track_functions=True)
        phases["relay"] = await run_relay_lag(
            stack, relay_url, f"relay at {RELAY_RATE}/s", duration=args.relay_duration
        )
    finally:
        await admin.close()
    variants: dict[str, Phase] = {}
    if args.variants:
        step("diagnostic variants")
        variants = await run_variants(stack, args.variant_duration)

    share_8 = phases["single_8"].events_per_s / max(phases["pgbench_8"].events_per_s, 1e-9)
    share_1 = phases["single_1"].events_per_s / max(phases["pgbench_1"].events_per_s, 1e-9)
    relay_p99 = phases["relay"].extra["consumer_lag_ms"]["p99"]
    return {
        "benchmark": "minqing-eventstore",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "postgres": {"version": server_version, "settings": pg_settings, "round_trip_ms": rtt},
        "duration_s": d,
        "phases": {k: asdict(v) for k, v in phases.items()},
        "server_ms_per_call_by_function": profiles,
        "variants": {k: asdict(v) for k, v in variants.items()},
        "ratios": {
            "single_8_vs_pgbench_8": round(share_8, 3),
            "single_1_vs_pgbench_1": round(share_1, 3),
        },
        "goals": {
            "single_8_at_least_half_of_pgbench_8": share_8 >= GOAL_APPEND_SHARE,
            "relay_p99_under_100ms": relay_p99 < GOAL_RELAY_P99_MS,
        },
    }


# --------------------------------------------------------------------------- output


TABLE = Table(
    Column("run", 50),
    Column("events/s", 9, ",.0f"),
    Column("calls/s", 8, ",.0f"),
    Column("p50 ms", 7, ".2f"),
    Column("p99 ms", 7, ".2f"),
    Column("srv ms", 7, ".3f"),
    Column("cli ms", 7, ".3f"),
    Column("busy%", 5, ".0f"),
    Column("load", 5, ".2f"),
)


def _row(p: dict[str, Any]) -> str:
    return TABLE.row(
        p["name"],
        p["events_per_s"],
        p["calls_per_s"],
        p["p50_ms"],
        "-" if "latency" in p["extra"] else p["p99_ms"],  # pgbench gives an average only
        p["server_cpu_ms_per_event"],
        p["client_cpu_ms_per_event"],
        p["machine_busy_pct"],
        p["load_at_start"][0],
    )


def _relay_lines(p: dict[str, Any]) -> list[str]:
    ex = p["extra"]
    return [
        f"{p['name']}: {p['events_per_s']:,.0f} events/s achieved ({p['events']} appended, "
        f"{ex['consumer_received']} received; relay: {ex['relay_batches']} batches of "
        f"{ex['relay_mean_batch']} on average, poll fallback {ex['relay_poll_interval_s']} s)",
        f"  relay loop: one batch every {ex['relay_mean_iteration_ms']} ms; publish + broker "
        f"ack p50 {ex['relay_publish_ms']['p50']} ms, p99 {ex['relay_publish_ms']['p99']} ms",
        f"  to consumer receipt:           p50 {ex['consumer_lag_ms']['p50']} ms, "
        f"p99 {ex['consumer_lag_ms']['p99']} ms, max {ex['consumer_lag_ms']['max']} ms",
        f"  to broker ack + checkpoint:    p50 {ex['ack_lag_ms']['p50']} ms, "
        f"p99 {ex['ack_lag_ms']['p99']} ms, max {ex['ack_lag_ms']['max']} ms",
    ]


def report(results: Results) -> str:
    """The results as readable text."""
    m, pg = results["machine"], results["postgres"]
    phases = results["phases"]
    lines = [
        f"Minqing event store benchmark, {results['when']}",
        machine_line(m),
        f"PostgreSQL {pg['version']} (embedded, Unix socket) {pg['settings']}; "
        f"SELECT 1 round trip {pg['round_trip_ms']} ms",
        "srv ms / cli ms: CPU ms per event of PostgreSQL / of the client (this process or "
        "pgbench); busy%: all cores, anyone; load: 1-min load average at the start",
        "",
        TABLE.header(),
    ]
    for key in ("single_1", "single_8", "batch_1", "batch_8", "pgbench_1", "pgbench_8"):
        lines.append(_row(phases[key]))
    lines += ["  (pgbench rows: p50 is pgbench's average latency)", ""]
    lines += _relay_lines(phases["relay"])
    r, g = results["ratios"], results["goals"]
    relay_p99 = phases["relay"]["extra"]["consumer_lag_ms"]["p99"]
    lines += [
        "",
        f"single appends / pgbench INSERT: 8 writers vs 8 clients "
        f"{r['single_8_vs_pgbench_8']:.0%}, 1 writer vs 1 client "
        f"{r['single_1_vs_pgbench_1']:.0%}",
        f"goal: 8-writer single appends >= 50% of pgbench 8 clients ... "
        f"{verdict(g['single_8_at_least_half_of_pgbench_8'])} "
        f"({r['single_8_vs_pgbench_8']:.0%})",
        f"goal: relay p99 lag < 100 ms ............................... "
        f"{verdict(g['relay_p99_under_100ms'])} ({relay_p99} ms)",
    ]
    profiles = results["server_ms_per_call_by_function"]
    if profiles:
        lines += ["", "server time per call inside the functions (track_functions), ms total/self:"]
        for key, profile in profiles.items():
            parts = [
                f"{name} {v['total_ms_per_call']:.3f}/{v['self_ms_per_call']:.3f}"
                for name, v in sorted(profile.items())
            ]
            lines.append(f"  {phases[key]['name']:<32} " + ", ".join(parts))
    variants = results["variants"]
    if variants:
        lines += ["", "diagnostic variants (scratch database, shorter runs):", TABLE.header()]
        lines += [_row(v) for k, v in variants.items() if not k.startswith("relay")]
        for k, v in variants.items():
            if k.startswith("relay"):
                lines += _relay_lines(v)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start PostgreSQL and the broker, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per main run")
    parser.add_argument("--relay-duration", type=float, default=10.0)
    parser.add_argument("--variant-duration", type=float, default=2.0)
    parser.add_argument(
        "--no-variants", dest="variants", action="store_false", help="skip the diagnostics"
    )
    args = parser.parse_args(argv)
    return run("eventstore", lambda stack: measure(stack, args), report)


if __name__ == "__main__":
    sys.exit(main())
