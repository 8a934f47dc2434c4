"""Event store benchmark: append rates, pgbench on the same server, relay lag.

Run with ``.venv/bin/python bench/eventstore.py`` (or ``make bench``). It starts its own
embedded PostgreSQL in a temporary directory and its own Tansu broker on a free port,
measures, prints a table and, as its last line, one JSON object with every figure, then
removes everything it started, also on Ctrl-C or failure.

What is measured (see docs/performance.md):

1. single-event ``EventStore.append`` calls per second, 1 writer and 8 writers;
2. batches of 100 events per call, 1 and 8 writers (events per second);
3. pgbench single-row INSERT transactions per second on the same server, 1 and 8 clients,
   and our single-event rates as a share of them;
4. relay lag at a paced 1,000 events/s: append time to broker acknowledgement (the
   relay's ``on_published``) and to a consumer's receipt;
5. diagnostic variants in a scratch database (unless ``--no-variants``): the same append
   with a held connection, without ``pg_notify``, with ``synchronous_commit=off``, without
   the per-row trigger; plus the server-side time per call (``track_functions``).

The appends run as ``minqing_runtime``, the role the services use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.envelope import Envelope, Metadata
from contracts.topics import CASES
from eventkit.db import create_pool, migrate
from eventkit.kafka import partitions_of
from eventkit.local import Broker, EmbeddedPostgres
from eventkit.logging import configure_logging
from eventkit.relay import Relay
from eventkit.settings import Settings
from eventkit.store import EventStore, RecordedEvent
from minqing.system import migration_packages

RUNTIME_ROLE = "minqing_runtime"
STREAMS = 1000
WRITERS = 8
BATCH = 100
DISTRICT = "demo"
PGBENCH_SQL = """INSERT INTO bench_raw (data) VALUES ('{"a": 1, "text": "电梯坏了"}');\n"""
APPEND_SIGNATURE = (
    "eventstore.append(text, bigint, text, uuid[], text[], integer[], jsonb[], jsonb[],"
    " timestamptz[])"
)
NOTIFY_CALL = "PERFORM pg_notify('minqing_events', '');"

GOAL_APPEND_SHARE = 0.5
GOAL_RELAY_P99_MS = 100.0


# --------------------------------------------------------------------------- helpers


def load() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def with_database(url: str, database: str) -> str:
    """The embedded server's URL (postgresql://postgres:@/postgres?host=<dir>) for another db."""
    head, _, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def socket_and_user(url: str) -> tuple[str, str]:
    """The Unix socket directory and the user of the embedded server's URL."""
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [""])[0] or parts.hostname or ""
    return host, parts.username or "postgres"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def make_envelope(stream_id: str, n: int = 0) -> Envelope:
    """A CaseReplied-shaped event, as a service would append it; occurred_at is now."""
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
    client_cpu_pct: float = 0.0
    """This process's CPU time over the wall time, in % of one core."""
    machine_busy_pct: float = 0.0
    """Busy share of all cores over the run (PostgreSQL, this process and anything else)."""
    load_at_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def measuring(phase: Phase) -> Iterator[None]:
    """Fill the wall time, CPU shares and load of ``phase`` around the block."""
    phase.load_at_start = load()
    busy0, total0 = _cpu_ticks()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        wall = time.perf_counter() - t0
        busy1, total1 = _cpu_ticks()
        phase.seconds = round(wall, 3)
        phase.client_cpu_pct = round(100 * (time.process_time() - cpu0) / wall, 1)
        if total1 > total0:
            phase.machine_busy_pct = round(100 * (busy1 - busy0) / (total1 - total0), 1)


# --------------------------------------------------------------------------- appends


