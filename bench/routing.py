"""Routing benchmark: OpinionSubmitted → CaseAssigned throughput and latency.

Run with ``.venv/bin/python bench/routing.py``. It starts its own embedded PostgreSQL
in a temporary directory and its own Tansu broker on a free port, migrates, and runs the
relay and the routing service as child processes, as ``minqing up`` does (one process
each; routing told by ``MINQING_ROUTING_DISTRICT_FILES`` to import the demo district at
start-up, as the local stack tells it). This process plays
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
everything it started, also on Ctrl-C, SIGTERM or failure (``--keep`` keeps the
directory with every process's log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

# bench/harness.py: what the three benchmarks share (this script's folder is on sys.path)
from harness import (
    Column,
    CpuMeter,
    LocalStack,
    Results,
    Table,
    fetch_every_district,
    fetchval_every_district,
    following,
    machine,
    machine_line,
    ms_per,
    own_cpu,
    process_cpu,
    run,
    step,
    summary_ms,
    tree_cpu,
    verdict,
)

from contracts import Actor, ActorRole, Location, OpinionSubmitted
from contracts.envelope import Envelope, Metadata
from contracts.topics import CASES
from eventkit import cloudevents
from eventkit.db import create_pool
from eventkit.local import free_port
from eventkit.store import EventStore
from minqing.system import DEMO_DISTRICT_FILE
from services.routing.district_file import load_district_file
from services.routing.ids import case_id_for

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


@dataclass
class Places:
    """Where the bench's opinions come from: every community and station of the demo."""

    communities: list[tuple[str, float, float]] = field(default_factory=list)
    stations: list[str] = field(default_factory=list)

    @classmethod
    def of_demo(cls) -> Places:
        """The demo district's, from the file the routing service imports."""
        demo = load_district_file(DEMO_DISTRICT_FILE)
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


@dataclass
class Arrivals:
    """When each case's CaseAssigned arrived from the cases topic."""

    assigned: dict[str, float] = field(default_factory=dict)
    events: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def follow(bootstrap: str, topic: str, arrivals: Arrivals, ready: asyncio.Event) -> None:
    """Read the cases topic from the start, noting each CaseAssigned's arrival."""
    async with following(bootstrap, topic, fetch_max_wait_ms=20) as consumer:
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


async def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, arrivals: Arrivals
) -> None:
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


