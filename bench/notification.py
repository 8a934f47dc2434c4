"""Notification benchmark: case events on Kafka → messages delivered.

Run with ``.venv/bin/python bench/notification.py``. It starts its own embedded
PostgreSQL and Tansu broker (``harness.LocalStack``), migrates, sets the demo district,
its contact book and one outside subscription up through the service's composition root,
and runs as child processes, as ``minqing up`` does: the relay, the notification service
and the local outbox (``minqing sink``: SMTP and HTTP on free ports). This process plays
routing: it appends ``CaseOpened`` + ``CaseAssigned`` for each case. Each case makes three
deliveries: a mail to its representative, and a signed CloudEvent per event to the
subscriber's webhook.

1. **burst**: N cases appended as fast as 8 writers can; throughput is the deliveries
   finished per second, from the first event's commit to the last delivery's acceptance;
2. **paced**: cases at a steady rate (by default half the burst's) for some seconds; for
   each delivery the time from the commit of its source event (``recorded_at``) to the
   moment the receiver accepted it (p50, p99, max).

It also reports the CPU per delivery of every part, prints a table and, as its last line,
one JSON object, and removes everything it started. ``BENCH_NOTIFICATION`` replaces the
service's command line (default ``-m services.notification``), e.g. with a profiler.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from harness import (
    Column,
    CpuMeter,
    LocalStack,
    Table,
    fetch_every_district,
    fetchval_every_district,
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

from contracts.base import Actor, ActorRole
from contracts.cases import CaseAssigned, CaseOpened, Priority
from contracts.envelope import Envelope
from eventkit.db import create_pool, district_transaction
from eventkit.local import free_port
from eventkit.store import EventStore
from minqing.system import DEMO_CONTACTS_FILE, DEMO_DISTRICT_FILE
from services.notification import contacts, subscriptions
from services.notification.bootstrap import bootstrap
from services.notification.contact_book import parse_contact_file
from services.notification.settings import NotificationSettings
from services.routing.directory_plan import plan_changes
from services.routing.district_file import load_district_file

Results = dict[str, Any]

PREFIX = "bench."
RUNTIME_ROLE = "minqing_runtime"
WRITERS = 8
PER_CASE = 3
"""Deliveries per case: a mail to the representative, two CloudEvents to the subscriber."""
GOAL_PER_S = 1000.0
GOAL_P99_MS = 1000.0
ROUTING = Actor(id="routing", role=ActorRole.SYSTEM)
REPRESENTATIVES = [f"r{n:03d}" for n in range(1, 61)]


@dataclass
class Phase:
    name: str
    cases: int
    deliveries: int
    seconds: float
    per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_ms_per_delivery: dict[str, float]


def case_events(n: int, when: datetime) -> list[CaseOpened | CaseAssigned]:
    case_id = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-case-{n}").hex[:20]
    rep = REPRESENTATIVES[n % len(REPRESENTATIVES)]
    opened = CaseOpened(
        district_id="demo",
        occurred_at=when,
        actor=ROUTING,
        case_id=case_id,
        opinion_id=f"op_bench_{n}",
        category_code="municipal",
        priority=Priority.NORMAL,
        response_due=when + timedelta(days=1),
        resolution_due=when + timedelta(days=14),
        channel="qr",
        community="东湖社区",
        street_code="dh",
    )
    assigned = CaseAssigned(
        district_id="demo",
        occurred_at=when,
        actor=ROUTING,
        case_id=case_id,
        station_code="dh_home",
        representative_id=rep,
        queue="representative",
        reason="bench",
    )
    return [opened, assigned]


async def append_case(store: EventStore, n: int) -> None:
    events = case_events(n, datetime.now(UTC))
    await store.append(events[0].stream_id, [Envelope.wrap(e) for e in events])


async def set_up(url: str, settings: NotificationSettings, sink_http: int) -> str:
    """The demo district, its contact book and a subscription, through the composition
    root; returns the subscription's id."""
    pool = await create_pool(url, role=RUNTIME_ROLE, max_size=4)
    try:
        async with bootstrap(settings, pool=pool, background=False) as service:
            now = datetime.now(UTC)
            district = load_district_file(DEMO_DISTRICT_FILE)
            plan = plan_changes(
                None, district, district_id="demo", actor=ROUTING, now=now, today=now.date()
            )
            for event in plan.events:
                await service.store.append(event.stream_id, [Envelope.wrap(event)])
            text = DEMO_CONTACTS_FILE.read_text(encoding="utf-8").replace(
                "http://127.0.0.1:8025", f"http://127.0.0.1:{sink_http}"
            )
            await contacts.import_book(pool, parse_contact_file(text), "bench", now)
            async with district_transaction(pool, "demo") as conn:
                sub = await subscriptions.create(
                    conn,
                    "demo",
                    "bench",
                    f"http://127.0.0.1:{sink_http}/webhook/bench",
                    [],
                    "bench",
                    now,
                    keys=settings.privacy_keys(),
                )
            return sub.subscription_id
    finally:
        await pool.close()


