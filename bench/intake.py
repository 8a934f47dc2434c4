"""Intake benchmark: accepted submissions per second and latency, over HTTP.

Run with ``.venv/bin/python bench/intake.py``. It starts its own embedded PostgreSQL in a
temporary directory, its own Tansu broker on a free port, the relay
(``minqing relay run``) and the intake service (``python -m services.intake``) as child
processes on free ports, exactly as ``minqing up`` runs them; then concurrent clients
POST opinions to ``/api/v1/opinions`` for a fixed time. It prints a table and, as its last
line, one JSON object with every figure, then stops everything and removes the
directory, also on Ctrl-C, SIGTERM or failure.

The load: QR submissions (public channel, no token) at a station, half of them anonymous,
half with a name and a mainland mobile number (sealed per resident, so a key lookup or a
new key per request), and a quarter with an ``Idempotency-Key``. Every answer must be a
201; afterwards the store must hold exactly one ``OpinionSubmitted`` per 201, and the
relay must have published them all to ``minqing.opinions.v1`` (its lag is reported).

The clients are raw HTTP/1.1 keep-alive connections on asyncio, so the load generator
itself takes little of the two cores it shares with PostgreSQL, the broker, the relay and
intake. The CPU time each component spends per accepted submission is reported too: it
moves less with other load on the machine than the rates do. Goal (issue 3): at least 500
accepted submissions/s with p99 under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

# bench/harness.py: what the three benchmarks share (this script's folder is on sys.path)
from harness import (
    CpuMeter,
    LocalStack,
    Results,
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

from contracts import (
    Actor,
    ActorRole,
    DistrictRegistered,
    LatLong,
    StationKind,
    StationRegistered,
)
from contracts.base import Event
from contracts.envelope import Envelope
from eventkit.db import create_pool
from eventkit.local import free_port
from eventkit.store import EventStore
from services.intake.bootstrap import bootstrap
from services.intake.settings import IntakeSettings

DISTRICT = "bench"
STATION = "bench_home"
GOAL_RATE = 500.0
GOAL_P99_MS = 200.0
TEXTS = (
    "小区东门的三盏路灯坏了三个多月，晚上老人出门买菜很不方便，希望尽快修好。",
    "8号楼2单元电梯近一周三次停运，曾有老人被困，物业未及时处理，请代表帮忙协调。",
    "菜市场门口早高峰占道经营严重，电动车与行人混行，存在安全隐患，建议规范管理。",
    "夜间22点后仍有工地施工噪声，影响休息，希望相关部门依法查处。",
)


async def prepare(stack: LocalStack) -> str:
    """Create and migrate the database, and tell intake the district and its station:
    the directory events appended and applied through intake's own consumer, from its
    composition root. The database's URL."""
    url = await stack.create_database("bench")
    settings = IntakeSettings(database_url=url, kafka_bootstrap=stack.bootstrap)
    async with bootstrap(settings, background=False) as intake:
        actor = Actor(id="bench", role=ActorRole.DISTRICT_ADMIN)
        when = datetime.now(UTC)
        events: list[Event] = [
            DistrictRegistered(
                district_id=DISTRICT, occurred_at=when, actor=actor, name_zh="压测区"
            ),
            StationRegistered(
                district_id=DISTRICT,
                occurred_at=when,
                actor=actor,
                station_code=STATION,
                name_zh="压测街道人大代表之家",
                kind=StationKind.HOME,
                street_code="b",
                communities=["压测社区"],
                position=LatLong(lat=30.27, long=120.15),
            ),
        ]
        # The directory is routing's to write (each process appends only its own
        # streams): appended as routing, applied through intake's own consumer.
        routing_pool = await create_pool(url, role="minqing_routing", max_size=1)
        try:
            directory = EventStore(routing_pool, group_commit=False)
            for event in events:
                await directory.append(event.stream_id, [Envelope.wrap(event)])
                stored = (await directory.read_stream(event.stream_id))[-1]
                await intake.consumer.apply(stored.envelope())
        finally:
            await routing_pool.close()
    return url


# --- the load ---------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    accepted_in_all: int = 0
    """201s including the warm-up: what the store must hold."""


