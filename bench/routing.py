"""Routing benchmark: OpinionSubmitted → CaseAssigned throughput and latency.

Run with ``.venv/bin/python bench/routing.py``. It starts its own embedded PostgreSQL
in a temporary directory and its own Tansu broker on a free port, migrates, and runs the
relay and the routing service as child processes, as in production (one process each,
the routing service importing the demo district at start-up). This process plays
intake: it appends ``OpinionSubmitted`` events to the store, and it reads
``minqing.cases.v1`` back. Then:

1. **burst**: N opinions appended as fast as 8 writers can; throughput is the number of
   cases assigned per second, from the first append to the last ``CaseAssigned`` read
   from Kafka;
2. **paced**: opinions at a steady rate (by default half the burst's throughput, so the
   system is busy but keeps up) for some seconds; for each one the latency from the
   commit of its ``OpinionSubmitted`` to the arrival of its ``CaseAssigned`` on Kafka
   (p50, p99, max): the whole path, relay to broker to routing to store to relay to
   broker.

For each phase it also reports the CPU time per case used by every part of the system
(routing, relay, PostgreSQL, Tansu, and this process playing intake): on a small
machine they all share the same cores, and the sum says what one case costs.
``BENCH_ROUTING`` replaces the routing service's command line (default
``-m services.routing``), e.g. with a profiling wrapper.

The opinions are varied (16 kinds of matter, every community and station of the demo
district, points around them), so classification, scoring and duplicate detection do
their real work. It prints a table and, as its last line, one JSON object, then removes
everything it started, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import Actor, ActorRole, Location, OpinionSubmitted
from contracts.envelope import Envelope, Metadata
from contracts.topics import CASES
from eventkit import cloudevents
from eventkit.db import create_pool, migrate
from eventkit.kafka import partitions_of
from eventkit.local import Broker, EmbeddedPostgres, die_with_parent, free_port
from eventkit.logging import configure_logging
from eventkit.store import EventStore
from minqing.system import migration_packages
from services.routing.ids import case_id_for

ROOT = Path(__file__).resolve().parents[1]
DEMO_FILE = ROOT / "deploy" / "districts" / "demo.yaml"
PREFIX = "bench."
RUNTIME_ROLE = "minqing_runtime"
WRITERS = 8
GOAL_CASES_PER_S = 500.0
GOAL_P99_MS = 500.0

SUBJECTS = [
    "3号楼",
    "小区东门",
    "幼儿园门口",
    "菜市场旁边",
    "我家楼下",
    "社区北侧",
    "公交站附近",
    "老年活动中心",
]
MATTERS = [
    "电梯坏了好几天，物业一直不来修",
    "路灯不亮，晚上走路很危险",
    "垃圾桶满了没人清运，气味很大",
    "烧烤店油烟很大，晚上噪音扰民",
    "占道经营严重，电动车和行人挤在一起",
    "下水道堵了，路面积水很深",
    "孩子入学学位紧张，希望增加学位",
    "社区卫生服务中心挂号难",
    "希望开设老年食堂解决老人助餐",
    "工地拖欠工资，农民工讨薪无门",
    "楼道里有人飞线充电，存在安全隐患",
    "公交站取消后出行很不方便",
    "餐馆后厨卫生很差，怀疑食品变质",
    "邻里纠纷多次调解没有结果",
    "老旧小区加装电梯进展缓慢",
    "想了解一下社区有什么文体活动",
]
DETAILS = ["已经反映过两次了", "请尽快处理", "希望代表关注", "附近居民意见很大", "", "麻烦了"]


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


@dataclass
class Places:
    """Where the bench's opinions come from: every community and station of the demo."""

    communities: list[tuple[str, float, float]] = field(default_factory=list)
    stations: list[str] = field(default_factory=list)

    @classmethod
    def of_demo(cls) -> Places:
        from services.routing.district_file import load_district_file

        demo = load_district_file(DEMO_FILE)
        places = cls()
        for street in demo.streets:
            for c in street.communities:
                assert c.position is not None
                places.communities.append((c.name, c.position.lat, c.position.long))
        places.stations = [s.code for s in demo.stations if not s.retired]
        return places

    def location(self, rng: random.Random) -> Location:
        """A QR scan, a community, or a bare point, like the channels give them."""
        name, lat, long = rng.choice(self.communities)
        roll = rng.random()
        if roll < 0.4:
            return Location(station_code=rng.choice(self.stations), community=name)
        if roll < 0.8:
            return Location(community=name)
        return Location(
            lat=lat + rng.uniform(-0.003, 0.003), long=long + rng.uniform(-0.003, 0.003)
        )