def measured(
    name: str,
    streams: list[str],
    committed: dict[str, float],
    arrivals: Arrivals,
    *,
    started: float,
    appended: float,
    cpu_s: dict[str, float],
) -> Phase:
    """The figures of a run whose cases (``streams``) have all been assigned: from
    ``started`` to the last arrival; each case's latency from its opinion's commit;
    ``appended``: the seconds the writers took; ``cpu_s``: each part's CPU."""
    finished = max(arrivals.assigned[s] for s in streams)
    latency = summary_ms([arrivals.assigned[s] - committed[s] for s in streams])
    cpu = ms_per(cpu_s, len(streams))
    cpu["total"] = round(sum(cpu.values()), 2)
    return Phase(
        name=name,
        cpu_ms_per_case=cpu,
        opinions=len(streams),
        seconds=round(finished - started, 2),
        cases_per_s=round(len(streams) / (finished - started), 1),
        p50_ms=latency["p50"],
        p99_ms=latency["p99"],
        max_ms=latency["max"],
        offered_per_s=round(len(streams) / appended, 1),
    )


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
    return measured(
        f"burst of {count}",
        streams,
        committed,
        arrivals,
        started=started,
        appended=appended,
        cpu_s=meter.spent(cpu),
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
    return measured(
        f"paced at {rate:g}/s for {duration:g} s",
        streams,
        committed,
        arrivals,
        started=start,
        appended=appended,
        cpu_s=meter.spent(cpu),
    )


async def measure(stack: LocalStack, args: argparse.Namespace) -> Results:
    """Start the relay and routing on the stack, as ``minqing up`` does; play intake."""
    if args.statements:
        await stack.record_statements()
    url = await stack.create_database("bench_routing", fast_autovacuum=True)
    env = stack.environment(
        url,
        {
            "MINQING_TOPIC_PREFIX": PREFIX,
            "MINQING_KAFKA_PARTITIONS": str(args.partitions),
            "MINQING_RELAY_POLL_INTERVAL": "0.2",
        },
    )
    routing_env = {
        **env,
        # The opinions are the demo district's: routing must import exactly that file.
        "MINQING_ROUTING_DISTRICT_FILES": json.dumps([str(DEMO_DISTRICT_FILE)]),
        "MINQING_ROUTING_CONSUMER_WORKERS": str(args.workers),
        "MINQING_DATABASE_POOL_MAX": str(max(4, 2 * args.workers + 2)),
    }
    wrapper = os.environ.get("BENCH_ROUTING")
    pool = await create_pool(url, role=RUNTIME_ROLE, min_size=WRITERS, max_size=WRITERS + 2)
    store = EventStore(pool)
    arrivals = Arrivals()
    places = Places.of_demo()
    reader_ready = asyncio.Event()
    reader: asyncio.Task[None] | None = None
    try:
        step("starting the relay and routing")
        relay = stack.start_relay(env)
        ports = [free_port() for _ in range(args.processes)]
        routings = [
            stack.start_service(
                f"routing{i}",
                "services.routing",
                {**routing_env, "MINQING_ROUTING_PORT": str(port)},
                argv=wrapper.split() if wrapper else None,
            )
            for i, port in enumerate(ports)
        ]
        for routing, port in zip(routings, ports, strict=True):
            await routing.ready(port)
        meter = CpuMeter(
            {
                "routing": [process_cpu(routing.pid) for routing in routings],
                "relay": [process_cpu(relay.pid)],
                "tansu": [process_cpu(stack.broker_pid)],
                "bench": [own_cpu],
                "postgresql": [tree_cpu(stack.postmaster_pid)],
            }
        )
        reader = asyncio.create_task(
            follow(stack.bootstrap, PREFIX + CASES, arrivals, reader_ready)
        )
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
        step(f"warm; a burst of {args.burst}")
        phases = {"burst": await burst(store, arrivals, places, args.burst, meter)}
        rate = args.rate or max(10.0, round(phases["burst"].cases_per_s / 2, -1))
        step(f"burst done; paced at {rate:g}/s")
        # The paced run measures a system whose tables have statistics, as autovacuum
        # keeps them on a running one (not those of the tables before the burst).
        await stack.analyze(url)
        if args.statements:
            await stack.reset_statements(url)
        phases["paced"] = await paced(store, arrivals, places, rate, args.duration, meter)
        cases = await fetchval_every_district(pool, "SELECT count(*) FROM routing.cases")
        queues = {
            r["queue"]: r["n"]
            for r in await fetch_every_district(
                pool, "SELECT queue, count(*) AS n FROM routing.cases GROUP BY 1"
            )
        }
        links = await fetchval_every_district(pool, "SELECT count(*) FROM routing.case_links")
        statements = await stack.statements(url, 30) if args.statements else []
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        await pool.close()
        stack.stop_children()
    burst_phase, paced_phase = phases["burst"], phases["paced"]
    return {
        "benchmark": "minqing-routing",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "routing_processes": args.processes,
        "consumer_workers_per_process": args.workers,
        "partitions": args.partitions,
        "phases": {k: asdict(v) for k, v in phases.items()},
        "cases_in_store": cases,
        "queues": queues,
        "links": links,
        "statements": [
            {k: (float(v) if k.endswith("_ms") else v) for k, v in row.items()}
            for row in statements
        ],
        "goals": {
            "at_least_500_cases_per_s": burst_phase.cases_per_s >= GOAL_CASES_PER_S,
            "p99_under_500_ms": paced_phase.p99_ms < GOAL_P99_MS,
        },
    }


TABLE = Table(
    Column("run", 28),
    Column("opinions", 8),
    Column("offered/s", 10, ".0f"),
    Column("cases/s", 8, ".0f"),
    Column("p50 ms", 8, ".1f"),
    Column("p99 ms", 8, ".1f"),
    Column("max ms", 8, ".1f"),
)


def report(results: Results) -> str:
    """The results as a readable table."""
    lines = [
        f"Minqing routing benchmark, {results['when']}",
        machine_line(results["machine"]),
        f"routing: {results['routing_processes']} process(es) x "
        f"{results['consumer_workers_per_process']} consumer worker(s); "
        f"{results['partitions']} partitions",
        "",
        TABLE.header(),
    ]
    for p in results["phases"].values():
        lines.append(
            TABLE.row(
                p["name"],
                p["opinions"],
                p["offered_per_s"],
                p["cases_per_s"],
                p["p50_ms"],
                p["p99_ms"],
                p["max_ms"],
            )
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
        f"goal >= 500 cases/s (burst): {verdict(g['at_least_500_cases_per_s'])}",
        f"goal p99 < 500 ms (paced): {verdict(g['p99_under_500_ms'])}",
    ]
    if results["statements"]:
        lines += ["", "PostgreSQL's statements in the paced run (most time first):"]
        lines += [
            f"  {r['calls']:>7} calls {r['total_ms']:>9.1f} ms {r['mean_ms']:>7.3f} ms/call"
            f" {r['rows']:>7} rows  {r['query'][:110]}"
            for r in results["statements"]
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start PostgreSQL and the broker, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--burst", type=int, default=6000, help="opinions in the burst")
    parser.add_argument(
        "--rate", type=float, default=None, help="opinions/s when paced (default: half the burst's)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds paced")
    parser.add_argument("--processes", type=int, default=2, help="routing processes")
    parser.add_argument("--workers", type=int, default=3, help="consumer workers per process")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="load pg_stat_statements and list the paced run's statements",
    )
    args = parser.parse_args(argv)
    return run("routing", lambda stack: measure(stack, args), report, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