async def run_appends(
    url: str,
    name: str,
    *,
    writers: int,
    batch: int,
    duration: float,
    hold_connection: bool = False,
) -> Phase:
    """``writers`` tasks appending ``batch`` events per call for ``duration`` seconds.

    Streams are taken round robin from 1,000 (a shared counter, so no two writers ever
    append to the same stream at once). Without ``hold_connection`` each call borrows a
    pool connection, as the services do; with it each writer keeps one and passes it.
    """
    pool = await create_pool(url, role=RUNTIME_ROLE, min_size=writers, max_size=max(writers, 8))
    store = EventStore(pool)
    tag = uuid.uuid4().hex[:6]
    streams = [f"case-{tag}{i:04d}" for i in range(STREAMS)]
    counter = itertools.count()
    latencies: list[float] = []
    phase = Phase(name, writers, batch)

    async def writer(deadline: float) -> int:
        events = 0
        async with contextlib.AsyncExitStack() as stack:
            conn = await stack.enter_async_context(pool.acquire()) if hold_connection else None
            while time.perf_counter() < deadline:
                n = next(counter)
                stream = streams[n % STREAMS]
                envelopes = [make_envelope(stream, n) for _ in range(batch)]
                started = time.perf_counter()
                await store.append(stream, envelopes, conn=conn)
                latencies.append(time.perf_counter() - started)
                events += batch
        return events

    try:
        # Warm up: every connection opened, the statement prepared, the pages cached.
        await asyncio.gather(*(writer(time.perf_counter() + 0.3) for _ in range(writers)))
        latencies.clear()
        with measuring(phase):
            deadline = time.perf_counter() + duration
            counts = await asyncio.gather(*(writer(deadline) for _ in range(writers)))
    finally:
        await pool.close()
    phase.events = sum(counts)
    phase.calls = len(latencies)
    phase.events_per_s = round(phase.events / phase.seconds, 1)
    phase.calls_per_s = round(phase.calls / phase.seconds, 1)
    phase.p50_ms = round(1000 * percentile(latencies, 50), 2)
    phase.p99_ms = round(1000 * percentile(latencies, 99), 2)
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


async def run_pgbench(url: str, database: str, clients: int, duration: float) -> Phase:
    """pgbench with one single-row INSERT per transaction; tps parsed from its output."""
    socket_dir, user = socket_and_user(url)
    admin = await asyncpg.connect(with_database(url, database))
    try:
        await admin.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, data jsonb NOT NULL)"
        )
    finally:
        await admin.close()
    script = Path(tempfile.gettempdir()) / f"minqing-bench-{os.getpid()}-{clients}.sql"
    script.write_text(PGBENCH_SQL, encoding="utf-8")
    pgbench = EmbeddedPostgres.bin_dir() / "pgbench"
    argv = [str(pgbench), "-n", "-f", str(script), "-c", str(clients)]
    argv += ["-j", str(min(clients, 2)), "-T", str(max(1, round(duration)))]
    argv += ["-h", socket_dir, "-U", user, "-d", database]
    phase = Phase(f"pgbench INSERT, {clients} client(s)", clients, 1)
    try:
        with measuring(phase):
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PGCLIENTENCODING": "UTF8"},
            )
            try:
                out, _ = await proc.communicate()
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                raise
    finally:
        script.unlink(missing_ok=True)
    text = out.decode("utf-8", "replace")
    tps = re.search(r"tps = ([0-9.]+)", text)
    latency = re.search(r"latency average = ([0-9.]+) ms", text)
    done = re.search(r"number of transactions actually processed: (\d+)", text)
    if proc.returncode != 0 or tps is None:
        raise RuntimeError(f"pgbench failed ({proc.returncode}):\n{text}")
    phase.events_per_s = phase.calls_per_s = round(float(tps.group(1)), 1)
    phase.events = phase.calls = int(done.group(1)) if done else 0
    phase.p50_ms = round(float(latency.group(1)), 2) if latency else 0.0
    phase.extra["latency"] = "average"
    return phase


# --------------------------------------------------------------------------- relay


