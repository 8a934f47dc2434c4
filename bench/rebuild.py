"""Rebuild benchmark: a year of a large district, rebuilt from the event store.

Run with ``.venv/bin/python bench/rebuild.py`` (``--events 200000`` for a quick look).
It starts its own embedded PostgreSQL (and, unused, a Tansu broker) through
``bench/harness.py``, migrates, and appends a year of a large district to the store as
routing and intake would (``EventStore.append_batch``): 17 streets, 116 stations (17
representatives' homes, 89 community stations, 10 industry stations), 366
representatives, 18 categories, and about 125,000 cases for a million events, with the
mix of a real year: most resolved and closed, some late, transferred (within the
district and to a neighbouring one), escalated, reopened, merged, withdrawn, turned into
suggestions, most rated. Every event is recorded now (``recorded_at`` is the store's
clock); ``occurred_at`` spans the year; the staff's texts (replies, results, notes,
reasons, matched words) are sealed with each case's key as routing seals them, so the
rebuild opens them as it must for a real district's history. Before each rebuild the
server is settled as an operator's rebuild finds it (:func:`settle`: vacuumed,
checkpointed; the time it takes is printed apart and not counted).

Then it runs ``minqing reporting rebuild`` as the operator would, as a child process:

1. ``--at <now>``: the projections as they stand, into ``reporting_asof`` (no gate, no
   comparison): the pure rebuild;
2. live, with the reporting consumer's version gate set to every stream's head (a
   consumer that has applied everything; the live slots are empty, so every row is a
   difference): read, fold, copy, catch up, compare, swap;
3. live again: the live projections now hold the same rows, so the comparison is equal.

``--workers 1,2`` runs the first and the last with each number of fold processes, back to
back on the same store (default: 2, the setting's default). For each it prints the
events folded per second, the total time, the peak memory (VmHWM of the rebuild process
and its fold workers, added up) and the CPU time of the rebuild (with its workers) and of
PostgreSQL. The goal is at
least 50,000 events/s (a year of a large district in under a minute); the aim 200,000.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg

# bench/harness.py: what the benchmarks share (this script's folder is on sys.path)
from harness import (
    ROOT,
    Column,
    LocalStack,
    Results,
    Table,
    machine,
    machine_line,
    reaped_children_cpu,
    run,
    step,
    tree_cpu,
    verdict,
)

from contracts import (
    Actor,
    ActorRole,
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseLinked,
    CaseMerged,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    CommunityRegistered,
    DistrictRegistered,
    FeedbackSubmitted,
    Location,
    OpinionSubmitted,
    OpinionWithdrawn,
    Priority,
    RepresentativeJoinedStation,
    RepresentativeRegistered,
    StationRegistered,
    StreetRegistered,
    TaxonomyCategory,
    TaxonomyPublished,
)
from contracts.base import Event
from contracts.cases import CaseEvent
from contracts.directory import DeadlinePair, PriorityDeadlines
from contracts.envelope import Envelope
from eventkit.db import ALL_DISTRICTS, create_pool, district_transaction
from eventkit.sealed_texts import TextKeys, seal_case_events
from eventkit.store import EventStore
from services.reporting.folding import HANDLED_TYPES

DISTRICT = "bigd"
NEIGHBOUR = "nbd"
YEAR = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # 1 January, Shanghai
ROUTING = Actor(id="routing", role=ActorRole.SYSTEM)
ADMIN = Actor(id="admin_bigd", role=ActorRole.DISTRICT_ADMIN)
STAFF = Actor(id="lo_bigd", role=ActorRole.LIAISON)
CATEGORIES = [
    ("road", "道路交通"),
    ("property", "物业管理"),
    ("env", "环境卫生"),
    ("water", "供水排水"),
    ("heating", "供暖供气"),
    ("noise", "噪音扰民"),
    ("parking", "停车管理"),
    ("greening", "园林绿化"),
    ("elder", "养老服务"),
    ("school", "教育入学"),
    ("health", "医疗卫生"),
    ("market", "市场监管"),
    ("safety", "安全隐患"),
    ("housing", "住房保障"),
    ("social", "社会保障"),
    ("culture", "文体设施"),
    ("lighting", "路灯照明"),
    ("other", "其他事项"),
]
EVENTS_PER_CASE = 7.7
"""About how many events a case brings (its own, its opinion's and its rating)."""


@dataclass(frozen=True)
class Place:
    station: str
    street: str
    community: str
    representatives: tuple[str, ...]


def directory() -> tuple[list[Event], list[Place]]:
    """The large district's directory events, and the places cases come from."""
    at = YEAR - timedelta(days=30)
    events: list[Event] = [
        DistrictRegistered(
            district_id=DISTRICT,
            occurred_at=at,
            actor=ADMIN,
            name_zh="大区",
            name_en="Big District",
            timezone="Asia/Shanghai",
        ),
        DistrictRegistered(district_id=NEIGHBOUR, occurred_at=at, actor=ADMIN, name_zh="邻区"),
    ]
    pair = DeadlinePair(response="2wd", resolution="15wd")
    for district in (DISTRICT, NEIGHBOUR):
        events.append(
            TaxonomyPublished(
                district_id=district,
                occurred_at=at,
                actor=ADMIN,
                version=1,
                categories=[
                    TaxonomyCategory(code=c, name_zh=n, keywords=[n]) for c, n in CATEGORIES
                ],
                default_deadlines=PriorityDeadlines(normal=pair),
            )
        )
    places: list[Place] = []
    community_station = 0
    all_stations: list[tuple[str, str, str, str, list[str]]] = []
    for s in range(1, 18):
        street = f"s{s:02d}"
        communities = [f"第{s}街道第{c}社区" for c in range(1, 17)]
        events.append(
            StreetRegistered(
                district_id=DISTRICT,
                occurred_at=at,
                actor=ADMIN,
                street_code=street,
                name_zh=f"第{s}街道",
                supervisors=[f"ss_{street}"],
            )
        )
        events += [
            CommunityRegistered(
                district_id=DISTRICT, occurred_at=at, actor=ADMIN, community=c, street_code=street
            )
            for c in communities
        ]
        stations = [(f"{street}_home", "home", f"第{s}街道人大代表之家")]
        for _ in range(6 if s <= 4 else 5):  # 89 community stations in all
            community_station += 1
            code = f"{street}_c{community_station:02d}"
            stations.append((code, "community", f"第{community_station}社区联络站"))
        if s <= 10:
            stations.append((f"{street}_ind", "industry", f"第{s}街道园区联络站"))
        for k, (code, kind, name) in enumerate(stations):
            served = communities[(k % 4) * 4 : (k % 4) * 4 + 4]
            all_stations.append((code, kind, name, street, served))
    members: dict[str, list[str]] = {code: [] for code, *_ in all_stations}
    for n in range(366):  # three or four representatives per station
        members[all_stations[n % len(all_stations)][0]].append(f"r{n + 1:03d}")
    for code, kind, name, street, served in all_stations:
        events.append(
            StationRegistered(
                district_id=DISTRICT,
                occurred_at=at,
                actor=ADMIN,
                station_code=code,
                name_zh=name,
                kind=kind,
                street_code=street,
                star_rating=3,
                liaison_officers=[f"lo_{code}"],
            )
        )
        for r in members[code]:
            events.append(
                RepresentativeRegistered(
                    district_id=DISTRICT,
                    occurred_at=at,
                    actor=ADMIN,
                    representative_id=r,
                    name_zh=f"代表{r}",
                    level="district",
                )
            )
            events.append(
                RepresentativeJoinedStation(
                    district_id=DISTRICT,
                    occurred_at=at,
                    actor=ADMIN,
                    representative_id=r,
                    station_code=code,
                )
            )
        places += [Place(code, street, c, tuple(members[code])) for c in served]
    return events, places


def case_events(rng: random.Random, n: int, place: Place, at: datetime) -> list[list[Event]]:
    """The streams of one case: its opinion's, its own, and (rarely) the neighbour's."""
    case_id, opinion_id = f"c{n:07d}", f"op{n:07d}"
    d, rep = DISTRICT, rng.choice(place.representatives)
    category = rng.choice(CATEGORIES)[0]
    opinion: list[Event] = [
        OpinionSubmitted(
            district_id=d,
            occurred_at=at,
            actor=Actor(id=f"subj{n}", role=ActorRole.RESIDENT),
            opinion_id=opinion_id,
            channel=rng.choice(["qr", "qr", "walk_in", "hotline_12345", "online"]),
            text="小区路灯不亮，晚上出行不便，请尽快修理。",
            location=Location(community=place.community, station_code=place.station),
        )
    ]
    t = at + timedelta(seconds=1)

    def ev(kind: type[Event], **data: Any) -> Event:
        actor = data.pop("actor", STAFF)
        return kind(district_id=d, occurred_at=t, actor=actor, case_id=case_id, **data)

    case: list[Event] = [
        ev(
            CaseOpened,
            actor=ROUTING,
            opinion_id=opinion_id,
            category_code=category,
            priority=Priority.NORMAL,
            response_due=at + timedelta(days=2),
            resolution_due=at + timedelta(days=15),
            channel="qr",
            community=place.community,
            street_code=place.street,
        ),
        ev(
            CaseAssigned,
            actor=ROUTING,
            station_code=place.station,
            representative_id=rep,
            queue="representative",
            reason="按社区分派",
        ),
    ]
    others: list[list[Event]] = []
    if rng.random() < 0.06:
        case.append(
            ev(
                CaseLinked,
                actor=ROUTING,
                related_case_id=f"c{max(0, n - 3):07d}",
                relation="related",
                reason="同社区同类",
            )
        )
    roll = rng.random()
    if roll < 0.03:
        case.append(ev(CaseMerged, into_case_id=f"c{max(0, n - 1):07d}", reason="重复"))
        return [opinion, case]
    if roll < 0.05:
        opinion.append(
            OpinionWithdrawn(
                district_id=d, occurred_at=t, actor=opinion[0].actor, opinion_id=opinion_id
            )
        )
        case.append(ev(CaseClosed, withdrawn=True))
        return [opinion, case]
    if roll < 0.055:
        moved = f"x{n:07d}"
        case.append(ev(CaseTransferred, to_district_id=NEIGHBOUR, to_case_id=moved, reason="外区"))
        others.append(
            [
                CaseOpened(
                    district_id=NEIGHBOUR,
                    occurred_at=t,
                    actor=ROUTING,
                    case_id=moved,
                    opinion_id=opinion_id,
                    category_code=category,
                    priority=Priority.NORMAL,
                    transferred_from_case_id=case_id,
                    transferred_from_district_id=d,
                )
            ]
        )
        return [opinion, case, *others]
    if rng.random() < 0.10:
        t = at + timedelta(days=2)
        case.append(
            ev(
                CaseOverdue,
                actor=ROUTING,
                deadline="response",
                due=t,
                escalation_level="station_head",
                escalated_to="站长",
            )
        )
    if rng.random() < 0.05:
        other = f"r{rng.randint(1, 366):03d}"
        case.append(
            ev(
                CaseTransferred,
                to_station_code=place.station,
                to_representative_id=other,
                reason="更合适的代表",
            )
        )
        rep = other
    t += timedelta(hours=rng.randint(1, 30))
    case.append(ev(CaseAccepted, actor=Actor(id=rep, role=ActorRole.REPRESENTATIVE)))
    if rng.random() < 0.6:
        case.append(ev(CaseReplied, message="已联系相关部门，正在处理"))
    if rng.random() < 0.08:
        case.append(ev(CaseEscalated, to_level="department", to_name="城管执法队", reason="需部门"))
    if rng.random() < 0.02:
        case.append(
            ev(
                CaseConvertedToSuggestion,
                representative_id=rep,
                title="关于改善设施的建议",
                reply_due=t + timedelta(days=90),
            )
        )
        t += timedelta(days=40)
        case += [ev(CaseReplied, message="已答复"), ev(CaseClosed, note="建议已办复")]
        return [opinion, case]
    days = rng.randint(1, 20)
    if days > 15:
        case.append(
            ev(
                CaseOverdue,
                actor=ROUTING,
                deadline="resolution",
                due=at + timedelta(days=15),
                escalation_level="street",
                escalated_to="街道",
            )
        )
    t = at + timedelta(days=days)
    case.append(ev(CaseResolved, resolution_seq=1, result="已处理完毕"))
    seq = 1
    if rng.random() < 0.7:
        satisfaction = rng.choices([1, 2, 3, 4, 5], [3, 5, 10, 30, 52])[0]
        t += timedelta(days=1)
        opinion.append(
            FeedbackSubmitted(
                district_id=d,
                occurred_at=t,
                actor=opinion[0].actor,
                opinion_id=opinion_id,
                case_id=case_id,
                resolution_seq=1,
                satisfaction=satisfaction,
                resolved=satisfaction > 2,
            )
        )
        if satisfaction <= 2:
            case.append(
                ev(
                    CaseReopened,
                    actor=ROUTING,
                    reason="居民不满意",
                    representative_id=rep,
                    resolution_due=t + timedelta(days=15),
                )
            )
            t += timedelta(days=5)
            seq = 2
            case.append(ev(CaseResolved, resolution_seq=2, result="再次处理"))
            if rng.random() < 0.5:
                opinion.append(
                    FeedbackSubmitted(
                        district_id=d,
                        occurred_at=t,
                        actor=opinion[0].actor,
                        opinion_id=opinion_id,
                        case_id=case_id,
                        resolution_seq=seq,
                        satisfaction=4,
                        resolved=True,
                    )
                )
    if rng.random() < 0.92:
        t += timedelta(days=1)
        case.append(ev(CaseClosed, note="核实完毕"))
    return [opinion, case]


def year(seed: int, cases: int, places: list[Place]) -> Iterator[list[list[Event]]]:
    """Every case's streams, in chunks of 500 cases, through the year."""
    rng = random.Random(seed)
    step_s = 365 * 86400 / cases
    chunk: list[list[Event]] = []
    for n in range(cases):
        at = YEAR + timedelta(seconds=n * step_s + rng.random() * step_s)
        chunk += case_events(rng, n, rng.choice(places), at)
        if (n + 1) % 500 == 0:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def generate(store: EventStore, pool: asyncpg.Pool, events: int, seed: int) -> dict[str, Any]:
    """Append the directory and a year of cases; how many of what."""
    dir_events, places = directory()
    streams: dict[str, list[Envelope]] = {}
    for event in dir_events:
        streams.setdefault(event.stream_id, []).append(Envelope.wrap(event))
    async with district_transaction(pool, ALL_DISTRICTS) as conn:
        await store.append_batch([(s, e, -1) for s, e in streams.items()], conn=conn)
    cases = int(events / EVENTS_PER_CASE)
    appended = len(dir_events)
    queue: asyncio.Queue[list[list[Event]] | None] = asyncio.Queue(maxsize=8)
    texts = TextKeys()

    async def writer() -> None:
        while (chunk := await queue.get()) is not None:
            async with district_transaction(pool, ALL_DISTRICTS) as conn:
                # As routing appends them: the staff's texts sealed with the case's key.
                events = cast(list[CaseEvent], [e for s in chunk for e in s])
                flat = await seal_case_events(conn, texts, events)  # others as they are
                batch: list[tuple[str, list[Envelope], int]] = []
                at = 0
                for stream in chunk:
                    sealed, at = flat[at : at + len(stream)], at + len(stream)
                    batch.append((stream[0].stream_id, [Envelope.wrap(e) for e in sealed], 0))
                await store.append_batch(batch, conn=conn)

    writers = [asyncio.create_task(writer()) for _ in range(3)]
    started = time.perf_counter()
    for chunk in year(seed, cases, places):
        appended += sum(len(s) for s in chunk)
        await queue.put(chunk)
        if appended % 100_000 < EVENTS_PER_CASE * 500:
            rate = appended / (time.perf_counter() - started)
            step(f"appended {appended:,} events ({rate:,.0f}/s)")
    for _ in writers:
        await queue.put(None)
    await asyncio.gather(*writers)
    return {
        "events": appended,
        "cases": cases,
        "stations": 116,
        "representatives": 366,
        "seconds": round(time.perf_counter() - started, 1),
    }


async def settle(superuser_url: str) -> float:
    """Bring the server to the state an operator's rebuild finds it in: every table
    vacuumed and the buffers checkpointed. Before the first rebuild: the freshly appended
    store as a year of history is (autovacuum has long since passed over every row of an
    append-only table: hint bits set, pages all-visible), or the first rebuild pays for
    the generation (setting the hint bits of a million new rows: with data checksums,
    each page's first change after a checkpoint is a full page in the WAL; measured once
    without it: the server's CPU in the first rebuild was 13 s instead of 10). Before each
    later rebuild: the slots the previous one loaded vacuumed, which autovacuum would
    otherwise do during the next run (run back to back, a run paid for its predecessor's
    upkeep: 2–4 s of the server's CPU, measured)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(superuser_url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return round(time.perf_counter() - started, 1)


async def settled_rebuild(url: str, postmaster: int, workers: int, *args: str) -> dict[str, Any]:
    """:func:`rebuild`, on a settled server (:func:`settle`), the settling timed apart."""
    settling = await settle(url)
    step(f"server settled (VACUUM, CHECKPOINT) in {settling} s")
    figures = await asyncio.to_thread(rebuild, url, postmaster, workers, *args)
    return {**figures, "settled_s": settling}


async def catch_up_gate(superuser_url: str) -> int:
    """Set the reporting consumer's gate as a consumer that has applied everything would
    have left it: per stream, the version of its last event of a type reporting handles
    (the benchmark runs no consumer)."""
    conn = await asyncpg.connect(superuser_url)
    try:
        status = await conn.execute(
            "INSERT INTO consumers.stream_positions (consumer, stream_id, stream_version) "
            "SELECT 'reporting', stream_id, max(stream_version) FROM eventstore.events "
            "WHERE event_type = ANY($1::text[]) GROUP BY stream_id "
            "ON CONFLICT (consumer, stream_id) "
            "DO UPDATE SET stream_version = excluded.stream_version",
            sorted(HANDLED_TYPES),
        )
        return int(status.split()[-1])
    finally:
        await conn.close()


def rebuild(url: str, postmaster: int, workers: int, *args: str) -> dict[str, Any]:
    """Run ``minqing reporting rebuild`` as a child folding in ``workers`` processes; its
    figures (peak memory: the child's and its fold workers' peaks added up)."""
    env = {
        "MINQING_DATABASE_URL": url,
        "MINQING_LOG_LEVEL": "WARNING",
        "MINQING_REPORTING_REBUILD_WORKERS": str(workers),
        "PATH": "/usr/bin:/bin",
        # the vault key the generation sealed the texts with (the default when unset)
        **{k: v for k, v in os.environ.items() if k == "MINQING_PRIVACY_KEY"},
    }
    pg = tree_cpu(postmaster)
    pg_before, children_before = pg(), reaped_children_cpu()
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "minqing.cli", "reporting", "rebuild", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peaks: dict[int, int] = {}
    while child.poll() is None:
        for pid in (child.pid, *_children(child.pid)):
            peaks[pid] = max(peaks.get(pid, 0), _hwm_kb(pid))
        time.sleep(0.05)
    peak_kb = sum(peaks.values())
    seconds = time.perf_counter() - started
    out, err = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"rebuild failed:\n{out}\n{err}")
    found = re.search(r"(\d+) events folded \((\d+) read\) in ([\d.]+) s", out)
    assert found, out
    folded, read, inside = int(found[1]), int(found[2]), float(found[3])
    return {
        "args": " ".join(args) or "live",
        "workers": workers,
        "events": folded,
        "read": read,
        "seconds": round(inside, 2),
        "process_seconds": round(seconds, 2),
        "events_per_s": round(folded / inside),
        "peak_mb": round(peak_kb / 1024),
        "cpu_s": {
            "rebuild": round(reaped_children_cpu() - children_before, 1),
            "postgres": round(pg() - pg_before, 1),
        },
        "phases": {
            name: float(seconds)
            for name, seconds in re.findall(r"(\w+) ([\d.]+) s", _phases_line(out))
        },
        "equal": "identical to the live projections" in out,
        "differing_tables": [
            line.split()[1] for line in out.splitlines() if line.startswith("  ≠")
        ],
    }


def _phases_line(out: str) -> str:
    """The rebuild's line of seconds per phase (start, read, copy, index, catch_up, and
    checksum and swap for a live rebuild)."""
    return next((line for line in out.splitlines() if "phases:" in line), "").split(":", 1)[-1]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def measure(stack: LocalStack, args: argparse.Namespace) -> Results:
    url = await stack.create_database("rebuild")
    pool = await create_pool(url, role="minqing_runtime", max_size=6)
    try:
        step(f"generating a year of a large district (~{args.events:,} events)")
        generated = await generate(EventStore(pool), pool, args.events, args.seed)
    finally:
        await pool.close()
    step(f"appended {generated['events']:,} events in {generated['seconds']} s")
    runs = []
    moment = datetime.now(UTC).isoformat()
    pg = stack.postmaster_pid
    for workers in args.workers:
        step(f"rebuild --at now, {workers} fold process(es) (audit schema: no gate, no comparison)")
        figures = await settled_rebuild(url, pg, workers, "--at", moment)
        runs.append({**figures, "kind": "--at now"})
    gates = await catch_up_gate(url)
    last = args.workers[-1]
    step(f"gate of the reporting consumer at every stream's head ({gates:,} streams); rebuild live")
    runs.append({**await settled_rebuild(url, pg, last), "kind": "live, all differ"})
    for workers in args.workers:
        step(f"rebuild live again, {workers} fold process(es) (the live projections equal it)")
        runs.append({**await settled_rebuild(url, pg, workers), "kind": "live, equal"})
    best = max(r["events_per_s"] for r in runs)
    return {
        "benchmark": "rebuild",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "generated": generated,
        "runs": runs,
        "goals": {
            "at_least_50000_per_s": all(r["events_per_s"] >= 50_000 for r in runs),
            "aim_200000_per_s": best >= 200_000,
        },
    }


def report(results: Results) -> str:
    g = results["generated"]
    table = Table(
        Column("run", 30),
        Column("events", 10, ",d"),
        Column("seconds", 8, ".2f"),
        Column("events/s", 10, ",d"),
        Column("peak MB", 8, ",d"),
        Column("cpu rebuild", 12, ".1f"),
        Column("cpu pg", 8, ".1f"),
        Column("equal", 6),
    )
    lines = [
        machine_line(results["machine"]),
        f"store: {g['events']:,} events ({g['cases']:,} cases, {g['stations']} stations, "
        f"{g['representatives']} representatives), appended in {g['seconds']} s",
        "",
        table.header(),
    ]
    for r in results["runs"]:
        name = f"{r['kind']} ({r['workers']} proc.)"
        lines.append(
            table.row(
                name,
                r["events"],
                r["seconds"],
                r["events_per_s"],
                r["peak_mb"],
                r["cpu_s"]["rebuild"],
                r["cpu_s"]["postgres"],
                "yes" if r["equal"] else "no",
            )
        )
    goals = results["goals"]
    lines += [
        "",
        f"goal >= 50,000 events/s: {verdict(goals['at_least_50000_per_s'])}",
        f"aim >= 200,000 events/s: {verdict(goals['aim_200000_per_s'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start PostgreSQL, generate the year, rebuild three ways, print, clean up."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_020_000, help="events to generate")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[2],
        help="fold processes of each rebuild, e.g. 1,2 to compare (default 2)",
    )
    args = parser.parse_args(argv)
    return run("rebuild", lambda stack: measure(stack, args), report, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
