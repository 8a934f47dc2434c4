"""What every benchmark in ``bench/`` shares.

- the local stack it measures (:class:`LocalStack`): an embedded PostgreSQL and a Tansu
  broker in a temporary directory, its databases created and migrated as
  ``minqing db migrate`` does, the relay and the services as child processes started
  as ``minqing up`` starts them; all of it stopped and removed on exit;
- :func:`run`: a script's ``main`` around its measurement (Ctrl-C and SIGTERM clean up
  too), printing its table and, as the last line of stdout, one JSON object;
- CPU probes (:class:`CpuMeter`): the CPU time of each part of the system, read from
  ``/proc``, and the machine's busy share and load over a run;
- percentiles and their summaries, the machine's description, and the table layout.

Progress goes to stderr, so that stdout holds only the figures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from eventkit.db import ALL_DISTRICTS, district_transaction, migrate
from eventkit.kafka import partitions_of
from eventkit.local import Broker, EmbeddedPostgres, die_with_parent
from eventkit.logging import configure_logging
from eventkit.loop import run as run_loop
from minqing.system import local_stack_environment, migration_packages

ROOT = Path(__file__).resolve().parents[1]
"""The checkout: the working directory of the child processes."""

Results = dict[str, Any]
"""A benchmark's figures, JSON-ready."""


# --------------------------------------------------------------------------- the machine


async def fetch_every_district(pool: asyncpg.Pool, query: str, *args: Any) -> list[Any]:
    """``query``'s rows from every district: a benchmark checks what the services wrote as
    an operator would, declaring every district (the tables have row-level security)."""
    async with district_transaction(pool, ALL_DISTRICTS) as conn:
        return list(await conn.fetch(query, *args))


async def fetchval_every_district(pool: asyncpg.Pool, query: str, *args: Any) -> Any:
    """:func:`fetch_every_district`'s first value."""
    async with district_transaction(pool, ALL_DISTRICTS) as conn:
        return await conn.fetchval(query, *args)


def load() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _speed_task(_: object = None) -> float:
    """A fixed piece of CPU work like the services' own (the interpreter's arithmetic, a
    JSON round trip of many small objects, sorting, SHA-256): its CPU time in ms."""
    started = time.process_time()
    total = 0
    for i in range(100_000):
        total += i * i % 7
    document = [{"id": i, "text": "电梯坏了，请尽快维修", "at": i / 7} for i in range(8_000)]
    for _ in range(3):
        document = json.loads(json.dumps(document, ensure_ascii=False))
    sorted(str(i * 7919 % 100_003) for i in range(30_000))
    block = b"minqing" * 150_000
    for _ in range(5):
        block = hashlib.sha256(block).digest() * 32_813
    return (time.process_time() - started) * 1000


def _round_trip_us(trips: int = 5_000) -> float:
    """The wall time of one message to another process and back (a socket pair), in µs:
    what every hop between the services, PostgreSQL and the broker costs in waking up."""
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the echo
        try:
            mine.close()
            for _ in range(trips):
                theirs.sendall(theirs.recv(64))
        finally:
            os._exit(0)
    theirs.close()
    try:
        started = time.perf_counter()
        for _ in range(trips):
            mine.sendall(b"ping")
            mine.recv(64)
        return (time.perf_counter() - started) / trips * 1e6
    finally:
        mine.close()
        os.waitpid(pid, 0)


def machine_speed() -> dict[str, float]:
    """How fast this machine is now (lower is faster), measured before a run starts.

    The same CPU work done alone and then on every core at once (one process each), and
    a message's round trip between two processes; medians of three. This shared
    machine's speed moves by up to half within an hour, its cores are slower when all
    are busy, and a process woken by a message may wait for a core: the round trip is
    what moves most with it. Figures of runs at different moments
    compare only with these beside them (docs/performance.md, "Machine speed")."""
    alone = sorted(_speed_task() for _ in range(3))[1]
    cores = os.cpu_count() or 1
    together: list[float] = []
    with concurrent.futures.ProcessPoolExecutor(cores) as workers:
        for _ in range(3):
            together.append(statistics.mean(workers.map(_speed_task, range(cores))))
    trip = sorted(_round_trip_us() for _ in range(3))[1]
    return {
        "alone_ms": round(alone, 1),
        "all_cores_ms": round(sorted(together)[1], 1),
        "round_trip_us": round(trip, 1),
    }