async def run_relay_lag(url: str, bootstrap: str, duration: float, rate: int) -> Phase:
    """Lag of the relay while ``rate`` events/s are appended (10 writers, one event each 10 ms).

    ``ack`` lag: from the event's occurred_at (set just before its append) to the moment
    the relay has the broker's acknowledgement (``on_published``). ``consumer`` lag: to
    the moment a consumer assigned to every partition of the topic receives the record.
    """
    settings = Settings(
        database_url=url,
        kafka_bootstrap=bootstrap,
        topic_prefix="bench.",
        kafka_partitions=6,
    )
    topic = settings.topic(CASES)
    writer_pool = await create_pool(url, role=RUNTIME_ROLE, min_size=10, max_size=12)
    relay_pool = await create_pool(url, role=RUNTIME_ROLE, min_size=1, max_size=4)
    writer_store, relay_store = EventStore(writer_pool), EventStore(relay_pool)
    ack_lags: list[float] = []
    consumer_lags: list[float] = []
    batches: list[int] = []

    async def published(batch: list[RecordedEvent]) -> None:
        now = datetime.now(UTC)
        batches.append(len(batch))
        ack_lags.extend((now - e.occurred_at).total_seconds() for e in batch)

    relay = Relay(relay_store, settings, on_published=published)
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    phase = Phase(f"relay lag at {rate}/s", 10, 1)
    try:
        deadline = time.monotonic() + 30
        partitions: list[int] = []
        while not partitions:
            if relay_task.done():
                relay_task.result()
                raise RuntimeError("the relay stopped before creating its topics")
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} was not created")
            await asyncio.sleep(0.1)
            partitions = await partitions_of(bootstrap, topic)
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)

        async def consume() -> None:
            while True:
                got = await consumer.getmany(timeout_ms=100)
                now = datetime.now(UTC)
                for records in got.values():
                    for record in records:
                        ce_time = dict(record.headers)["ce_time"].decode()
                        sent = datetime.fromisoformat(ce_time.replace("Z", "+00:00"))
                        consumer_lags.append((now - sent).total_seconds())
                if target and len(consumer_lags) >= target[0]:
                    all_received.set()

        target: list[int] = []
        all_received = asyncio.Event()
        consumer_task = asyncio.create_task(consume())
        writers = 10
        interval = writers / rate
        appended = 0

        async def writer(w: int, start: float, end: float) -> int:
            count = 0
            for k in itertools.count():
                due = start + k * interval
                if due >= end:
                    return count
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                stream = f"case-lag{(k * writers + w) % STREAMS:04d}"
                await writer_store.append(stream, [make_envelope(stream, k)])
                count += 1
            return count

        with measuring(phase):
            start = time.monotonic() + 0.05
            counts = await asyncio.gather(
                *(writer(w, start, start + duration) for w in range(writers))
            )
            appended = sum(counts)
            write_seconds = time.monotonic() - start
            target.append(appended)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_received.wait(), 15)
        consumer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer_task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay_task, 15)
        with contextlib.suppress(Exception):
            await consumer.stop()
        await writer_pool.close()
        await relay_pool.close()
    phase.events = phase.calls = appended
    phase.events_per_s = phase.calls_per_s = round(appended / write_seconds, 1)
    phase.p50_ms = round(1000 * percentile(consumer_lags, 50), 1)
    phase.p99_ms = round(1000 * percentile(consumer_lags, 99), 1)
    phase.extra = {
        "consumer_received": len(consumer_lags),
        "consumer_lag_ms": _lag_summary(consumer_lags),
        "ack_lag_ms": _lag_summary(ack_lags),
        "relay_published": relay.published,
        "relay_batches": len(batches),
        "relay_mean_batch": round(sum(batches) / len(batches), 1) if batches else 0,
    }
    return phase


def _lag_summary(lags: list[float]) -> dict[str, float]:
    return {
        "p50": round(1000 * percentile(lags, 50), 1),
        "p99": round(1000 * percentile(lags, 99), 1),
        "max": round(1000 * max(lags, default=0.0), 1),
    }


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
    admin: asyncpg.Connection, run: Callable[[], Awaitable[Phase]]
) -> tuple[Phase, dict[str, dict[str, float]]]:
    """Run a phase and return the server time per call of each eventstore function."""
    before = await function_times(admin)
    phase = await run()
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


