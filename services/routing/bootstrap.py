"""The composition root: the one place the routing service is wired.

:func:`bootstrap` opens the runtime (pool, store, clock), builds every part on it, and,
unless told otherwise, imports the district files the settings name (before any opinion
is consumed, so none arrives for a district not yet known), trains the first classifier
of the districts the settings name, starts the Kafka consumer and
runs the overdue scanner in the background. The HTTP app (``app.py``), the CLI
(``cli.py``), the benchmarks and the tests all get their :class:`Routing` from here,
passing their own pool, clock or segmenter when they need to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from contracts.base import Actor, ActorRole
from eventkit.clock import Clock, utc_now
from eventkit.http import ReadyCheck
from eventkit.logging import get_logger
from eventkit.privacy import PersonalDataVault
from eventkit.refusals import Refusal
from eventkit.sealed_texts import TextKeys
from eventkit.service import RunningService, Runtime, open_runtime
from eventkit.settings import Settings
from services.routing.case_store import CaseStore
from services.routing.casework import CaseWork
from services.routing.classification import JiebaSegmenter, Segmenter
from services.routing.consumers import RoutingConsumer, build_consumer
from services.routing.directory_admin import DirectoryAdmin
from services.routing.district_context import DistrictContexts
from services.routing.evaluation import ExamplesError
from services.routing.liaison_admin import LiaisonAdmin
from services.routing.opening import CaseOpening
from services.routing.overdue import OverdueScanner
from services.routing.reactions import Reactions
from services.routing.settings import RoutingSettings
from services.routing.staff_accounts import StaffAccounts
from services.routing.staff_work import StaffWork
from services.routing.training import ClassifierTraining

log = get_logger(__name__)

STARTUP = Actor(id="routing-startup", role=ActorRole.SYSTEM)
"""Who imports the district files at start-up."""


@dataclass(repr=False)
class Routing(RunningService):
    """The running routing service: every part an entry point needs."""

    settings: RoutingSettings
    segmenter: Segmenter
    districts: DistrictContexts
    cases: CaseStore
    opening: CaseOpening
    casework: CaseWork
    reactions: Reactions
    directory: DirectoryAdmin
    training: ClassifierTraining
    overdue: OverdueScanner
    consumer: RoutingConsumer
    accounts: StaffAccounts
    staff: StaffWork
    liaison: LiaisonAdmin
    """Reception days, activities, rosters: the liaison work's directory changes."""
    """Case work kept to the signed-in person's scope (the API and the workbench)."""

    def ready_checks(self) -> dict[str, ReadyCheck]:
        """What ``/readyz`` checks: the runtime's, and jieba's dictionary."""

        async def dictionary() -> bool:
            return not isinstance(self.segmenter, JiebaSegmenter) or self.segmenter.loaded

        return {**self.runtime.ready_checks(), "dictionary": dictionary}


def build(settings: RoutingSettings, runtime: Runtime, segmenter: Segmenter) -> Routing:
    """Every part of routing on an open runtime (no I/O)."""
    pool, clock = runtime.pool, runtime.clock
    districts = DistrictContexts(segmenter)
    texts = TextKeys(settings.privacy_keys())
    cases = CaseStore(runtime.store, texts)
    casework = CaseWork(pool, cases, districts, clock)
    opening = CaseOpening(cases, districts, clock, texts)
    reactions = Reactions(cases, districts, casework, clock)
    directory = DirectoryAdmin(pool, runtime.store, clock)
    accounts = StaffAccounts(pool, runtime.store, districts, clock, settings)
    vault = PersonalDataVault(pool, settings.privacy_keys(), settings.privacy_lookup_keys())
    return Routing(
        settings=settings,
        runtime=runtime,
        segmenter=segmenter,
        districts=districts,
        cases=cases,
        opening=opening,
        casework=casework,
        reactions=reactions,
        directory=directory,
        training=ClassifierTraining(pool, runtime.store, districts, segmenter, clock),
        overdue=OverdueScanner(pool, cases, districts, clock),
        consumer=build_consumer(settings, pool, opening, reactions),
        accounts=accounts,
        staff=StaffWork(pool, runtime.store, cases, casework, districts, accounts, vault, clock),
        liaison=LiaisonAdmin(pool, directory, clock),
    )


async def _train_first_classifiers(routing: Routing, districts: list[str]) -> None:
    """Each listed district without a classifier gets its first one before any opinion
    is consumed; one that cannot (no labelled set, a worse model) keeps its keywords."""
    for district_id in districts:
        try:
            outcome = await routing.training.ensure_trained(district_id, STARTUP)
        except (Refusal, OSError, ExamplesError) as exc:
            log.warning("classifier not trained", district=district_id, reason=str(exc))
            continue
        if outcome is not None and outcome.published is None:
            log.warning("classifier not trained", district=district_id, reason=outcome.refused)


@contextlib.asynccontextmanager
async def bootstrap(
    settings: Settings | None = None,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Clock = utc_now,
    segmenter: Segmenter | None = None,
    background: bool = True,
) -> AsyncIterator[Routing]:
    """The routing service, running until the ``async with`` ends.

    ``settings`` default to the environment's; ``pool`` is used as given (and left open);
    ``segmenter`` defaults to jieba, loaded here. With ``background`` false nothing runs
    on its own (no start-up import, no consumer, no scanner): for the CLI, benchmarks and
    tests that drive the parts themselves.
    """
    routing_settings = (
        settings
        if isinstance(settings, RoutingSettings)
        else RoutingSettings(**(settings.model_dump() if settings else {}))
    )
    words = segmenter or JiebaSegmenter()
    if isinstance(words, JiebaSegmenter) and not words.loaded:
        await asyncio.to_thread(words.load)
    async with open_runtime(routing_settings, pool=pool, clock=clock) as runtime:
        routing = build(routing_settings, runtime, words)
        if background:
            await routing.directory.import_files(routing_settings.routing_district_files, STARTUP)
            await _train_first_classifiers(routing, routing_settings.routing_train_districts)
            if routing_settings.routing_consume:
                runtime.start_consumers([routing.consumer])
            interval = routing_settings.routing_scan_interval
            if interval > 0:
                batch = routing_settings.routing_scan_batch
                runtime.start(
                    "overdue scanner",
                    lambda stop: routing.overdue.run(stop, interval=interval, batch=batch),
                )
            planning = routing_settings.routing_reception_plan_interval
            if planning > 0:
                runtime.start(
                    "reception planner",
                    lambda stop: routing.liaison.run_planner(stop, interval=planning),
                )
        yield routing