async def finished(pool: asyncpg.Pool, cases: set[str]) -> list[tuple[float, float]]:
    """(seconds from the source's commit to the delivery, finish time) of the deliveries
    of ``cases`` that were sent."""
    rows = await fetch_every_district(
        pool,
        "SELECT extract(epoch FROM finished_at - source_committed) AS lag, "
        "extract(epoch FROM finished_at) AS at FROM notification.deliveries "
        "WHERE status = 'sent' AND case_id = ANY($1::text[])",
        sorted(cases),
    )
    return [(float(r["lag"]), float(r["at"])) for r in rows]


async def wait_delivered(pool: asyncpg.Pool, cases: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    want = PER_CASE * len(cases)
    while time.monotonic() < deadline:
        done = await fetchval_every_district(
            pool,
            "SELECT count(*) FROM notification.deliveries "
            "WHERE status IN ('sent', 'failed') AND case_id = ANY($1::text[])",
            sorted(cases),
        )
        if done >= want:
            return
        # Each look counts the phase's deliveries (a scan of the outbox): looked at twice
        # a second, so that the bench's own queries weigh little in PostgreSQL's share.
        # The phase's end is read from the deliveries' times, not from this loop.
        await asyncio.sleep(0.5)
    raise TimeoutError(f"only part of {want} deliveries ended in {timeout:g} s")


def case_id(n: int) -> str:
    return case_events(n, datetime.now(UTC))[0].case_id


async def burst(store: EventStore, pool: asyncpg.Pool, numbers: range, meter: CpuMeter) -> Phase:
    cases = {case_id(n) for n in numbers}
    queue = iter(numbers)
    with meter.measuring() as usage:

        async def writer() -> None:
            for n in queue:
                await append_case(store, n)

        await asyncio.gather(*(writer() for _ in range(WRITERS)))
        await wait_delivered(pool, cases, 600)
    return phase("burst", cases, await finished(pool, cases), usage.cpu_s)


async def paced(
    store: EventStore,
    pool: asyncpg.Pool,
    numbers: range,
    rate: float,
    meter: CpuMeter,
) -> Phase:
    cases = {case_id(n) for n in numbers}
    with meter.measuring() as usage:
        start = time.monotonic()
        pending = []
        for i, n in enumerate(numbers):
            due = start + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            pending.append(asyncio.create_task(append_case(store, n)))
        await asyncio.gather(*pending)
        await wait_delivered(pool, cases, 600)
    return phase("paced", cases, await finished(pool, cases), usage.cpu_s)


def phase(
    name: str, cases: set[str], done: list[tuple[float, float]], cpu_s: dict[str, float]
) -> Phase:
    lags = [lag for lag, _ in done]
    ends = [at for _, at in done]
    starts = [at - lag for lag, at in done]
    seconds = max(ends) - min(starts) if done else 0.0
    latency = summary_ms(lags, quantiles=(50, 99))
    return Phase(
        name=name,
        cases=len(cases),
        deliveries=len(done),
        seconds=round(seconds, 2),
        per_s=round(len(done) / seconds, 1) if seconds else 0.0,
        p50_ms=latency["p50"],
        p99_ms=latency["p99"],
        max_ms=latency["max"],
        cpu_ms_per_delivery=ms_per(cpu_s, len(done)),
    )


async def measure(stack: LocalStack, args: argparse.Namespace) -> Results:
    url = await stack.create_database("bench_notification")
    if args.statements:
        await stack.record_statements()
    smtp, http, port = free_port(), free_port(), free_port()
    env = stack.environment(
        url,
        {
            "MINQING_TOPIC_PREFIX": PREFIX,
            "MINQING_KAFKA_PARTITIONS": str(args.partitions),
            "MINQING_RELAY_POLL_INTERVAL": "0.05",
            "MINQING_SINK_SMTP_PORT": str(smtp),
            "MINQING_SINK_HTTP_PORT": str(http),
            "MINQING_SMTP_PORT": str(smtp),
            "MINQING_SMS_GATEWAY_URL": f"http://127.0.0.1:{http}/sms",
            "MINQING_NOTIFICATION_PORT": str(port),
            "MINQING_NOTIFICATION_CONTACT_FILES": "[]",
            "MINQING_CONSUMER_BATCH_SIZE": str(args.batch),
            "MINQING_SENDER_CONCURRENCY": str(args.concurrency),
            "MINQING_SENDER_PER_RECIPIENT": str(args.per_recipient),
            "MINQING_SMTP_CONNECTIONS": str(args.smtp_connections),
            "MINQING_DATABASE_POOL_MAX": "12",
        },
    )
    settings = NotificationSettings(database_url=url, kafka_bootstrap=stack.bootstrap)
    step("setting the demo district, its contacts and a subscription up")
    await set_up(url, settings, http)
    step("starting the relay, the local outbox and notification")
    relay = stack.start_relay(env)
    sink = stack.start("sink", [sys.executable, "-m", "minqing.cli", "sink"], env)
    wrapper = os.environ.get("BENCH_NOTIFICATION")
    notification = stack.start_service(
        "notification",
        "services.notification",
        env,
        argv=wrapper.split() if wrapper else None,
    )
    await notification.ready(port)
    pool = await create_pool(url, role=RUNTIME_ROLE, min_size=WRITERS, max_size=WRITERS + 2)
    store = EventStore(pool)
    try:
        meter = CpuMeter(
            {
                "notification": [process_cpu(notification.pid)],
                "relay": [process_cpu(relay.pid)],
                "sink": [process_cpu(sink.pid)],
                "tansu": [process_cpu(stack.broker_pid)],
                "postgresql": [tree_cpu(stack.postmaster_pid)],
                "bench": [own_cpu],
            }
        )
        step("warming up")
        await burst(store, pool, range(50), meter)
        step(f"a burst of {args.burst} cases")
        if args.statements:
            await stack.reset_statements(url)
        phases = {"burst": await burst(store, pool, range(10**6, 10**6 + args.burst), meter)}
        statements = await stack.statements(url, 25) if args.statements else []
        rate = args.rate or max(10.0, round(phases["burst"].per_s / PER_CASE / 2, -1))
        count = int(rate * args.duration)
        step(f"paced at {rate:g} cases/s for {args.duration:g} s")
        phases["paced"] = await paced(store, pool, range(2 * 10**6, 2 * 10**6 + count), rate, meter)
        failed = await fetchval_every_district(
            pool, "SELECT count(*) FROM notification.deliveries WHERE status = 'failed'"
        )
    finally:
        await pool.close()
        stack.stop_children()
    return {
        "benchmark": "minqing-notification",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "consumer_batch": args.batch,
        "sender_concurrency": args.concurrency,
        "per_recipient": args.per_recipient,
        "smtp_connections": args.smtp_connections,
        "partitions": args.partitions,
        "phases": {k: asdict(v) for k, v in phases.items()},
        "burst_statements": [
            {k: (float(v) if k.endswith("_ms") else v) for k, v in row.items()}
            for row in statements
        ],
        "failed_deliveries": failed,
        "goals": {
            "at_least_1000_per_s": phases["burst"].per_s >= GOAL_PER_S,
            "p99_under_1_s": phases["paced"].p99_ms < GOAL_P99_MS,
        },
    }


TABLE = Table(
    Column("run", 8),
    Column("cases", 7),
    Column("deliveries", 11),
    Column("seconds", 8, ".1f"),
    Column("delivered/s", 12, ".0f"),
    Column("p50 ms", 8, ".1f"),
    Column("p99 ms", 8, ".1f"),
    Column("max ms", 8, ".1f"),
)


def report(results: Results) -> str:
    lines = [
        f"Minqing notification benchmark, {results['when']}",
        machine_line(results["machine"]),
        f"consumer batch {results['consumer_batch']}, sender concurrency "
        f"{results['sender_concurrency']} ({results['per_recipient']} per recipient), "
        f"{results['smtp_connections']} SMTP connections, "
        f"{results['partitions']} partitions; {PER_CASE} deliveries per case "
        "(mail + 2 CloudEvents)",
        "",
        TABLE.header(),
    ]
    for p in results["phases"].values():
        lines.append(
            TABLE.row(
                p["name"],
                p["cases"],
                p["deliveries"],
                p["seconds"],
                p["per_s"],
                p["p50_ms"],
                p["p99_ms"],
                p["max_ms"],
            )
        )
    lines += ["", "CPU ms per delivery (every part of the system on this machine):"]
    for p in results["phases"].values():
        parts = ", ".join(f"{k} {v:.2f}" for k, v in p["cpu_ms_per_delivery"].items())
        lines.append(f"  {p['name']:<6} {parts}")
    if results["burst_statements"]:
        lines += ["", "burst: statements by time in PostgreSQL (calls, total ms, mean ms, query):"]
        lines += [
            f"  {r['calls']:>7} {r['total_ms']:>9.1f} {r['mean_ms']:>7.3f}  {r['query']}"
            for r in results["burst_statements"]
        ]
    g = results["goals"]
    lines += [
        "",
        f"failed deliveries: {results['failed_deliveries']}",
        f"goal >= 1,000 deliveries/s (burst): {verdict(g['at_least_1000_per_s'])}",
        f"goal p99 < 1 s from commit to delivery (paced): {verdict(g['p99_under_1_s'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--burst", type=int, default=2000, help="cases in the burst")
    parser.add_argument(
        "--rate", type=float, default=None, help="cases/s when paced (default: half the burst's)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds paced")
    parser.add_argument("--batch", type=int, default=100, help="consumer batch size")
    fields = NotificationSettings.model_fields
    parser.add_argument(
        "--concurrency",
        type=int,
        default=fields["sender_concurrency"].default,
        help="sends in flight (default: the service's)",
    )
    parser.add_argument(
        "--per-recipient",
        type=int,
        default=fields["sender_per_recipient"].default,
        help="sends in flight to one recipient (default: the service's)",
    )
    parser.add_argument(
        "--smtp-connections",
        type=int,
        default=fields["smtp_connections"].default,
        help="connections to the mail server (default: the service's)",
    )
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--statements",
        action="store_true",
        help="load pg_stat_statements and print where PostgreSQL spent its time in the burst",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    return run("notification", lambda stack: measure(stack, args), report, keep=args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
