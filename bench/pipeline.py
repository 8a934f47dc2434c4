"""Pipeline benchmark: a resident's QR submission → its case assigned, the whole system.

Run with ``.venv/bin/python bench/pipeline.py``. It starts its own embedded PostgreSQL
and Tansu broker, then every process ``minqing up`` runs, as it runs them: the relay,
intake, routing (told to import the demo district and train its classifier, as the local
stack tells it), notification with the local outbox (``minqing sink``) and reporting, all
on this machine. Then clients POST opinions to intake's QR API (``/api/v1/opinions``) at
a steady rate (open loop: a submission is due every 1/rate seconds whether or not the
earlier ones were answered) for some seconds, and for each accepted one it measures
the time from the 201 to the moment its ``CaseAssigned`` is committed in the store
(seen by a reader polling the store every 10 ms for the cases assigned since its last look).

It prints p50, p95, p99 and max of that latency, the submissions' own latency (request
to 201), the rate offered and achieved, and the CPU time per submission of every process
(the figure that moves least with other load on the machine); then one JSON line with
every figure. Everything started is stopped and removed, also on Ctrl-C or SIGTERM
(``--keep`` keeps the directory with every process's log). ``BENCH_<SERVICE>`` replaces
a service's command line after the interpreter (e.g. with a profiling wrapper).

Goal (issue 12): 300 submissions/s sustained for 60 s with p99 under 1 s from 201 to
``CaseAssigned`` (aim: 1,000/s with p99 under 250 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

# bench/harness.py and bench/routing.py: what the benchmarks share (this script's folder
# is on sys.path)
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
from routing import DETAILS, MATTERS, SUBJECTS, Places

from eventkit.local import free_port
from minqing.system import DEMO_DISTRICT_FILE
from services.routing.ids import case_id_for

GOAL_RATE = 300.0
GOAL_P99_MS = 1000.0
POLL_S = 0.010
"""How often the store is asked which awaited cases are assigned."""


@dataclass
class Submission:
    """One opinion sent: when it was due, when its 201 came, when its case was assigned."""

    due: float
    answered: float | None = None
    status: int | None = None
    stream: str | None = None
    assigned: float | None = None


@dataclass
class Tally:
    """Everything the clients and the store reader saw."""

    submissions: list[Submission] = field(default_factory=list)
    awaited: dict[str, Submission] = field(default_factory=dict)
    """Case streams answered with a 201 and not yet seen assigned."""
    early: dict[str, float] = field(default_factory=dict)
    """Case streams seen assigned while not awaited (before their 201 was read, or read
    again by a later look), with when."""
    connection_errors: int = 0
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the store reader when no case is awaited any more."""


def body(rng: random.Random, places: Places, n: int) -> bytes:
    """A QR submission of the demo district, as varied as the routing benchmark's."""
    location = places.location(rng).model_dump(exclude_none=True)
    station = location.pop("station_code", None)
    payload: dict[str, Any] = {
        "channel": "qr",
        "district": "demo",
        "text": f"{rng.choice(SUBJECTS)}{rng.choice(MATTERS)}，{rng.choice(DETAILS)}（{n}）",
        "location": location,
    }
    if station is not None:
        payload["station_code"] = station
    if rng.random() < 0.5:
        payload["contact"] = {"name": "王女士", "phone": f"139{rng.randrange(10**8):08d}"}
        payload["consent"] = True
    return json.dumps(payload, ensure_ascii=False).encode()


