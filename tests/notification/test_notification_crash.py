"""A notification process SIGKILLed mid-send: the delivery is never sent twice. Its
outcome is unknown (the mail server may or may not have taken it), the restarted service
marks it so and leaves it alone, and an operator settles it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest

from eventkit.local import die_with_parent, free_port
from eventkit.store import EventStore
from minqing.sink import Sink
from services.notification.bootstrap import Notification
from services.notification.settings import NotificationSettings
from tests.every_district import every_district
from tests.notification.notification_support import assigned, happen, opened, resident_opinion

pytestmark = pytest.mark.slow

TIMEOUT = 1.5
"""The service's send timeout: a claim older than twice this belongs to a dead sender."""


async def until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():  # type: ignore[misc]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


class Process:
    """``python -m services.notification`` sending only (no consumer, no feed)."""

    def __init__(self, settings: NotificationSettings) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "MINQING_DATABASE_URL": settings.database_url or "",
            # Like the local stack's children: a test database, the development keys.
            "MINQING_LOCAL_STACK": "1",
            "MINQING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "MINQING_TOPIC_PREFIX": settings.topic_prefix,
            "MINQING_NOTIFICATION_PORT": str(self.port),
            "MINQING_NOTIFICATION_CONSUME": "false",
            "MINQING_PUBLIC_FEED": "false",
            "MINQING_SMTP_PORT": str(settings.smtp_port),
            "MINQING_DELIVERY_TIMEOUT": str(TIMEOUT),
            "MINQING_LOG_FORMAT": "json",
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.notification",
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )

    async def ready(self) -> bool:
        async with httpx.AsyncClient() as client:
            try:
                answer = await client.get(f"http://127.0.0.1:{self.port}/readyz")
            except httpx.HTTPError:
                return False
        return answer.status_code == 200

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@pytest.fixture
async def processes(
    notification_settings: NotificationSettings,
) -> AsyncIterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in started:
            await process.stop()


async def test_a_sender_killed_mid_send_leaves_an_unknown_delivery_that_is_never_resent(
    demo: Notification,
    store: EventStore,
    sink: Sink,
    pool: asyncpg.Pool,
    notification_settings: NotificationSettings,
    processes: list[Process],
) -> None:
    made = await resident_opinion(demo.vault, demo.pool)
    await happen(store, demo, made)
    case = opened(made.opinion_id)
    await happen(store, demo, case)
    await happen(store, demo, assigned(case.case_id, "r017"))  # one mail to r017
    sink.mail_delay = 3.0  # the mail server takes its time to accept the message

    first = Process(notification_settings)
    processes.append(first)
    await first.start()

    async def sending() -> bool:
        status = await every_district(pool).fetchval("SELECT status FROM notification.deliveries")
        return bool(status == "sending")

    await until(sending, 30, "the delivery was never claimed")
    await asyncio.sleep(0.5)  # the message is on its way to the mail server
    await first.kill()

    second = Process(notification_settings)
    processes.append(second)
    await second.start()
    await until(second.ready, 30, "the restarted service is not ready")

    async def unknown() -> bool:
        status = await every_district(pool).fetchval("SELECT status FROM notification.deliveries")
        return bool(status == "unknown")

    await until(unknown, 30, "the orphaned delivery was not marked unknown")
    await asyncio.sleep(2 * TIMEOUT + 1)  # the restarted sender has had every chance to resend

    mails = [m for m in sink.received if m.kind == "mail"]
    assert len(mails) <= 1  # the server may have taken the one message; never two
    assert (
        await every_district(pool).fetchval("SELECT status FROM notification.deliveries")
        == "unknown"
    )
    assert await every_district(pool).fetchval("SELECT attempts FROM notification.deliveries") == 1
    notifications = await store.read_all(limit=100, categories=["notification"])
    assert notifications == []  # nothing is claimed about an outcome nobody knows

    # An operator who checked the mailbox settles it; the outcome is recorded then.
    delivery_id = await every_district(pool).fetchval(
        "SELECT delivery_id FROM notification.deliveries"
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "minqing.cli", "notification", "reconcile", str(delivery_id),
         "--district", "demo", "--as", "sent"],
        env=first.env,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        await every_district(pool).fetchval("SELECT status FROM notification.deliveries") == "sent"
    )
    [settled] = await store.read_all(limit=100, categories=["notification"])
    assert settled.event_type == "NotificationSent"
    assert settled.data["case_id"] == case.case_id
