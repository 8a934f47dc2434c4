"""The demo district as routing would describe it (deploy/districts/demo.yaml: departments,
people, spokespersons, months of activities), plus a few October cases at 东湖街道人大代表
之家 with a suggestion answered, a resident's rating overtaken by a callback, and the
station's QR scans: stored and projected like the March history."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg

from contracts import (
    Actor,
    ActorRole,
    CallbackRecorded,
    QrScansRecorded,
    SuggestionAnswered,
)
from eventkit.db import create_pool
from eventkit.settings import Settings
from eventkit.store import EventStore
from services.reporting.bootstrap import bootstrap
from services.reporting.settings import ReportingSettings
from services.routing.directory_plan import plan_changes
from services.routing.district_file import DistrictFile, load_district_file
from tests.conftest import TEMPLATE
from tests.reporting.conftest import Loaded, _with_db, fixed_clock, project
from tests.reporting.history import ADMIN, History, interleaved, local, store_history
from tests.routing.routing_support import DEMO_FILE

NOW = local(12, 1, 10)
"""When the liaison tests look: every event of the history is past."""

INTAKE = Actor(id="intake", role=ActorRole.SYSTEM)
LIAISON = Actor(id="lo_dh_01", role=ActorRole.LIAISON)


def demo_file() -> DistrictFile:
    return load_district_file(DEMO_FILE)


def liaison_history() -> History:
    """The demo directory recorded on 1 July 2026, and October's cases at dh_home."""
    h = History()
    start = local(7, 1)
    plan = plan_changes(
        None, demo_file(), district_id="demo", actor=ADMIN, now=start, today=date(2026, 7, 1)
    )
    for i, event in enumerate(plan.events):
        h.add(start + timedelta(seconds=i), event)

    home = {"station": "dh_home", "community": "东湖社区", "street": "dh"}
    # L1: rated 2 by the resident, then 5 on a callback a day later: counts satisfied.
    l1 = h.case("L1", local(10, 9), category="property", representative="r001", **home)
    l1.accept(local(10, 9, 10)).resolve(local(10, 12)).rate(local(10, 13), 2)
    l1.event(
        local(10, 14),
        CallbackRecorded,
        actor=LIAISON,
        resolution_seq=1,
        satisfaction=5,
        resolved=True,
        comment="居民说已经修好了",
    )
    # L2: rated 5 by the resident; L4: resolved, not rated.
    l2 = h.case("L2", local(10, 10), category="property", representative="r012", **home)
    l2.accept(local(10, 10, 10)).resolve(local(10, 11)).rate(local(10, 12), 5)
    h.case("L4", local(10, 20), category="municipal", representative="r012", **home).accept(
        local(10, 20, 10)
    ).resolve(local(10, 22))
    # L3: a suggestion, answered within its 90 days.
    l3 = h.case("L3", local(10, 15), category="traffic", representative="r001", **home)
    l3.accept(local(10, 15, 10)).convert(local(10, 16), "r001", "关于优化东湖路公交站点的建议")
    l3.event(
        local(11, 20),
        SuggestionAnswered,
        answer="已纳入明年公交线网优化方案",
        answered_by="区交通运输局",
    )
    # The QR page of dh_home: two records of 10 October (the later one holds the day's
    # totals) and one of 11 October.
    for at, day, scans, opinions in (
        (local(10, 10, 12), 10, 30, 2),
        (local(10, 10, 23), 10, 45, 3),
        (local(10, 11, 23), 11, 10, 0),
    ):
        h.add(
            at,
            QrScansRecorded(
                district_id="demo",
                occurred_at=at,
                actor=INTAKE,
                station_code="dh_home",
                day=date(2026, 10, day),
                scans=scans,
                opinions=opinions,
            ),
        )
    return h


@contextlib.asynccontextmanager
async def loaded_liaison(pg_admin_url: str) -> AsyncIterator[Loaded]:
    """The liaison history in a database of its own, projected by the live consumer."""
    name = "l_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    url = _with_db(pg_admin_url, name)
    settings = ReportingSettings(
        database_url=url,
        kafka_bootstrap="127.0.0.1:9",
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        reporting_consume=False,
    )
    pool = await create_pool(url, role=settings.database_role, max_size=8)
    writer = await create_pool(url, role=Settings().database_role, max_size=4)
    try:
        store = EventStore(writer)
        async with bootstrap(settings, pool=pool, clock=fixed_clock(NOW), background=False) as svc:
            events = await store_history(store, url, liaison_history().ordered())
            await project(svc, interleaved(events, seed=3))
            yield Loaded(url, settings, pool, store, svc, events)
    finally:
        await writer.close()
        await pool.close()
        admin = await asyncpg.connect(pg_admin_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