def opinion(rng: random.Random, places: Places, n: int) -> OpinionSubmitted:
    """A varied, realistic opinion of the demo district."""
    text = f"{rng.choice(SUBJECTS)}{rng.choice(MATTERS)}，{rng.choice(DETAILS)}（{n}）"
    return OpinionSubmitted(
        district_id="demo",
        occurred_at=datetime.now(UTC),
        actor=Actor(id=f"subj_{n:07d}", role=ActorRole.RESIDENT),
        opinion_id=f"op_{uuid.uuid4().hex[:16]}",
        channel=rng.choice(["qr", "walk_in", "online", "hotline_12345"]),
        text=text,
        location=places.location(rng),
    )


class Children:
    """The relay and the routing service as child processes."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - kept for the child
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Arrivals:
    """When each case's CaseAssigned arrived from the cases topic."""

    assigned: dict[str, float] = field(default_factory=dict)
    events: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def follow(bootstrap: str, topic: str, arrivals: Arrivals, ready: asyncio.Event) -> None:
    """Read the cases topic from the start, noting each CaseAssigned's arrival."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        parts: list[int] = []
        while not parts:
            parts = await partitions_of(bootstrap, topic)
            await asyncio.sleep(0.1)
        assigned = [TopicPartition(topic, p) for p in parts]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=50, max_records=5000)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    arrivals.events += 1
                    headers = cloudevents.header_map(record.headers)
                    if ".CaseAssigned." in headers.get("ce_type", ""):
                        arrivals.assigned.setdefault(headers["ce_subject"], now)
            if batch:
                arrivals.changed.set()
    finally:
        await consumer.stop()


async def wait_until(predicate: Any, timeout: float, what: str, arrivals: Arrivals) -> None:
    """Wait for ``predicate()``, waking on each batch from the topic."""
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(what)
        arrivals.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrivals.changed.wait(), min(remaining, 0.5))


def stream_of(event: OpinionSubmitted) -> str:
    """The case stream an opinion becomes."""
    return f"case-{case_id_for(event.district_id, event.opinion_id)}"


async def append(store: EventStore, event: OpinionSubmitted, n: int) -> float:
    """Append one opinion as intake does; return the moment it is committed."""
    await store.append(
        event.stream_id,
        [Envelope.wrap(event, Metadata(correlation_id=f"bench-{n}"))],
        expected_version=0,
    )
    return time.monotonic()


@dataclass
class Phase:
    """The figures of one run."""

    name: str
    opinions: int = 0
    seconds: float = 0.0
    cases_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    offered_per_s: float = 0.0
    cpu_ms_per_case: dict[str, float] = field(default_factory=dict)
    """CPU time per case of each part of the system during the run."""


class CpuMeter:
    """CPU seconds used by each part: routing, relay, PostgreSQL, Tansu, this process."""

    def __init__(self, parts: dict[str, list[int]], pg_data_dir: Path) -> None:
        self.parts = parts
        self.pg_data_dir = str(pg_data_dir)

    def _processes(self) -> dict[str, list[psutil.Process]]:
        found: dict[str, list[psutil.Process]] = {
            name: [psutil.Process(pid) for pid in pids] for name, pids in self.parts.items()
        }
        postgres: list[psutil.Process] = []
        for process in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(process.info.get("cmdline") or [])
            if process.info.get("name") == "postgres" and self.pg_data_dir in cmdline:
                postgres.append(process)
                with contextlib.suppress(psutil.Error):
                    postgres += process.children(recursive=True)
        found["postgresql"] = postgres
        return found

    def snapshot(self) -> dict[str, float]:
        """Seconds of CPU (user + system) used so far by each part's processes."""
        totals: dict[str, float] = {}
        for name, processes in self._processes().items():
            total = 0.0
            for process in {p.pid: p for p in processes}.values():
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
            totals[name] = total
        return totals

    @staticmethod
    def per_case(before: dict[str, float], after: dict[str, float], cases: int) -> dict[str, float]:
        """Milliseconds of CPU per case, by part and in total."""
        used = {k: max(0.0, after.get(k, 0.0) - before.get(k, 0.0)) for k in after}
        result = {k: round(1000 * v / cases, 2) for k, v in used.items()}
        result["total"] = round(sum(result.values()), 2)
        return result