def request_bytes(port: int, rng: random.Random, address: str) -> bytes:
    """One POST /api/v1/opinions, ready to send."""
    body: dict[str, Any] = {
        "channel": "qr",
        "station_code": STATION,
        "text": rng.choice(TEXTS),
        "category_hint": "municipal",
        "location": {"community": "压测社区", "lat": 30.27, "long": 120.15},
    }
    if rng.random() < 0.5:
        body["contact"] = {"name": "王女士", "phone": f"139{rng.randrange(10**8):08d}"}
        body["consent"] = True
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = [
        "POST /api/v1/opinions HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        # Each client is a resident's phone of its own, behind the local proxy that the
        # service trusts (the rate limits keep a bucket per address, as in production).
        f"X-Forwarded-For: {address}",
    ]
    if rng.random() < 0.25:
        headers.append(f"Idempotency-Key: {uuid.uuid4()}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + payload


async def read_response(reader: asyncio.StreamReader) -> int:
    """The status of one HTTP/1.1 response (its body read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def client(port: int, until: float, measure_from: float, tally: Tally, seed: int) -> None:
    """One keep-alive connection submitting until ``until``."""
    rng = random.Random(seed)
    address = f"10.{seed // 250 % 250}.{seed % 250}.7"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            now = time.perf_counter()
            if now >= until:
                return
            writer.write(request_bytes(port, rng, address))
            await writer.drain()
            try:
                status = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                tally.errors += 1
                return
            done = time.perf_counter()
            if status == 201:
                tally.accepted_in_all += 1
            if now >= measure_from:
                tally.latencies.append(done - now)
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def measure(stack: LocalStack, args: argparse.Namespace) -> Results:
    """Start the relay and intake on the stack, as ``minqing up`` does, and load them."""
    if args.statements:
        await stack.record_statements(planning=True)
    url = await prepare(stack)
    env = stack.environment(
        url,
        {
            "MINQING_DATABASE_POOL_MAX": "20",
            # The clients come through one trusted proxy, each with an address of its own
            # (so each has its own bucket, as residents do); lift the per-address limits.
            "MINQING_TRUSTED_PROXIES": '["127.0.0.1/32"]',
            "MINQING_RATE_SUBMIT_PER_MINUTE": "1e9",
            "MINQING_RATE_SUBMIT_BURST": "1000000000",
            # ...and the station's: every submission goes through one QR code.
            "MINQING_RATE_STATION_PER_MINUTE": "1e9",
            "MINQING_RATE_STATION_BURST": "1000000000",
        },
    )
    step("starting the relay and intake")
    relay = stack.start_relay(env)
    ports = [free_port() for _ in range(args.processes)]
    intakes = [
        stack.start_service(
            f"intake-{n}", "services.intake", {**env, "MINQING_INTAKE_PORT": str(port)}
        )
        for n, port in enumerate(ports)
    ]
    for intake, port in zip(intakes, ports, strict=True):
        await intake.ready(port)
    meter = CpuMeter(
        {
            "intake": [process_cpu(intake.pid) for intake in intakes],
            "postgres": [tree_cpu(stack.postmaster_pid)],
            "relay": [process_cpu(relay.pid)],
            "broker": [process_cpu(stack.broker_pid)],
            "clients": [own_cpu],
        }
    )
    step(f"{args.clients} clients for {args.warmup:.0f} + {args.duration:.0f} s")
    results = await load_intake(
        ports,
        url,
        clients=args.clients,
        warmup=args.warmup,
        duration=args.duration,
        meter=meter,
        on_measuring=(lambda: stack.reset_statements(url)) if args.statements else None,
    )
    if args.statements:
        rows = await stack.statements(url, 30)
        results["statements"] = [
            {k: (float(v) if k.endswith("_ms") else v) for k, v in row.items()} for row in rows
        ]
    return results


async def load_intake(
    ports: list[int],
    url: str,
    *,
    clients: int,
    warmup: float,
    duration: float,
    meter: CpuMeter,
    on_measuring: Callable[[], Awaitable[None]] | None = None,
) -> Results:
    """Run the clients; check the store; return the figures. ``on_measuring`` is awaited
    when the warm-up ends (the statements' counters start afresh there)."""
    tally = Tally()
    start = time.perf_counter()
    measure_from = start + warmup
    until = measure_from + duration
    before: dict[str, float] = {}

    async def sample_cpu() -> None:
        nonlocal before
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        if on_measuring is not None:
            await on_measuring()
        before = meter.snapshot()

    sampler = asyncio.create_task(sample_cpu())
    await asyncio.gather(
        *(
            client(ports[seed % len(ports)], until, measure_from, tally, seed)
            for seed in range(clients)
        )
    )
    await sampler
    cpu = meter.spent(before)
    accepted = tally.statuses.get(201, 0)
    latencies = tally.latencies

    conn = await asyncpg.connect(url)
    try:
        stored = await conn.fetchval(
            "SELECT count(*) FROM eventstore.events WHERE event_type = 'OpinionSubmitted'"
        )
        drain_started = time.perf_counter()
        # The relay publishes everything: wait until nothing is after its checkpoint.
        published_at: float | None = None
        while time.perf_counter() - drain_started < 60:
            behind = await conn.fetchval(
                """
                SELECT count(*) FROM eventstore.events e, eventstore.checkpoints c
                 WHERE c.name = 'relay:main'
                   AND (e.transaction_id, e.global_position)
                       > (c.transaction_id, c.global_position)
                """
            )
            if behind == 0:
                published_at = time.perf_counter()
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    rate = accepted / duration
    latency = summary_ms(latencies, (50, 90, 99))
    return {
        "intake_processes": len(ports),
        "clients": clients,
        "duration_s": duration,
        "accepted": accepted,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "connection_errors": tally.errors,
        "accepted_per_s": round(rate, 1),
        "latency_ms": {
            **latency,
            "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        },
        "cpu_ms_per_submission": ms_per(cpu, accepted),
        "cpu_cores_busy": round(sum(cpu.values()) / duration, 2),
        "events_in_store": stored,
        "every_201_stored_once": stored == tally.accepted_in_all,
        "relay_drain_s_after_load": (
            round(published_at - drain_started, 2) if published_at is not None else None
        ),
        "goal": {
            "rate": GOAL_RATE,
            "p99_ms": GOAL_P99_MS,
            "met": rate >= GOAL_RATE and latency["p99"] < GOAL_P99_MS,
        },
        "machine": machine(),
    }


def report(results: Results) -> str:
    """The figures as a short table."""
    latency = results["latency_ms"]
    return "\n".join(
        [
            f"intake ({results['intake_processes']} process(es)): {results['clients']} "
            f"concurrent clients for {results['duration_s']:.0f} s",
            f"  accepted (201)        {results['accepted']:>8}   {results['statuses']}",
            f"  accepted per second   {results['accepted_per_s']:>8.1f}",
            f"  latency p50 / p90     {latency['p50']:>8.1f} / {latency['p90']:.1f} ms",
            f"  latency p99 / max     {latency['p99']:>8.1f} / {latency['max']} ms",
            "  CPU ms per 201        "
            + ", ".join(f"{k} {v:.2f}" for k, v in results["cpu_ms_per_submission"].items()),
            f"  cores busy            {results['cpu_cores_busy']:>8.2f} of "
            f"{results['machine']['nproc']}",
            f"  OpinionSubmitted      {results['events_in_store']:>8} in the store "
            f"(one per 201: {results['every_201_stored_once']})",
            f"  relay drained after   {results['relay_drain_s_after_load']} s",
            f"  goal >= {GOAL_RATE:.0f}/s, p99 < {GOAL_P99_MS:.0f} ms: "
            f"{verdict(results['goal']['met'])}",
            f"  {machine_line(results['machine'])}",
            *_statement_lines(results),
        ]
    )


def _statement_lines(results: Results) -> list[str]:
    """PostgreSQL's time by statement per accepted submission (``--statements``):
    planning apart from execution, so that a statement planned at every call shows."""
    rows = results.get("statements") or []
    accepted = max(1, results["accepted"])
    lines = [
        "",
        "statements, ms per 201: plan + exec (calls per 201, plans per 201, query)",
    ]
    for r in rows:
        lines.append(
            f"  {r['plan_total_ms'] / accepted:6.3f} + {r['total_ms'] / accepted:6.3f}"
            f"  ({r['calls'] / accepted:4.2f}, {r['plans'] / accepted:4.2f})  {r['query']}"
        )
    if rows:
        plan = sum(r["plan_total_ms"] for r in rows) / accepted
        run_ms = sum(r["total_ms"] for r in rows) / accepted
        lines.append(f"  {plan:6.3f} + {run_ms:6.3f}  in all (nested statements counted twice)")
    return lines if rows else []


def main(argv: list[str] | None = None) -> int:
    """Start the stack, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="intake processes, each on its own port, the clients spread over them "
        "(as replicas behind a load balancer)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the working directory and its logs"
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="load pg_stat_statements (planning timed too) and print where PostgreSQL "
        "spent its time per accepted submission",
    )
    args = parser.parse_args(argv)
    return run("intake", lambda stack: measure(stack, args), report, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