def request(port: int, payload: bytes) -> bytes:
    head = (
        "POST /api/v1/opinions HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, (await reader.readexactly(length)) if length else b""


async def submit_all(
    port: int, jobs: asyncio.Queue[tuple[Submission, bytes] | None], tally: Tally
) -> None:
    """One keep-alive connection sending the jobs it takes, one at a time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (job := await jobs.get()) is not None:
            submission, payload = job
            writer.write(request(port, payload))
            await writer.drain()
            try:
                status, answer = await response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                tally.connection_errors += 1
                return
            submission.answered = time.monotonic()
            submission.status = status
            if status == 201:
                opinion_id = json.loads(answer)["opinion_id"]
                submission.stream = f"case-{case_id_for('demo', opinion_id)}"
                if tally.early.pop(submission.stream, None) is None:
                    tally.awaited[submission.stream] = submission
                else:
                    # Its case was committed before the 201 was read: no wait at all.
                    submission.assigned = submission.answered
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


WATCH = (
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon, "
    "coalesce((SELECT array_agg(e.stream_id) FROM eventstore.events e "
    "WHERE e.transaction_id >= $1::text::xid8 AND e.event_type = 'CaseAssigned'), "
    "'{}') AS streams"
)
"""The ``CaseAssigned`` events of the transactions from a horizon on, and the horizon for
the next look: the oldest transaction still running in this statement's snapshot. Whatever
commits after this look was running then or starts later, so its id is at least that."""


async def watch_store(pool: asyncpg.Pool, tally: Tally, stop: asyncio.Event) -> None:
    """Every 10 ms: the cases assigned since the last look.

    Each look reads the events appended since the previous one (from its horizon on, by the
    store's ``(transaction_id, global_position)`` index), so it costs what the pipeline
    appended, not the number of cases awaited: asking for every awaited case at every look
    made the reader's own load grow with the backlog it measures."""
    horizon = await pool.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
    while not stop.is_set():
        row = await pool.fetchrow(WATCH, horizon)
        seen = time.monotonic()
        assert row is not None  # one row, always
        horizon = row["horizon"]
        for stream in row["streams"]:
            submission = tally.awaited.pop(stream, None)
            if submission is not None:
                submission.assigned = seen
            else:
                # Assigned before its 201 was read (or read again): kept for the 201.
                tally.early.setdefault(stream, seen)
        if not tally.awaited:
            tally.drained.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_S)


async def load(
    port: int,
    pool: asyncpg.Pool,
    *,
    rate: float,
    duration: float,
    connections: int,
    seed: int,
    places: Places,
) -> tuple[Tally, float]:
    """Submissions due at ``rate`` per second for ``duration`` seconds; wait for their
    cases (at most 60 s after the last). The tally, and the seconds the load lasted."""
    rng = random.Random(seed)
    tally = Tally()
    jobs: asyncio.Queue[tuple[Submission, bytes] | None] = asyncio.Queue()
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_store(pool, tally, stop))
    clients = [asyncio.create_task(submit_all(port, jobs, tally)) for _ in range(connections)]
    count = int(rate * duration)
    start = time.monotonic() + 0.05
    for n in range(count):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        submission = Submission(due=due)
        tally.submissions.append(submission)
        jobs.put_nowait((submission, body(rng, places, seed * 10_000_000 + n)))
    for _ in clients:
        jobs.put_nowait(None)
    await asyncio.gather(*clients)
    lasted = time.monotonic() - start
    tally.drained.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.drained.wait(), 60)
    stop.set()
    await watcher
    return tally, lasted