_SPEED: dict[str, float] = {}
""":func:`machine_speed` as measured at the start of this run (by :func:`run`)."""


def machine() -> dict[str, Any]:
    """The machine a run measured: cores, CPU model, load average now, Python version,
    and its speed at the start of the run (when :func:`run` measured it)."""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "load_at_end": load(),
        "python": platform.python_version(),
        **({"speed": dict(_SPEED)} if _SPEED else {}),
    }


def machine_line(described: Mapping[str, Any]) -> str:
    """The report's line for :func:`machine`'s description."""
    line = (
        f"machine: {described['nproc']} CPUs, {described['cpu']}; "
        f"load at end {described['load_at_end']}"
    )
    speed = described.get("speed")
    if speed:
        line += (
            f"; speed at start: the reference task {speed['alone_ms']:g} ms alone, "
            f"{speed['all_cores_ms']:g} ms with every core busy, a round trip between "
            f"processes {speed.get('round_trip_us', 0):g} µs (lower is faster)"
        )
    return line


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat; (0, 0) if unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


# --------------------------------------------------------------------------- CPU probes

CpuProbe = Callable[[], float]
"""The CPU seconds (user + system) something has used so far; 0 when /proc cannot tell."""

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, int, int]:
    """(ppid, own ticks, ticks of reaped children) of one process, from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return int(fields[1]), utime + stime, cutime + cstime


def process_cpu(pid: int) -> CpuProbe:
    """A probe of one process's own CPU time (its children not included)."""

    def probe() -> float:
        try:
            return _proc_stat(pid)[1] / _TICK
        except (OSError, ValueError, IndexError):
            return 0.0

    return probe


def tree_cpu(pid: int) -> CpuProbe:
    """A probe of a process and all its descendants, the live ones and those already
    reaped: a PostgreSQL postmaster with its backends, including the backends that exit
    during the run (their time moves into the postmaster's children's time)."""

    def probe() -> float:
        return _tree_ticks(pid) / _TICK

    return probe


def _tree_ticks(root: int) -> int:
    stats: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stats[int(entry)] = _proc_stat(int(entry))
    if root not in stats:
        return 0
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    ticks, pending = 0, [root]
    while pending:
        pid = pending.pop()
        _, own, reaped = stats[pid]
        ticks += own + reaped
        pending += children.get(pid, [])
    return ticks


def own_cpu() -> float:
    """A probe of this process's CPU time (every thread), to the nanosecond."""
    return time.process_time()


def reaped_children_cpu() -> float:
    """A probe of the CPU time of this process's children that have exited (pgbench)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Usage:
    """What one measured span used; filled in when :meth:`CpuMeter.measuring` ends."""

    seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds of each part of the system."""
    machine_busy_pct: float = 0.0
    """Busy share of all cores (anyone's work, not only the parts')."""
    load_at_start: tuple[float, float, float] = (0.0, 0.0, 0.0)


class CpuMeter:
    """The CPU time of each part of the system under test (PostgreSQL, the broker, the
    relay, a service, this process...), each part the sum of its probes.

    On a shared machine the CPU time per unit of work moves much less with other load
    than the rates do, and the parts' sum says what one unit costs the whole system.
    """

    def __init__(self, parts: Mapping[str, Sequence[CpuProbe]]) -> None:
        self.parts = dict(parts)

    def snapshot(self) -> dict[str, float]:
        """The CPU seconds used so far by each part, in the order the parts were given."""
        return {name: sum(probe() for probe in probes) for name, probes in self.parts.items()}

    def spent(self, before: Mapping[str, float]) -> dict[str, float]:
        """The CPU seconds each part used since the ``before`` snapshot (never negative:
        a process that exited in between counts as 0)."""
        now = self.snapshot()
        return {name: max(0.0, now[name] - before.get(name, 0.0)) for name in now}

    @contextlib.contextmanager
    def measuring(self) -> Iterator[Usage]:
        """Measure the block: its wall time, the parts' CPU, the machine's busy share and
        the load average at its start."""
        usage = Usage(load_at_start=load())
        busy0, total0 = machine_ticks()
        before = self.snapshot()
        started = time.perf_counter()
        try:
            yield usage
        finally:
            usage.seconds = time.perf_counter() - started
            usage.cpu_s = self.spent(before)
            busy1, total1 = machine_ticks()
            if total1 > total0:
                usage.machine_busy_pct = round(100 * (busy1 - busy0) / (total1 - total0), 1)