async def burst(
    store: EventStore, arrivals: Arrivals, places: Places, count: int, meter: CpuMeter
) -> Phase:
    """``count`` opinions as fast as the writers go; cases assigned per second."""
    rng = random.Random(7)
    events = [opinion(rng, places, n) for n in range(count)]
    streams = [stream_of(e) for e in events]
    committed: dict[str, float] = {}
    counter = itertools.count()

    async def writer() -> None:
        while (n := next(counter)) < count:
            committed[streams[n]] = await append(store, events[n], n)

    cpu = meter.snapshot()
    started = time.monotonic()
    await asyncio.gather(*(writer() for _ in range(WRITERS)))
    appended = time.monotonic() - started
    await wait_until(
        lambda: all(s in arrivals.assigned for s in streams), 600, "burst cases", arrivals
    )
    finished = max(arrivals.assigned[s] for s in streams)
    used = CpuMeter.per_case(cpu, meter.snapshot(), count)
    seconds = finished - started
    latencies = [arrivals.assigned[s] - committed[s] for s in streams]
    return Phase(
        name=f"burst of {count}",
        cpu_ms_per_case=used,
        opinions=count,
        seconds=round(seconds, 2),
        cases_per_s=round(count / seconds, 1),
        p50_ms=round(1000 * percentile(latencies, 50), 1),
        p99_ms=round(1000 * percentile(latencies, 99), 1),
        max_ms=round(1000 * max(latencies), 1),
        offered_per_s=round(count / appended, 1),
    )