async def run_variants(admin_url: str, duration: float) -> dict[str, Any]:
    """The same appends in a scratch database with one thing changed at a time."""
    url = await new_database(admin_url, "bench_variant")
    admin = await asyncpg.connect(url)
    results: dict[str, Any] = {}
    try:
        original = await admin.fetchval(
            "SELECT pg_get_functiondef($1::regprocedure)", APPEND_SIGNATURE
        )

        async def eight(label: str, **kw: Any) -> Phase:
            return await run_appends(url, label, writers=WRITERS, batch=1, duration=duration, **kw)

        results["as_is_8"] = await eight("8 writers, as is")
        results["held_conn_8"] = await eight("8 writers, held connection", hold_connection=True)

        if NOTIFY_CALL in original:
            await admin.execute(original.replace(NOTIFY_CALL, ""))
            try:
                results["no_notify_8"] = await eight("8 writers, no pg_notify")
                results["no_notify_1"] = await run_appends(
                    url, "1 writer, no pg_notify", writers=1, batch=1, duration=duration
                )
                results["no_notify_held_8"] = await eight(
                    "8 writers, no pg_notify, held connection", hold_connection=True
                )
            finally:
                await admin.execute(original)

        await admin.execute("ALTER DATABASE bench_variant SET synchronous_commit = off")
        try:
            results["sync_off_8"] = await eight("8 writers, synchronous_commit=off")
        finally:
            await admin.execute("ALTER DATABASE bench_variant RESET synchronous_commit")

        results["batch_as_is_1"] = await run_appends(
            url, "batch 100, 1 writer, as is", writers=1, batch=BATCH, duration=duration
        )
        await admin.execute("ALTER TABLE eventstore.events DISABLE TRIGGER events_before_insert")
        try:
            results["batch_no_trigger_1"] = await run_appends(
                url,
                "batch 100, 1 writer, no row trigger",
                writers=1,
                batch=BATCH,
                duration=duration,
            )
            results["no_trigger_1"] = await run_appends(
                url, "1 writer, no row trigger", writers=1, batch=1, duration=duration
            )
        finally:
            await admin.execute("ALTER TABLE eventstore.events ENABLE TRIGGER events_before_insert")
    finally:
        await admin.close()
    return results


# --------------------------------------------------------------------------- the run


async def new_database(admin_url: str, name: str) -> str:
    """Create and migrate database ``name``; return its superuser URL."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute(f"ALTER DATABASE \"{name}\" SET track_functions = 'all'")
    finally:
        await conn.close()
    url = with_database(admin_url, name)
    await migrate(url, migration_packages())
    return url


async def run(admin_url: str, bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement; returns the JSON-ready results."""
    d = args.duration
    url = await new_database(admin_url, "bench")
    admin = await asyncpg.connect(url)
    phases: dict[str, Phase] = {}
    profiles: dict[str, Any] = {}
    try:
        server_version = await admin.fetchval("SHOW server_version")
        settings = {
            r["name"]: r["setting"]
            for r in await admin.fetch(
                "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                [
                    "fsync",
                    "synchronous_commit",
                    "wal_sync_method",
                    "shared_buffers",
                    "commit_delay",
                    "max_connections",
                ],
            )
        }
        rtt = await round_trip_ms(url)

        def step(label: str) -> None:
            print(f"... {label} (load {load()[0]})", file=sys.stderr, flush=True)

        step("single appends, 1 writer")
        phases["single_1"], profiles["single_1"] = await profiled(
            admin,
            lambda: run_appends(url, "single appends, 1 writer", writers=1, batch=1, duration=d),
        )
        step("single appends, 8 writers")
        phases["single_8"], profiles["single_8"] = await profiled(
            admin,
            lambda: run_appends(
                url, "single appends, 8 writers", writers=WRITERS, batch=1, duration=d
            ),
        )
        step("batch appends, 1 writer")
        phases["batch_1"], profiles["batch_1"] = await profiled(
            admin,
            lambda: run_appends(
                url, "batch-100 appends, 1 writer", writers=1, batch=BATCH, duration=d
            ),
        )
        step("batch appends, 8 writers")
        phases["batch_8"] = await run_appends(
            url, "batch-100 appends, 8 writers", writers=WRITERS, batch=BATCH, duration=d
        )
        step("pgbench, 1 client")
        phases["pgbench_1"] = await run_pgbench(admin_url, "bench", 1, d)
        step("pgbench, 8 clients")
        phases["pgbench_8"] = await run_pgbench(admin_url, "bench", WRITERS, d)
        step("relay lag")
        relay_url = await new_database(admin_url, "bench_relay")
        phases["relay"] = await run_relay_lag(relay_url, bootstrap, args.relay_duration, 1000)
        variants: dict[str, Phase] = {}
        if args.variants:
            step("diagnostic variants")
            variants = await run_variants(admin_url, args.variant_duration)
    finally:
        await admin.close()

    share_8 = phases["single_8"].events_per_s / max(phases["pgbench_8"].events_per_s, 1e-9)
    share_1 = phases["single_1"].events_per_s / max(phases["pgbench_1"].events_per_s, 1e-9)
    relay_p99 = phases["relay"].extra["consumer_lag_ms"]["p99"]
    return {
        "benchmark": "minqing-eventstore",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "load_at_end": load(),
            "python": platform.python_version(),
        },
        "postgres": {"version": server_version, "settings": settings, "round_trip_ms": rtt},
        "duration_s": d,
        "phases": {k: asdict(v) for k, v in phases.items()},
        "profiles_server_ms_per_call": profiles,
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


