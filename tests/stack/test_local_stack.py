"""``minqing up`` / ``minqing down`` as real processes: start, serve, stop, restart, refuse.

Each test has its own data dir and its own broker port (set through
``MINQING_KAFKA_BOOTSTRAP``, a loopback address, so ``up`` starts its own Tansu there),
so a developer's stack on 9092 is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import httpx
import psutil
import pytest

from contracts.envelope import Envelope
from contracts.topics import NOTIFICATIONS
from eventkit.db import create_pool
from eventkit.local import die_with_parent, free_port, local_database_url, port_in_use
from eventkit.loop import run as run_loop
from eventkit.settings import Settings
from eventkit.store import EventStore
from minqing.system import DEMO_DISTRICT_FILE, existing_services, local_stack_environment
from services.routing.settings import RoutingSettings
from tests.helpers import read_topic

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data dir; whatever still runs with it is killed before it is removed."""
    path = Path(tempfile.mkdtemp(prefix="mq-stack-"))
    try:
        yield path
    finally:
        for process in _leftovers(path):
            with contextlib.suppress(psutil.Error):
                process.kill()
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    """The environment of the ``minqing`` commands: our data dir, our broker port and our
    service ports, so a developer's own running stack is never in the way."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MINQING_")}
    return {
        **clean,
        "MINQING_DATA_DIR": str(data_dir),
        "MINQING_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "MINQING_LOG_FORMAT": "json",
        **{spec.port_variable: str(free_port()) for spec in existing_services()},
        "MINQING_SINK_SMTP_PORT": str(free_port()),
        "MINQING_SINK_HTTP_PORT": str(free_port()),
    }


class Up:
    """A running ``minqing up``, its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minqing.cli", "up"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # A test that dies outright must not leave a stack behind.
            preexec_fn=die_with_parent,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The first output line containing ``text``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        ended = False
        with self._changed:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                if ended or time.monotonic() > deadline:
                    pytest.fail(f"no {text!r} in the output of `up`:\n{self.output()}")
                # Once the process has ended, one more look after its last lines are read.
                ended = self.process.poll() is not None
                self._changed.wait(0.5)

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`up` did not stop within {timeout} s:\n{self.output()}")


def minqing(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a ``minqing`` command to its end."""
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _leftovers(data_dir: Path) -> list[psutil.Process]:
    """Live processes started for ``data_dir``: by their command line or environment."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(data_dir) in cmdline or process.environ().get("MINQING_DATA_DIR") == str(
                data_dir
            ):
                found.append(process)
    return found


def assert_nothing_left(data_dir: Path, bootstrap: str) -> None:
    """No process of the stack runs, nothing listens on the broker port, no pid file."""
    deadline = time.monotonic() + 5
    while (left := _leftovers(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)  # the postmaster's own children end just after it
    assert not left, [p.info["cmdline"] for p in left]
    on_port = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if bootstrap in " ".join(p.info["cmdline"] or [])
    ]
    assert not on_port
    host, _, port = bootstrap.partition(":")
    assert not port_in_use(host, int(port))
    assert not (data_dir / "up.pid").exists()
    assert local_database_url(Settings(data_dir=data_dir)) is None


def wait_until_ready(up: Up, env: dict[str, str]) -> str:
    """Wait for the relay's leadership and the broker; the database URL."""
    up.wait_for("按 Ctrl-C 停止 / Ctrl-C to stop")
    up.wait_for("relay is the leader")
    host, _, port = env["MINQING_KAFKA_BOOTSTRAP"].partition(":")
    assert port_in_use(host, int(port))
    url = local_database_url(Settings(data_dir=Path(env["MINQING_DATA_DIR"])))
    assert url is not None
    return url


async def _append_event(url: str) -> UUID:
    pool = await create_pool(url, max_size=1)
    try:
        event = Envelope(
            event_type="CaseReplied",
            schema_version=1,
            stream_id=f"case-{uuid4().hex[:12]}",
            district_id="demo",
            occurred_at=datetime.now(UTC),
            data={"message": "已联系物业处理"},
        )
        await EventStore(pool).append(event.stream_id, [event])
        return event.event_id
    finally:
        await pool.close()


async def _event_count(url: str, event_id: UUID) -> int:
    conn = await asyncpg.connect(url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM eventstore.events WHERE event_id = $1", event_id
        )
        return int(count)
    finally:
        await conn.close()