async def paced(
    store: EventStore,
    arrivals: Arrivals,
    places: Places,
    rate: float,
    duration: float,
    meter: CpuMeter,
) -> Phase:
    """Opinions at ``rate`` per second for ``duration`` seconds; latency of each."""
    rng = random.Random(11)
    count = int(rate * duration)
    events = [opinion(rng, places, 10_000_000 + n) for n in range(count)]
    streams = [stream_of(e) for e in events]
    committed: dict[str, float] = {}
    interval = WRITERS / rate
    cpu = meter.snapshot()
    start = time.monotonic() + 0.05

    async def writer(w: int) -> None:
        for k, n in enumerate(range(w, count, WRITERS)):
            delay = start + k * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            committed[streams[n]] = await append(store, events[n], n)

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    appended = time.monotonic() - start
    await wait_until(
        lambda: all(s in arrivals.assigned for s in streams), 300, "paced cases", arrivals
    )
    finished = max(arrivals.assigned[s] for s in streams)
    used = CpuMeter.per_case(cpu, meter.snapshot(), count)
    latencies = [arrivals.assigned[s] - committed[s] for s in streams]
    return Phase(
        name=f"paced at {rate:g}/s for {duration:g} s",
        cpu_ms_per_case=used,
        opinions=count,
        seconds=round(finished - start, 2),
        cases_per_s=round(count / (finished - start), 1),
        p50_ms=round(1000 * percentile(latencies, 50), 1),
        p99_ms=round(1000 * percentile(latencies, 99), 1),
        max_ms=round(1000 * max(latencies), 1),
        offered_per_s=round(count / appended, 1),
    )


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Block until the routing service answers /readyz (its consumer has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the routing service exited; see routing.log")
        url = f"http://127.0.0.1:{port}/readyz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError("the routing service did not become ready")


async def run(
    admin_url: str, broker: Broker, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Every measurement; returns the JSON-ready results."""
    bootstrap = broker.bootstrap
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("CREATE DATABASE bench_routing")
    finally:
        await conn.close()
    url = with_database(admin_url, "bench_routing")
    await migrate(url, migration_packages())
    env = {
        "MINQING_DATABASE_URL": url,
        "MINQING_KAFKA_BOOTSTRAP": bootstrap,
        "MINQING_TOPIC_PREFIX": PREFIX,
        "MINQING_KAFKA_PARTITIONS": str(args.partitions),
        "MINQING_LOG_LEVEL": "WARNING",
        "MINQING_LOG_FORMAT": "json",
        "MINQING_RELAY_POLL_INTERVAL": "0.2",
    }
    port = free_port()
    children = Children(workdir)
    pool = await create_pool(url, role=RUNTIME_ROLE, min_size=WRITERS, max_size=WRITERS + 2)
    store = EventStore(pool)
    arrivals = Arrivals()
    places = Places.of_demo()
    reader_ready = asyncio.Event()
    reader: asyncio.Task[None] | None = None
    try:
        relay = children.start("relay", [sys.executable, "-m", "minqing.cli", "relay", "run"], env)
        routing_env = {
            **env,
            "MINQING_ROUTING_PORT": str(port),
            "MINQING_ROUTING_DISTRICT_FILES": json.dumps([str(DEMO_FILE)]),
            "MINQING_ROUTING_CONSUMER_WORKERS": str(args.workers),
            "MINQING_DATABASE_POOL_MAX": str(max(4, 2 * args.workers + 2)),
        }
        processes = [
            children.start(
                f"routing{i}",
                [sys.executable, *os.environ.get("BENCH_ROUTING", "-m services.routing").split()],
                {**routing_env, "MINQING_ROUTING_PORT": str(port + i)},
            )
            for i in range(args.processes)
        ]
        for i, process in enumerate(processes):
            await asyncio.to_thread(wait_ready, port + i, process)
        assert broker.pid is not None
        meter = CpuMeter(
            {
                "routing": [p.pid for p in processes],
                "relay": [relay.pid],
                "tansu": [broker.pid],
                "bench": [os.getpid()],
            },
            workdir / "pg",
        )
        reader = asyncio.create_task(follow(bootstrap, PREFIX + CASES, arrivals, reader_ready))
        await asyncio.wait_for(reader_ready.wait(), 60)
        # Warm up until every consumer of the group has its partitions: a few opinions
        # spread over the partitions, all assigned.
        rng = random.Random(1)
        warm = [opinion(rng, places, 99_000_000 + n) for n in range(60)]
        for n, event in enumerate(warm):
            await append(store, event, n)
        await wait_until(
            lambda: all(stream_of(e) in arrivals.assigned for e in warm), 120, "warm-up", arrivals
        )
        print("... warm", file=sys.stderr, flush=True)
        phases = {"burst": await burst(store, arrivals, places, args.burst, meter)}
        print("... burst done", file=sys.stderr, flush=True)
        rate = args.rate or max(10.0, round(phases["burst"].cases_per_s / 2, -1))
        phases["paced"] = await paced(store, arrivals, places, rate, args.duration, meter)
        cases = await pool.fetchval("SELECT count(*) FROM routing.cases")
        queues = {
            r["queue"]: r["n"]
            for r in await pool.fetch("SELECT queue, count(*) AS n FROM routing.cases GROUP BY 1")
        }
        links = await pool.fetchval("SELECT count(*) FROM routing.case_links")
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        await pool.close()
        children.stop()
    burst_phase, paced_phase = phases["burst"], phases["paced"]
    return {
        "benchmark": "minqing-routing",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "load_at_end": os.getloadavg()},
        "routing_processes": args.processes,
        "consumer_workers_per_process": args.workers,
        "partitions": args.partitions,
        "phases": {k: asdict(v) for k, v in phases.items()},
        "cases_in_store": cases,
        "queues": queues,
        "links": links,
        "goals": {
            "at_least_500_cases_per_s": burst_phase.cases_per_s >= GOAL_CASES_PER_S,
            "p99_under_500_ms": paced_phase.p99_ms < GOAL_P99_MS,
        },
    }


def report(results: dict[str, Any]) -> str:
    """The results as a readable table."""
    lines = [
        f"Minqing routing benchmark, {results['when']}",
        f"machine: {results['machine']['nproc']} CPUs; "
        f"load at end {results['machine']['load_at_end']}",
        f"routing: {results['routing_processes']} process(es) x "
        f"{results['consumer_workers_per_process']} consumer worker(s); "
        f"{results['partitions']} partitions",
        "",
        f"{'run':<28} {'opinions':>8} {'offered/s':>10} {'cases/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8}",
    ]
    for p in results["phases"].values():
        lines.append(
            f"{p['name']:<28} {p['opinions']:>8} {p['offered_per_s']:>10.0f} "
            f"{p['cases_per_s']:>8.0f} {p['p50_ms']:>8.1f} {p['p99_ms']:>8.1f} {p['max_ms']:>8.1f}"
        )
    lines.append("")
    lines.append("CPU ms per case (all parts of the system on this machine):")
    for p in results["phases"].values():
        parts = ", ".join(f"{k} {v:.2f}" for k, v in p["cpu_ms_per_case"].items())
        lines.append(f"  {p['name']:<26} {parts}")
    g = results["goals"]
    lines += [
        "",
        f"cases: {results['cases_in_store']} ({results['queues']}), links {results['links']}",
        f"goal >= 500 cases/s (burst): {'PASS' if g['at_least_500_cases_per_s'] else 'MISS'}",
        f"goal p99 < 500 ms (paced): {'PASS' if g['p99_under_500_ms'] else 'MISS'}",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def local_parts(workdir: Path) -> Iterator[tuple[str, Broker]]:
    """PostgreSQL and Tansu for the run, stopped and removed afterwards."""
    server = EmbeddedPostgres(workdir / "pg")
    broker = Broker(port=None, log_path=workdir / "tansu.log")
    try:
        admin_url = server.start()
        broker.start()
        yield admin_url, broker
    finally:
        with contextlib.suppress(Exception):
            broker.stop()
        with contextlib.suppress(Exception):
            server.stop()


def main(argv: list[str] | None = None) -> int:
    """Start PostgreSQL and the broker, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=6000, help="opinions in the burst")
    parser.add_argument(
        "--rate", type=float, default=None, help="opinions/s when paced (default: half the burst's)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds paced")
    parser.add_argument("--processes", type=int, default=2, help="routing processes")
    parser.add_argument("--workers", type=int, default=3, help="consumer workers per process")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")

    def terminated(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    workdir = Path(tempfile.mkdtemp(prefix="minqing-bench-routing-"))
    try:
        print(f"... starting PostgreSQL and Tansu in {workdir}", file=sys.stderr, flush=True)
        with local_parts(workdir) as (admin_url, broker):
            results = asyncio.run(run(admin_url, broker, workdir, args))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report(results))
    print(json.dumps(results, ensure_ascii=False, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