def ms_per(cpu_s: Mapping[str, float], count: int, digits: int = 2) -> dict[str, float]:
    """Milliseconds of CPU per unit of work (an event, a submission, a case), by part."""
    return {name: round(1000 * seconds / max(1, count), digits) for name, seconds in cpu_s.items()}


# --------------------------------------------------------------------------- percentiles


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(
    seconds: Sequence[float], quantiles: Sequence[int] = (50, 99), digits: int = 1
) -> dict[str, float]:
    """Durations given in seconds as ``{"p50": ms, "p99": ms, "max": ms}`` (one key per
    quantile, then the maximum); all 0 for no durations."""
    summary = {f"p{q}": round(1000 * percentile(seconds, q), digits) for q in quantiles}
    summary["max"] = round(1000 * max(seconds, default=0.0), digits)
    return summary


# --------------------------------------------------------------------------- the stack


@dataclass
class Child:
    """A process the benchmark started (the relay, a service), its output in ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    _log_file: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid

    async def ready(self, port: int, timeout: float = 90.0) -> None:
        """Wait until the service answers 200 on ``/readyz`` at ``port`` (its database
        answers and its consumers have started); fail at once if it exits."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{port}/readyz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log}")
            # One short request per thread, so that a Ctrl-C never waits for the deadline.
            if await asyncio.to_thread(_answers, url):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} did not become ready in {timeout:g} s; see {self.log}")

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM), if it still runs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 15.0) -> None:
        """Wait for it to exit, killing it after ``timeout``; close its log."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


def _answers(url: str) -> bool:
    """Whether ``url`` answers 200 within 2 s."""
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
        return bool(answer.status == 200)
    return False


class LocalStack:
    """An embedded PostgreSQL and a Tansu broker (on a free port) in a temporary
    directory, and the child processes started on them.

    Use as a context manager: entering starts the server and the broker; leaving stops
    the children (newest first), the broker and the server, and removes the directory
    unless ``keep``, whatever happened in between.
    """

    def __init__(self, name: str, *, keep: bool = False) -> None:
        self.keep = keep
        self.workdir = Path(tempfile.mkdtemp(prefix=f"minqing-bench-{name}-"))
        self.server = EmbeddedPostgres(self.workdir / "pg")
        self.broker = Broker(port=None, log_path=self.workdir / "tansu.log")
        self.admin_url = ""
        """The superuser URL of the ``postgres`` database (a Unix socket)."""
        self.children: list[Child] = []

    def __enter__(self) -> LocalStack:
        try:
            self.admin_url = self.server.start()
            self.broker.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop everything and remove the directory (unless ``keep``); safe to repeat."""
        self.stop_children()
        with contextlib.suppress(Exception):
            self.broker.stop()
        with contextlib.suppress(Exception):
            self.server.stop()
        if self.keep:
            print(f"kept {self.workdir} (the logs of every process)", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- PostgreSQL

    @property
    def pid_file(self) -> Path:
        """Where the postmaster writes its pid."""
        return self.workdir / "pg" / "postmaster.pid"

    @property
    def postmaster_pid(self) -> int:
        """The PostgreSQL server's pid."""
        return int(self.pid_file.read_text().split("\n", 1)[0])

    def url(self, database: str) -> str:
        """The superuser URL of ``database`` on the server."""
        head, _, query = self.admin_url.partition("?")
        return f"{head.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")

    async def create_database(
        self, name: str, *, track_functions: bool = False, fast_autovacuum: bool = False
    ) -> str:
        """Create database ``name`` and migrate it as ``minqing db migrate`` does (every
        present service's migrations); its superuser URL. ``track_functions``: the server
        times every call of a PL/pgSQL function in it (``pg_stat_user_functions``).

        ``fast_autovacuum``: the server's autovacuum looks at the tables every ten
        seconds instead of every minute (for the whole server). A benchmark of the
        services fills their tables from empty to thousands of rows in seconds, which a
        district's take months to; with the default minute the whole run would use plans
        made for empty tables (a sequential scan where a running system, its statistics
        kept by autovacuum, uses an index). Every second was measured too: the
        statistics then change all the time, and the server spends more on analysing
        and planning afresh than a running system does."""
        conn = await asyncpg.connect(self.admin_url)
        try:
            if fast_autovacuum:
                await conn.execute("ALTER SYSTEM SET autovacuum_naptime = '10s'")
                await conn.execute("SELECT pg_reload_conf()")
            await conn.execute(f'CREATE DATABASE "{name}"')
            if track_functions:
                await conn.execute(f"ALTER DATABASE \"{name}\" SET track_functions = 'all'")
        finally:
            await conn.close()
        url = self.url(name)
        await migrate(url, migration_packages())
        return url

    async def record_statements(self, *, planning: bool = False) -> None:
        """Restart the server with ``pg_stat_statements`` loaded, so that
        :meth:`statements` can tell which statements the server spent its time on.
        ``planning``: planning is timed too (``track_planning``), apart from execution: a
        statement planned afresh at every call shows its cost there, not in its run."""
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            await conn.execute("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
            await conn.execute(
                "ALTER SYSTEM SET pg_stat_statements.track_planning = "
                + ("'on'" if planning else "'off'")
            )
        finally:
            await conn.close()
        self.server.stop()
        self.admin_url = self.server.start()

    async def statements(self, url: str, limit: int = 20) -> list[dict[str, Any]]:
        """The statements (top-level and inside functions) that took the most time in
        the database of ``url`` since :meth:`reset_statements`, most first."""
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                r"""
                SELECT calls, round(total_exec_time::numeric, 1) AS total_ms,
                       round(mean_exec_time::numeric, 3) AS mean_ms, rows,
                       plans, round(total_plan_time::numeric, 1) AS plan_total_ms,
                       round(mean_plan_time::numeric, 3) AS plan_mean_ms,
                       left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query
                  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
                 WHERE d.datname = current_database()
                 ORDER BY total_exec_time + total_plan_time DESC LIMIT $1
                """,
                limit,
            )
            return [dict(r) for r in rows]
        finally:
            await conn.close()

    async def analyze(self, url: str) -> None:
        """Refresh the planner's statistics of every table of the database of ``url``
        (``ANALYZE``), as autovacuum keeps them on a running system."""
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    async def reset_statements(self, url: str) -> None:
        """Start counting statements afresh (in the database of ``url``)."""
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")
        finally:
            await conn.close()

    # -- the broker

    @property
    def bootstrap(self) -> str:
        """The broker's ``host:port`` for Kafka clients."""
        return self.broker.bootstrap

    @property
    def broker_pid(self) -> int:
        """The broker's pid (0 when it does not run)."""
        return self.broker.pid or 0

    # -- the child processes

    def environment(
        self, database_url: str, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The environment of a child: this process's, what the local stack adds to its
        services' (``minqing up``: the demo district for routing), this stack's database
        and broker, logs as JSON warnings only (in the child's log file), then ``extra``."""
        return {
            **os.environ,
            **local_stack_environment(dict(os.environ)),
            "MINQING_DATABASE_URL": database_url,
            "MINQING_KAFKA_BOOTSTRAP": self.bootstrap,
            "MINQING_LOG_FORMAT": "json",
            "MINQING_LOG_LEVEL": "WARNING",
            **(extra or {}),
        }

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
        """Run ``argv`` in the checkout as a child that dies with this process, its output
        in ``<workdir>/<name>.log``; it is stopped when the stack closes."""
        log = self.workdir / f"{name}.log"
        log_file = log.open("ab")
        try:
            process = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=dict(env),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        except BaseException:
            log_file.close()
            raise
        child = Child(name, process, log, log_file)
        self.children.append(child)
        return child

    def start_relay(self, env: Mapping[str, str]) -> Child:
        """The relay, as ``minqing up`` runs it (``minqing relay run``)."""
        return self.start("relay", [sys.executable, "-m", "minqing.cli", "relay", "run"], env)

    def start_service(
        self, name: str, module: str, env: Mapping[str, str], argv: Sequence[str] | None = None
    ) -> Child:
        """A service as ``minqing up`` runs it (``python -m <module>``), or ``argv`` after
        the interpreter instead (e.g. a profiling wrapper)."""
        return self.start(name, [sys.executable, *(argv or ["-m", module])], env)

    def stop_children(self) -> None:
        """SIGTERM to every child, newest first; then wait for each (SIGKILL after 15 s)."""
        for child in reversed(self.children):
            child.terminate()
        for child in reversed(self.children):
            child.wait()
        self.children.clear()


# --------------------------------------------------------------------------- Kafka


@contextlib.asynccontextmanager
async def following(
    bootstrap: str,
    topic: str,
    *,
    fetch_max_wait_ms: int,
    timeout: float = 60.0,
    alive: asyncio.Task[Any] | None = None,
) -> AsyncIterator[Any]:
    """A started Kafka consumer assigned to every partition of ``topic`` from its
    beginning (no group, no commits), once the topic exists; stopped on exit.

    ``alive``: the task that creates the topic (an in-process relay); its end stops the
    wait at once.
    """
    deadline = time.monotonic() + timeout
    partitions: list[int] = []
    while not partitions:
        if alive is not None and alive.done():
            alive.result()
            raise RuntimeError(f"stopped before creating topic {topic}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} was not created in {timeout:g} s")
        await asyncio.sleep(0.1)
        partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_max_wait_ms
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        yield consumer
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


# --------------------------------------------------------------------------- output


def step(label: str) -> None:
    """Progress on stderr, with the load average."""
    print(f"... {label} (load {load()[0]})", file=sys.stderr, flush=True)


def verdict(met: bool) -> str:
    """How a goal reads in a report."""
    return "PASS" if met else "MISS"


@dataclass(frozen=True)
class Column:
    """A column of a report's table: its title, width and the format of its values
    (``",.0f"``); a value given as text is only aligned."""

    title: str
    width: int
    spec: str = ""


class Table:
    """A fixed-width table: the first column aligned left, the others right."""

    def __init__(self, *columns: Column) -> None:
        self.columns = columns

    def _line(self, cells: Sequence[object], formatted: bool) -> str:
        out = []
        for n, (column, value) in enumerate(zip(self.columns, cells, strict=True)):
            align = "<" if n == 0 else ">"
            spec = column.spec if formatted and not isinstance(value, str) else ""
            out.append(format(value, f"{align}{column.width}{spec}"))
        return " ".join(out)

    def header(self) -> str:
        """The titles."""
        return self._line([c.title for c in self.columns], formatted=False)

    def row(self, *values: object) -> str:
        """One row, a value per column."""
        return self._line(values, formatted=True)


def run(
    name: str,
    measure: Callable[[LocalStack], Coroutine[Any, Any, Results]],
    report: Callable[[Results], str],
    *,
    keep: bool = False,
) -> int:
    """A benchmark's ``main``: start a :class:`LocalStack`, run ``measure`` on it under
    asyncio, print ``report(results)`` and then the results as one JSON line.

    Everything started is stopped and removed (the directory kept with ``keep``) on
    success, failure, Ctrl-C and SIGTERM; the last two return 130.
    """
    configure_logging("WARNING", "console")

    def terminated(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        _SPEED.update(machine_speed())
        with LocalStack(name, keep=keep) as stack:
            step(f"started PostgreSQL and Tansu in {stack.workdir}")
            results = run_loop(measure(stack))
    except KeyboardInterrupt as exc:
        print(f"interrupted ({str(exc) or 'Ctrl-C'}); cleaned up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(report(results))
    print(json.dumps(results, ensure_ascii=False, separators=(",", ":")))
    return 0
