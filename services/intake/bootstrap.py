"""The composition root: the one place intake is wired.

:func:`bootstrap` opens the runtime (pool, store, clock), builds every part on it and,
unless told otherwise, starts the consumer; the app's lifespan, the CLI and the tests all
get their :class:`Intake` from it. Nothing is built at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from eventkit.clock import Clock, utc_now
from eventkit.consumer import Consumer
from eventkit.privacy import PersonalDataVault
from eventkit.sealed_texts import TextKeys
from eventkit.service import RunningService, Runtime, open_runtime
from services.intake.consumers import intake_consumer
from services.intake.directory import Directory, TaxonomySource
from services.intake.feedback import Feedback
from services.intake.ratelimit import SharedRateLimiter
from services.intake.scans import QrScans
from services.intake.settings import IntakeSettings
from services.intake.station_guard import StationGuard, run_sweeper
from services.intake.submission import Submissions
from services.intake.tracking import Tracking
from services.intake.withdrawal import Withdrawals


@dataclass(repr=False)
class Intake(RunningService):
    """The running service: its settings, its runtime and every part built on them."""

    settings: IntakeSettings
    consumer: Consumer
    """The ``intake`` consumer (directory and case events); runs only in the background."""
    vault: PersonalDataVault
    directory: Directory
    taxonomy: TaxonomySource
    submissions: Submissions
    tracking: Tracking
    feedback: Feedback
    withdrawals: Withdrawals
    scans: QrScans
    """QR page views counted, their totals recorded as events (扫码量)."""
    submit_limiter: SharedRateLimiter
    """Public submissions per client address (QR, online, feedback, withdrawal), shared
    by every replica."""
    read_limiter: SharedRateLimiter
    """Public reads per client address (tracking, stations, QR codes, Open311 GETs)."""
    open311_limiter: SharedRateLimiter
    """Open311 service requests per client ``api_key`` (in its district), shared by every
    replica."""
    guard: StationGuard
    """Stations' shared submission limits and the QR form's proof-of-work."""


def build(settings: IntakeSettings, runtime: Runtime) -> Intake:
    """Every part of intake, on an open runtime."""
    pool, store, clock = runtime.pool, runtime.store, runtime.clock
    directory = Directory(pool, cache_seconds=settings.directory_cache_seconds)
    taxonomy = TaxonomySource(pool, cache_seconds=settings.directory_cache_seconds)
    vault = PersonalDataVault(pool, settings.privacy_keys(), settings.privacy_lookup_keys())
    return Intake(
        settings=settings,
        runtime=runtime,
        consumer=intake_consumer(settings, pool),
        vault=vault,
        directory=directory,
        taxonomy=taxonomy,
        submissions=Submissions(
            pool=pool,
            store=store,
            vault=vault,
            directory=directory,
            public_base_url=settings.public_base_url,
            clock=clock,
            texts=TextKeys(settings.privacy_keys()),
        ),
        tracking=Tracking(pool=pool, directory=directory, taxonomy=taxonomy),
        feedback=Feedback(
            pool=pool, store=store, clock=clock, texts=TextKeys(settings.privacy_keys())
        ),
        withdrawals=Withdrawals(
            pool=pool, store=store, clock=clock, texts=TextKeys(settings.privacy_keys())
        ),
        scans=QrScans(pool, store, clock),
        submit_limiter=_limiter("submit", settings, runtime),
        read_limiter=_limiter("read", settings, runtime),
        open311_limiter=_limiter("open311", settings, runtime),
        guard=StationGuard(pool, settings, clock),
    )


def _limiter(name: str, settings: IntakeSettings, runtime: Runtime) -> SharedRateLimiter:
    per_minute, burst = {
        "submit": (settings.rate_submit_per_minute, settings.rate_submit_burst),
        "read": (settings.rate_read_per_minute, settings.rate_read_burst),
        "open311": (settings.rate_open311_per_minute, settings.rate_open311_burst),
    }[name]
    return SharedRateLimiter(
        name,
        per_minute,
        burst,
        pool=runtime.pool,
        hash_secret=settings.intake_hash_secret,
        previous_secrets=settings.intake_hash_secrets[1:],
        clock=runtime.clock,
        timeout=settings.rate_check_timeout,
    )


@asynccontextmanager
async def bootstrap(
    settings: IntakeSettings | None = None,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Clock = utc_now,
    background: bool = True,
) -> AsyncIterator[Intake]:
    """Intake, running until the ``async with`` ends.

    ``pool``: an open pool to use (else one of its own, closed on exit); ``clock``: the
    time every decision is given; ``background=False`` leaves Kafka alone (the CLI, and
    tests that apply events themselves).
    """
    settings = settings or IntakeSettings()
    async with open_runtime(settings, pool=pool, clock=clock) as runtime:
        intake = build(settings, runtime)
        if background:
            runtime.start_consumers([intake.consumer])
            interval = settings.intake_scan_record_interval
            if interval > 0:
                runtime.start(
                    "qr scans recorder", lambda stop: intake.scans.run(stop, interval=interval)
                )
            if settings.rate_sweep_interval > 0:
                runtime.start(
                    "rate limit sweeper",
                    lambda stop: run_sweeper(
                        stop,
                        pool=runtime.pool,
                        clock=runtime.clock,
                        guard=intake.guard,
                        limiters=(
                            intake.submit_limiter,
                            intake.read_limiter,
                            intake.open311_limiter,
                        ),
                        interval=settings.rate_sweep_interval,
                    ),
                )
        yield intake