async def _qr_submission_is_notified(env: dict[str, str]) -> None:
    intake = f"http://127.0.0.1:{env['MINQING_INTAKE_PORT']}"
    outbox = f"http://127.0.0.1:{env['MINQING_SINK_HTTP_PORT']}"
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(100):  # intake learns the stations from the directory topic
            answer = await client.post(
                f"{intake}/api/v1/opinions",
                json={
                    "channel": "qr",
                    "station_code": "dh_donghu",
                    "district": "demo",
                    "text": "小区东门的三盏路灯坏了三个多月，晚上老人出门很不方便",
                },
            )
            if answer.status_code == 201:
                break
            await asyncio.sleep(0.3)
        assert answer.status_code == 201, answer.text
        records = await read_topic(
            env["MINQING_KAFKA_BOOTSTRAP"],
            NOTIFICATIONS,
            until=lambda r: any(b"NotificationSent" in dict(x.headers)["ce_type"] for x in r),
            timeout=30,
        )
        assert records
        mails = (await client.get(f"{outbox}/messages.json")).json()
    assert any(m["kind"] == "mail" and "新案件" in m["subject"] for m in mails)


def _get_when_serving(url: str, timeout: float = 30.0) -> httpx.Response:
    """``GET url`` once the service listens (it does after its start-up work)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=10)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_up_serves_stops_cleanly_and_keeps_its_data(data_dir: Path, env: dict[str, str]) -> None:
    bootstrap = env["MINQING_KAFKA_BOOTSTRAP"]
    first = Up(env)
    try:
        url = wait_until_ready(first, env)
        # A newcomer is handed the dashboards, signed in.
        assert "/dashboard/login?token=" in first.wait_for("dashboard")
        # ... and the workbench, with a first sign-in for a liaison officer and a
        # representative of the demo district.
        assert "/workbench/" in first.wait_for("workbench")
        links = {
            person: re.search(r"http://\S+/workbench/welcome\?code=\S+", first.wait_for(person))
            for person in ("lo_dh_01: http", "r001: http")
        }
        # The local stack asks routing for the demo district.
        assert '"district": "demo"' in first.wait_for("district file imported")
        # ... and its first classifier, trained from the labelled opinions kept with it.
        assert '"district": "demo"' in first.wait_for("classifier published")
        for found in links.values():
            assert found is not None
            welcome = _get_when_serving(found.group(0))
            assert welcome.status_code == 200, welcome.text
            assert "设置密码" in welcome.text
        assert str(data_dir / "pg") in first.wait_for("(embedded,")
        assert "Tansu" in first.wait_for(bootstrap)

        # One `up` per data dir.
        second = minqing(env, "up")
        assert second.returncode == 1, second.stdout + second.stderr
        assert "already running" in second.stderr
        assert (data_dir / "up.pid").read_text().strip() == str(first.process.pid)

        # The other commands find the running database by themselves.
        migrated = minqing(env, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert "up to date" in migrated.stdout

        event_id = run_loop(_append_event(url))

        # A resident scans the QR code: within seconds the representative is told, the
        # mail sits in the local outbox, and the proof is on the notifications topic.
        first.wait_for("contact file imported")
        run_loop(_qr_submission_is_notified(env))
    finally:
        code = first.stop(signal.SIGINT)
    assert code == 0, first.output()
    assert_nothing_left(data_dir, bootstrap)

    # Again with the same data dir: the event is still there; `down` stops it.
    again = Up(env)
    try:
        url = wait_until_ready(again, env)
        assert run_loop(_event_count(url, event_id)) == 1
        down = minqing(env, "down")
        assert down.returncode == 0, down.stderr
        assert again.process.wait(5) == 0, again.output()
    finally:
        if again.process.poll() is None:
            again.stop(signal.SIGTERM)
    assert_nothing_left(data_dir, bootstrap)
    assert "not running" in minqing(env, "down").stdout


def test_up_refuses_a_taken_broker_port(data_dir: Path, env: dict[str, str]) -> None:
    host, _, port = env["MINQING_KAFKA_BOOTSTRAP"].partition(":")
    with socket.socket() as taken:
        taken.bind((host, int(port)))
        taken.listen()
        result = minqing(env, "up")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {host}:{port} is taken" in result.stderr
    # Refused before anything was started.
    assert not (data_dir / "pg").exists()
    assert not (data_dir / "up.pid").exists()
    assert not _leftovers(data_dir)


def test_the_local_stack_asks_for_the_demo_district_and_nothing_else_does() -> None:
    extra = local_stack_environment({})
    assert json.loads(extra["MINQING_ROUTING_DISTRICT_FILES"]) == [str(DEMO_DISTRICT_FILE)]
    assert json.loads(extra["MINQING_ROUTING_TRAIN_DISTRICTS"]) == ["demo"]
    # A caller's own choice is kept, even none at all.
    own = local_stack_environment({"MINQING_ROUTING_DISTRICT_FILES": "[]"})
    assert not {k for k in own if k.startswith("MINQING_ROUTING_")}
    # Outside the local stack, routing imports no district of its own accord.
    assert RoutingSettings(_env_file=None).routing_district_files == []
