"""The workbench's tests: routing's app on the session's real PostgreSQL (a database of
the module's own), the demo district, staff accounts, and opinions as intake sends them
(with the resident's contact sealed as intake seals it)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from contracts import Actor, ActorRole, Location, OpinionSubmitted
from contracts.intake import SubmitterRef
from eventkit.auth import issue_token
from eventkit.db import create_pool
from eventkit.identity import Role
from eventkit.privacy import PersonalDataVault
from eventkit.store import EventStore
from services.routing.app import create_app
from services.routing.bootstrap import Routing
from services.routing.classification import JiebaSegmenter
from services.routing.district_file import load_district_file
from services.routing.ids import case_id_for
from services.routing.settings import RoutingSettings
from tests.conftest import TEMPLATE, _with_db
from tests.every_district import every_district
from tests.routing.routing_support import ADMIN, DEMO_FILE, Clock, append_event

ADMIN_ID = "admin_demo"
AUDITOR_ID = "audit_01"
PASSWORD = "示范区-工作台-2026"
OTHERS: dict[str, tuple[str, Role]] = {
    ADMIN_ID: (ADMIN_ID, Role.DISTRICT_ADMIN),
    AUDITOR_ID: (AUDITOR_ID, Role.AUDITOR),
}
"""People of roles the directory does not list: known by their accounts."""


@pytest.fixture(scope="session")
def segmenter() -> JiebaSegmenter:
    words = JiebaSegmenter()
    words.load()
    return words


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_database(pg_admin_url: str) -> AsyncIterator[str]:
    """A migrated database of this module's own."""
    name = "w_" + uuid.uuid4().hex[:16]
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await conn.close()
    yield _with_db(pg_admin_url, name)
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


def workbench_settings(database_url: str, kafka_bootstrap: str) -> RoutingSettings:
    """Routing without its consumer and scanner, with a cheap password hash."""
    return RoutingSettings(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        routing_consume=False,
        routing_scan_interval=0,
        routing_argon2_time_cost=1,
        routing_argon2_memory_kib=64,
    )


@dataclass
class Bench:
    """The routing app with the demo district, and ways to act as intake and as staff."""

    app: FastAPI
    settings: RoutingSettings
    clock: Clock
    client: httpx.AsyncClient
    intake: EventStore
    """The store as intake writes to it (its own role)."""

    @property
    def routing(self) -> Routing:
        routing: Routing = self.app.state.routing
        return routing

    async def open_case(
        self,
        text: str,
        *,
        phone: str | None = None,
        tracking_code: str | None = None,
        **where: Any,
    ) -> str:
        """An opinion submitted as intake does (the contact sealed, consent given, the
        tracking code's keyed hash recorded), and the case routing opens from it."""
        store = self.intake
        submitter = None
        tracking_ref = None
        if tracking_code is not None:
            async with every_district(store.pool).acquire() as conn:
                tracking_ref = await PersonalDataVault(store.pool).tracking_ref(
                    tracking_code, conn=conn
                )
        if phone is not None:
            vault = PersonalDataVault(store.pool)
            async with every_district(store.pool).acquire() as conn:
                sealed = await vault.seal(
                    "demo", {"name": "陈阿姨", "phone": phone}, identifier=phone, conn=conn
                )
            submitter = SubmitterRef(
                subject_id=sealed.subject_id,
                name_ciphertext=sealed.values["name"],
                phone_ciphertext=sealed.values["phone"],
                contact_consent=True,
            )
        opinion = OpinionSubmitted(
            district_id="demo",
            occurred_at=self.clock.now,
            actor=Actor(id="subj_" + uuid.uuid4().hex[:8], role=ActorRole.RESIDENT),
            opinion_id="op_" + uuid.uuid4().hex[:12],
            channel=where.pop("channel", "qr"),
            text=text,
            location=Location(**where),
            submitter=submitter,
            tracking_ref=tracking_ref,
        )
        envelope = await append_event(store, opinion)
        await self.routing.consumer.apply(envelope)
        return case_id_for("demo", opinion.opinion_id)

    def bearer(self, role: Role, subject: str, district: str = "demo") -> dict[str, str]:
        token = issue_token(self.settings, role=role, district_id=district, subject=subject)
        return {"Authorization": f"Bearer {token}"}

    async def account(self, person: str, role: Role | None = None) -> None:
        """An account with :data:`PASSWORD` (invited, then set up)."""
        invitation = await self.routing.accounts.invite("demo", person, role, ADMIN)
        await self.routing.accounts.accept_invitation(invitation.code, PASSWORD, PASSWORD)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bench(
    module_database: str, kafka_bootstrap: str, segmenter: JiebaSegmenter
) -> AsyncIterator[Bench]:
    """The app serving the demo district, with accounts for its admin and auditor."""
    settings = workbench_settings(module_database, kafka_bootstrap)
    clock = Clock()
    pool = await create_pool(module_database, role=settings.database_role, max_size=8)
    intake_pool = await create_pool(module_database, role="minqing_intake", max_size=2)
    app = create_app(settings, clock=clock, segmenter=segmenter, pool=pool)
    try:
        async with app.router.lifespan_context(app):
            routing: Routing = app.state.routing
            await routing.directory.change("demo", load_district_file(DEMO_FILE), ADMIN)
            bench = Bench(app, settings, clock, httpx.AsyncClient(), EventStore(intake_pool))
            for person, role in OTHERS.values():
                await bench.account(person, role)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
                bench.client = client
                yield bench
    finally:
        await pool.close()
        await intake_pool.close()
