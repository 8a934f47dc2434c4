"""The composition root: the one place the notification service is wired.

:func:`bootstrap` opens the runtime (pool, store, clock), builds every part on it, and,
unless told otherwise, imports the contact files the settings name, starts the consumer
(events → outbox), the sender (outbox → channels) and the public feed in the background.
The HTTP app, the CLI, the benchmark and the tests all get their :class:`Notification`
here, passing their own pool, clock or channels when they need to.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from eventkit.clock import Clock, utc_now
from eventkit.consumer import Consumer
from eventkit.logging import get_logger
from eventkit.privacy import PersonalDataVault
from eventkit.service import RunningService, Runtime, open_runtime
from eventkit.settings import Settings
from services.notification import contacts
from services.notification.channels import (
    Channel,
    DingTalkRobot,
    Email,
    SmsGateway,
    SmtpSettings,
    Webhook,
    WeComRobot,
)
from services.notification.consumers import build_consumer
from services.notification.contact_book import parse_contact_file
from services.notification.planner import Planner
from services.notification.publisher import PublicFeed
from services.notification.sender import Sender
from services.notification.settings import NotificationSettings
from services.notification.setup import Setups

log = get_logger(__name__)

STARTUP = "notification-startup"
"""Who imports the contact files at start-up."""


@dataclass(repr=False)
class Notification(RunningService):
    """The running notification service: every part an entry point needs."""

    settings: NotificationSettings
    vault: PersonalDataVault
    planner: Planner
    consumer: Consumer
    sender: Sender
    public_feed: PublicFeed
    channels: Mapping[str, Channel]

    async def import_contact_files(self, files: list[Path], actor: str = STARTUP) -> None:
        """Import each contact file (only what differs is written)."""
        for path in files:
            book = parse_contact_file(path.read_text(encoding="utf-8"), source=str(path))
            counts = await contacts.import_book(self.pool, book, actor, self.clock())
            log.info("contact file imported", file=str(path), district=book.district, **counts)


def default_channels(settings: NotificationSettings) -> dict[str, Channel]:
    """The real channels, configured by the settings."""
    timeout = settings.delivery_timeout
    return {
        "email": Email(
            SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                sender=settings.mail_from,
                timeout=timeout,
                connections=settings.smtp_connections,
            )
        ),
        "sms": SmsGateway(settings.sms_gateway_url, settings.sms_gateway_keys(), timeout),
        "wecom": WeComRobot(timeout),
        "dingtalk": DingTalkRobot(timeout),
        "webhook": Webhook(timeout),
    }


def build(
    settings: NotificationSettings, runtime: Runtime, channels: Mapping[str, Channel]
) -> Notification:
    """Every part of notification on an open runtime (no I/O)."""
    pool, store, clock = runtime.pool, runtime.store, runtime.clock
    vault = PersonalDataVault(pool, settings.privacy_keys())
    setups = Setups()  # shared by the planner and the sender: one read per district change
    planner = Planner(
        store,
        clock,
        setups,
        quiet_hours=(settings.quiet_start, settings.quiet_end),
        public_feed=settings.public_feed,
    )
    return Notification(
        runtime=runtime,
        settings=settings,
        vault=vault,
        planner=planner,
        consumer=build_consumer(settings, pool, planner),
        sender=Sender(pool, store, vault, dict(channels), settings, clock, setups),
        public_feed=PublicFeed(pool, settings),
        channels=channels,
    )


@contextlib.asynccontextmanager
async def bootstrap(
    settings: Settings | None = None,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Clock = utc_now,
    channels: Mapping[str, Channel] | None = None,
    background: bool = True,
) -> AsyncIterator[Notification]:
    """The notification service, running until the ``async with`` ends.

    ``channels`` replace the real ones (a test's recorder); with ``background`` false
    nothing runs on its own (no contact import, no consumer, no sender, no feed).
    """
    own = (
        settings
        if isinstance(settings, NotificationSettings)
        else NotificationSettings(**(settings.model_dump() if settings else {}))
    )
    senders = dict(channels) if channels is not None else default_channels(own)
    try:
        async with open_runtime(own, pool=pool, clock=clock) as runtime:
            notification = build(own, runtime, senders)
            if background:
                await notification.import_contact_files(own.notification_contact_files)
                if own.notification_consume:
                    runtime.start_consumers([notification.consumer])
                if own.notification_send:
                    runtime.start("sender", notification.sender.run)
                    if own.public_feed:
                        runtime.start("public feed", notification.public_feed.run)
            yield notification
    finally:
        if channels is None:
            for channel in senders.values():
                await channel.close()