async def warm_up(port: int, pool: asyncpg.Pool, places: Places) -> None:
    """Until intake knows the demo district's stations (from the directory topic) and
    routing has assigned a few cases: the first requests may be refused."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tally, _ = await load(port, pool, rate=20, duration=1, connections=4, seed=1, places=places)
        answered = [s for s in tally.submissions if s.status == 201]
        if answered and all(s.assigned is not None for s in answered):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("intake or routing did not become ready for the demo district")


async def measure(stack: LocalStack, args: argparse.Namespace) -> Results:
    """Start every process as ``minqing up`` does; load intake; read the store."""
    if args.statements:
        await stack.record_statements()
    url = await stack.create_database("bench_pipeline", fast_autovacuum=True)
    ports = {name: free_port() for name in ("intake", "routing", "notification", "reporting")}
    smtp, http = free_port(), free_port()
    env = stack.environment(
        url,
        {
            # Everything ``minqing up`` gives its processes, on this run's ports.
            "MINQING_ROUTING_DISTRICT_FILES": json.dumps([str(DEMO_DISTRICT_FILE)]),
            "MINQING_ROUTING_TRAIN_DISTRICTS": json.dumps(["demo"]),
            "MINQING_SINK_SMTP_PORT": str(smtp),
            "MINQING_SINK_HTTP_PORT": str(http),
            "MINQING_SMTP_HOST": "127.0.0.1",
            "MINQING_SMTP_PORT": str(smtp),
            "MINQING_SMS_GATEWAY_URL": f"http://127.0.0.1:{http}/sms",
            # The load comes from one address: lift intake's per-address limits.
            "MINQING_RATE_SUBMIT_PER_MINUTE": "1e9",
            "MINQING_RATE_SUBMIT_BURST": "1000000000",
            # ...and the station's: every submission goes through one QR code.
            "MINQING_RATE_STATION_PER_MINUTE": "1e9",
            "MINQING_RATE_STATION_BURST": "1000000000",
            **{f"MINQING_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        },
    )
    step("starting the relay, the outbox and the four services")
    relay = stack.start_relay(env)
    sink = stack.start("sink", [sys.executable, "-m", "minqing.cli", "sink"], env)
    services = {
        name: stack.start_service(
            name, f"services.{name}", env, argv=_wrapper(name, f"services.{name}")
        )
        for name in ports
        if name in args.services
    }
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        for name, child in services.items():
            await child.ready(ports[name])
        places = Places.of_demo()
        step("warming up (intake learns the demo district's stations)")
        await warm_up(ports["intake"], pool, places)
        meter = CpuMeter(
            {
                **{name: [process_cpu(child.pid)] for name, child in services.items()},
                "relay": [process_cpu(relay.pid)],
                "outbox": [process_cpu(sink.pid)],
                "postgresql": [tree_cpu(stack.postmaster_pid)],
                "tansu": [process_cpu(stack.broker_pid)],
                "bench": [own_cpu],
            }
        )
        step(f"{args.rate:g} submissions/s for {args.duration:g} s")
        if args.statements:
            await stack.reset_statements(url)
        before = meter.snapshot()
        busy_before = time.monotonic()
        tally, lasted = await load(
            ports["intake"],
            pool,
            rate=args.rate,
            duration=args.duration,
            connections=args.connections,
            seed=7,
            places=places,
        )
        cpu = meter.spent(before)
        elapsed = time.monotonic() - busy_before
        statements = await stack.statements(url, 25) if args.statements else []
    finally:
        await pool.close()
        stack.stop_children()
    accepted = [s for s in tally.submissions if s.status == 201]
    assigned = [s for s in accepted if s.assigned is not None and s.answered is not None]
    to_assigned = [s.assigned - s.answered for s in assigned]  # type: ignore[operator]
    to_201 = [s.answered - s.due for s in accepted if s.answered is not None]
    statuses: dict[str, int] = {}
    for s in tally.submissions:
        key = str(s.status) if s.status is not None else "none"
        statuses[key] = statuses.get(key, 0) + 1
    latency = summary_ms(to_assigned, (50, 95, 99))
    per = ms_per(cpu, len(accepted))
    per["total"] = round(sum(per.values()), 2)
    achieved = len(accepted) / lasted if lasted > 0 else 0.0
    return {
        "benchmark": "minqing-pipeline",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "processes": ["relay", "outbox", *services],
        "offered_per_s": args.rate,
        "duration_s": args.duration,
        "submissions": len(tally.submissions),
        "statuses": statuses,
        "connection_errors": tally.connection_errors,
        "accepted_per_s": round(achieved, 1),
        "assigned": len(assigned),
        "never_assigned": len(accepted) - len(assigned),
        "latency_201_to_assigned_ms": latency,
        "latency_due_to_201_ms": summary_ms(to_201, (50, 95, 99)),
        "cpu_ms_per_submission": per,
        "cpu_cores_busy": round(sum(cpu.values()) / elapsed, 2),
        "statements": [
            {**{k: (float(v) if k.endswith("_ms") else v) for k, v in row.items()}}
            for row in statements
        ],
        "goal": {
            "rate": GOAL_RATE,
            "p99_ms": GOAL_P99_MS,
            "met": achieved >= GOAL_RATE * 0.99
            and len(assigned) == len(accepted)
            and latency["p99"] < GOAL_P99_MS,
        },
    }


def report(results: Results) -> str:
    """The figures, readable."""
    to_case = results["latency_201_to_assigned_ms"]
    to_201 = results["latency_due_to_201_ms"]
    parts = ", ".join(f"{k} {v:.2f}" for k, v in results["cpu_ms_per_submission"].items())
    return "\n".join(
        [
            f"Minqing pipeline benchmark, {results['when']}",
            machine_line(results["machine"]),
            f"processes: {', '.join(results['processes'])}, PostgreSQL, Tansu",
            "",
            f"offered {results['offered_per_s']:g}/s for {results['duration_s']:g} s: "
            f"{results['submissions']} submissions, statuses {results['statuses']}, "
            f"accepted {results['accepted_per_s']:.1f}/s",
            f"201 → CaseAssigned committed: p50 {to_case['p50']} ms, p95 {to_case['p95']} ms, "
            f"p99 {to_case['p99']} ms, max {to_case['max']} ms "
            f"({results['assigned']} assigned, {results['never_assigned']} never)",
            f"due → 201: p50 {to_201['p50']} ms, p95 {to_201['p95']} ms, p99 {to_201['p99']} ms",
            f"CPU ms per submission: {parts}; {results['cpu_cores_busy']} cores busy",
            *(
                [
                    "",
                    "statements by time in PostgreSQL (calls, total ms, mean ms, query):",
                    *(
                        f"  {r['calls']:>7} {r['total_ms']:>9.1f} {r['mean_ms']:>7.3f}  "
                        f"{r['query']}"
                        for r in results["statements"]
                    ),
                ]
                if results["statements"]
                else []
            ),
            "",
            f"goal >= {GOAL_RATE:g}/s with p99 < {GOAL_P99_MS:g} ms: "
            f"{verdict(results['goal']['met'])}",
        ]
    )


def _wrapper(name: str, module: str) -> list[str] | None:
    """``BENCH_<NAME>`` (e.g. ``BENCH_NOTIFICATION``) replaces what follows the interpreter
    on the service's command line, e.g. with a profiling wrapper; ``{module}`` in it is the
    service's module."""
    wrapper = os.environ.get(f"BENCH_{name.upper()}")
    return wrapper.replace("{module}", module).split() if wrapper else None


def main(argv: list[str] | None = None) -> int:
    """Start the stack, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0, help="submissions per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument(
        "--services",
        nargs="+",
        default=["intake", "routing", "notification", "reporting"],
        choices=["intake", "routing", "notification", "reporting"],
        help="the services to run (intake and routing are needed; default: all, as make up)",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="load pg_stat_statements and print where PostgreSQL spent its time",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    if not {"intake", "routing"} <= set(args.services):
        parser.error("intake and routing are needed")
    return run("pipeline", lambda stack: measure(stack, args), report, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
