"""The composition root: the one place the reporting service is wired.

:func:`bootstrap` opens the runtime (pool, store, clock), builds every part on it, and,
unless told otherwise, starts the consumer that keeps the projections live. The HTTP app
(``app.py``), the CLI (``cli.py``), the benchmark and the tests all get their
:class:`Reporting` from here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from eventkit.clock import Clock, utc_now
from eventkit.consumer import Consumer
from eventkit.http import ReadyCheck
from eventkit.service import RunningService, Runtime, open_runtime
from eventkit.settings import Settings
from services.reporting.consumers import build_consumer
from services.reporting.projection import Projector, live_slots
from services.reporting.rebuild import Rebuild
from services.reporting.reports import MonthlyReports
from services.reporting.settings import ReportingSettings


@dataclass(repr=False)
class Reporting(RunningService):
    """The running reporting service: every part an entry point needs."""

    settings: ReportingSettings
    projector: Projector
    consumer: Consumer
    rebuild: Rebuild
    reports: MonthlyReports

    def ready_checks(self) -> dict[str, ReadyCheck]:
        """What ``/readyz`` checks: the runtime's, and that the projections are there."""

        async def projections() -> bool:
            async with self.pool.acquire() as conn:
                return len(await live_slots(conn)) > 0

        return {**self.runtime.ready_checks(), "projections": projections}


def build(settings: ReportingSettings, runtime: Runtime) -> Reporting:
    """Every part of reporting on an open runtime (no I/O)."""
    projector = Projector(runtime.store)
    return Reporting(
        settings=settings,
        runtime=runtime,
        projector=projector,
        consumer=build_consumer(settings, runtime.pool, projector),
        rebuild=Rebuild(
            runtime.store,
            runtime.clock,
            batch=settings.reporting_rebuild_batch,
            workers=settings.reporting_rebuild_workers,
            settings=settings,
        ),
        reports=MonthlyReports(runtime.pool, runtime.clock),
    )


def reporting_settings(settings: Settings | None) -> ReportingSettings:
    """``settings`` as the reporting service's (the environment's by default)."""
    if isinstance(settings, ReportingSettings):
        return settings
    return ReportingSettings(**(settings.model_dump() if settings else {}))


@contextlib.asynccontextmanager
async def bootstrap(
    settings: Settings | None = None,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Clock = utc_now,
    background: bool = True,
) -> AsyncIterator[Reporting]:
    """The reporting service, running until the ``async with`` ends.

    With ``background`` false nothing runs on its own (no consumer): for the CLI, the
    benchmark and the tests that drive the parts themselves.
    """
    own = reporting_settings(settings)
    async with open_runtime(own, pool=pool, clock=clock) as runtime:
        reporting = build(own, runtime)
        if background and own.reporting_consume:
            runtime.start_consumers([reporting.consumer])
        yield reporting
