"""A database that goes away: every service answers 503 with ``Retry-After``, never 500,
and serves again once the database is back.

A PostgreSQL of this test's own is stopped under a running service (the session's
server is shared by the other tests and stays up).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from eventkit.auth import issue_token
from eventkit.db import migrate
from eventkit.identity import Role
from eventkit.local import EmbeddedPostgres
from eventkit.loop import run as run_loop
from eventkit.settings import Settings
from minqing.system import migration_packages
from services.intake.app import create_app as create_intake_app
from services.intake.settings import IntakeSettings
from services.routing.app import create_app as create_routing_app
from services.routing.settings import RoutingSettings


@pytest.fixture
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of this test's own, migrated; stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="minqing-down-"))
    server = EmbeddedPostgres(folder / "pg")
    try:
        url = server.start()
        run_loop(migrate(url, migration_packages()))
        yield server, url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def routing_app(settings: Settings) -> FastAPI:
    quiet = RoutingSettings(**settings.model_dump(), routing_consume=False, routing_scan_interval=0)
    return create_routing_app(quiet)


def intake_app(settings: Settings) -> FastAPI:
    return create_intake_app(IntakeSettings(**settings.model_dump()), background=False)


SERVICES: dict[str, tuple[Callable[[Settings], FastAPI], str, int]] = {
    # A route that asks the database, and what it answers on an empty one.
    # (its API asks who the token's person is first: the workbench's sign-in page asks
    # the database for the districts without that)
    "routing": (routing_app, "/workbench/login", 200),
    "intake": (intake_app, "/api/v1/track/ABCDEFGH2345", 404),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_a_stopped_database_answers_503_with_retry_after_and_recovers(
    service: str, own_postgres: tuple[EmbeddedPostgres, str], kafka_bootstrap: str
) -> None:
    server, url = own_postgres
    settings = Settings(database_url=url, kafka_bootstrap=kafka_bootstrap, database_pool_max=2)
    make_app, path, usual = SERVICES[service]
    app = make_app(settings)
    token = issue_token(settings, role=Role.DISTRICT_ADMIN, district_id="demo", subject="a1")
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://svc") as client,
    ):
        before = await client.get(path, headers=headers)
        assert before.status_code == usual, before.text
        assert (await client.get("/readyz")).status_code == 200

        server.stop()
        down = await client.get(path, headers=headers)
        ready = await client.get("/readyz")

        assert down.status_code == 503, down.text
        assert int(down.headers["retry-after"]) > 0
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["title_en"].startswith("The service is temporarily unavailable")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] is False

        server.start()
        # The pool's connections died with the server: the first requests after the
        # restart may still meet them (503 again), until each is replaced by a new one.
        for _ in range(settings.database_pool_max + 1):
            again = await client.get(path, headers=headers)
            if again.status_code != 503:
                break
        assert again.status_code == usual, again.text