def _row(p: dict[str, Any]) -> str:
    return (
        f"{p['name']:<46} {p['events_per_s']:>10,.0f} {p['calls_per_s']:>9,.0f} "
        f"{p['p50_ms']:>7.2f} {p['p99_ms']:>7.2f} {p['client_cpu_pct']:>6.0f} "
        f"{p['machine_busy_pct']:>6.0f} {p['load_at_start'][0]:>5.2f}"
    )


def report(results: dict[str, Any]) -> str:
    """The results as a readable table."""
    m, pg = results["machine"], results["postgres"]
    lines = [
        f"Minqing event store benchmark, {results['when']}",
        f"machine: {m['nproc']} CPUs, {m['cpu']}; load at end {m['load_at_end']}",
        f"PostgreSQL {pg['version']} (embedded, Unix socket), {pg['settings']}, "
        f"round trip {pg['round_trip_ms']} ms",
        "",
        f"{'run':<46} {'events/s':>10} {'calls/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'cli%':>6} {'busy%':>6} {'load':>5}",
    ]
    phases = results["phases"]
    for key in ("single_1", "single_8", "batch_1", "batch_8", "pgbench_1", "pgbench_8"):
        lines.append(_row(phases[key]))
    lines.append("  (pgbench: latency is pgbench's average, not p50)")
    relay = phases["relay"]
    ex = relay["extra"]
    lines += [
        "",
        f"relay at {relay['events_per_s']:,.0f} events/s achieved "
        f"({relay['events']} appended, {ex['consumer_received']} received, "
        f"{ex['relay_batches']} relay batches of {ex['relay_mean_batch']} on average)",
        f"  lag to broker ack (on_published): p50 {ex['ack_lag_ms']['p50']} ms, "
        f"p99 {ex['ack_lag_ms']['p99']} ms, max {ex['ack_lag_ms']['max']} ms",
        f"  lag to consumer receipt:          p50 {ex['consumer_lag_ms']['p50']} ms, "
        f"p99 {ex['consumer_lag_ms']['p99']} ms, max {ex['consumer_lag_ms']['max']} ms",
    ]
    r, g = results["ratios"], results["goals"]
    lines += [
        "",
        f"single appends vs pgbench INSERT: 8 writers/8 clients = "
        f"{r['single_8_vs_pgbench_8']:.0%}, 1 writer/1 client = {r['single_1_vs_pgbench_1']:.0%}",
        f"goal: 8-writer single appends >= 50% of pgbench 8 clients: "
        f"{'PASS' if g['single_8_at_least_half_of_pgbench_8'] else 'MISS'}",
        f"goal: relay p99 lag < 100 ms: "
        f"{'PASS' if g['relay_p99_under_100ms'] else 'MISS'} "
        f"({ex['consumer_lag_ms']['p99']} ms)",
    ]
    if results["profiles_server_ms_per_call"]:
        lines += ["", "server time per call (track_functions), ms: total / self"]
        for key, profile in results["profiles_server_ms_per_call"].items():
            parts = [
                f"{name} {v['total_ms_per_call']:.3f}/{v['self_ms_per_call']:.3f}"
                for name, v in sorted(profile.items())
            ]
            lines.append(f"  {phases[key]['name']:<44} " + ", ".join(parts))
    if results["variants"]:
        lines += ["", "diagnostic variants (scratch database, shorter runs):"]
        lines += [_row(v) for v in results["variants"].values()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start PostgreSQL and the broker, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per append run")
    parser.add_argument("--relay-duration", type=float, default=10.0)
    parser.add_argument("--variant-duration", type=float, default=3.0)
    parser.add_argument(
        "--no-variants", dest="variants", action="store_false", help="skip the diagnostics"
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")

    def terminated(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    workdir = Path(tempfile.mkdtemp(prefix="minqing-bench-"))
    server = EmbeddedPostgres(workdir / "pg")
    broker = Broker(port=None, log_path=workdir / "tansu.log")
    try:
        print(f"... starting PostgreSQL and Tansu in {workdir}", file=sys.stderr, flush=True)
        admin_url = server.start()
        broker.start()
        results = asyncio.run(run(admin_url, broker.bootstrap, args))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            broker.stop()
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(results))
    print(json.dumps(results, ensure_ascii=False, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
