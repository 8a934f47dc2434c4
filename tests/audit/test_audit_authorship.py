"""Authorship in the database: each service's role appends only to the stream categories
it owns; every other append is refused, however it is attempted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from contracts.topics import SERVICE_BY_CATEGORY
from eventkit.audit.settings import AuditSettings
from eventkit.db import Conn, create_pool
from eventkit.settings import Settings
from eventkit.store import AuthorshipError, EventStore
from services.intake.settings import IntakeSettings
from services.notification.settings import NotificationSettings
from services.routing.settings import RoutingSettings
from tests.helpers import envelope

OWNED: dict[str, set[str]] = {
    "minqing_intake": {"opinion", "qrscans"},
    "minqing_routing": {"case", "district", "station", "representative", "staff"},
    "minqing_notification": {"notification"},
    "minqing_audit": {"audit"},
    "minqing_reporting": set(),
}
CATEGORIES = sorted(SERVICE_BY_CATEGORY)


@pytest.fixture
async def role_pools(settings: Settings) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    """A pool per service role, as each service makes it (``SET ROLE`` after connecting)."""
    assert settings.database_url
    pools = {
        role: await create_pool(settings.database_url, role=role, max_size=1) for role in OWNED
    }
    try:
        yield pools
    finally:
        for pool in pools.values():
            await pool.close()


@pytest.mark.parametrize("role", sorted(OWNED))
async def test_a_service_role_appends_to_its_own_categories_and_no_other(
    role: str, role_pools: dict[str, asyncpg.Pool], conn: Conn
) -> None:
    store = EventStore(role_pools[role])
    for category in CATEGORIES:
        stream = f"{category}-{uuid.uuid4().hex[:10]}"
        if category in OWNED[role]:
            result = await store.append(stream, [envelope(stream)])
            assert result.stream_version == 1
        else:
            with pytest.raises(AuthorshipError, match=f"{role} may not append to {category}"):
                await store.append(stream, [envelope(stream)])
            assert not await store.stream_exists(stream)
    stored = await conn.fetch("SELECT DISTINCT category FROM eventstore.events")
    assert {r["category"] for r in stored} == OWNED[role]


async def test_a_plain_insert_cannot_go_around_the_check(
    role_pools: dict[str, asyncpg.Pool],
) -> None:
    with pytest.raises(asyncpg.PostgresError, match="may not append") as raised:
        await role_pools["minqing_intake"].execute(
            """INSERT INTO eventstore.events (district_id, category, stream_id, stream_version,
               event_id, event_type, schema_version, data, occurred_at, prev_hash, hash)
               VALUES ('demo', 'opinion', 'case-forged', 1, gen_random_uuid(), 'CaseClosed', 1,
                       '{}', now(), '', '')"""
        )
    assert raised.value.sqlstate == "MQ007"


async def test_a_service_role_cannot_give_itself_more_rights(
    role_pools: dict[str, asyncpg.Pool],
) -> None:
    async with role_pools["minqing_intake"].acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO eventstore.authors (role_name, category) "
                "VALUES ('minqing_intake', 'case')"
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE eventstore.events DISABLE TRIGGER USER")


async def test_the_service_roles_inherit_the_runtime_role_but_may_not_become_it(
    conn: Conn,
) -> None:
    rows = await conn.fetch(
        """SELECT u.rolname, m.inherit_option, m.set_option
             FROM pg_auth_members m
             JOIN pg_roles r ON r.oid = m.roleid
             JOIN pg_roles u ON u.oid = m.member
            WHERE r.rolname = 'minqing_runtime'"""
    )
    memberships = {r["rolname"]: (r["inherit_option"], r["set_option"]) for r in rows}
    for role in OWNED:
        assert memberships[role] == (True, False), role


async def test_the_database_holds_the_owners_the_contracts_name(conn: Conn) -> None:
    rows = await conn.fetch("SELECT role_name, category FROM eventstore.authors")
    expected = {(f"minqing_{service}", c) for c, service in SERVICE_BY_CATEGORY.items()}
    assert {(r["role_name"], r["category"]) for r in rows} == expected | {("minqing_runtime", "*")}


def test_each_writer_runs_as_its_own_role_by_default() -> None:
    assert IntakeSettings().database_role == "minqing_intake"
    assert RoutingSettings().database_role == "minqing_routing"
    assert NotificationSettings().database_role == "minqing_notification"
    assert AuditSettings().database_role == "minqing_audit"
