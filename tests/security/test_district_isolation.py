"""District isolation in the database for the event store, the residents' keys and intake
(issue 14, part 1), and the catalogue check over every service's schema.

Two districts' data go in through intake as it runs in production (its own role,
``minqing_intake``): directory events, staff submissions with a resident's contact and an
idempotency key, case progress, feedback, QR page views. Then, as each service's role,
a query that declares no district sees nothing, one scoped to a district sees exactly
that district's rows, and a row of another district cannot be written. The figures
compared are counted by the superuser (the owner, not subject to the policies), never
written into the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from contracts import Actor, ActorRole, OpinionSubmitted
from contracts.envelope import Envelope
from eventkit.audit.verification import verify_store
from eventkit.db import ALL_DISTRICTS, create_pool, district_transaction
from eventkit.identity import Role
from eventkit.settings import Settings
from eventkit.store import DistrictMismatchError, EventStore
from services.intake.app import create_app
from services.intake.bootstrap import Intake, bootstrap
from services.intake.feedback_rules import GiveFeedback
from services.intake.settings import IntakeSettings
from tests.intake.intake_support import (
    NAME,
    OTHER_DISTRICT,
    PHONE,
    case_events,
    directory_events,
    opinion_body,
    publish,
    token,
)

DISTRICTS = ("demo", OTHER_DISTRICT)
ROLES = ("minqing_intake", "minqing_routing", "minqing_notification", "minqing_reporting",
         "minqing_audit")  # fmt: skip
OWN_SCHEMAS = ("eventstore", "privacy", "intake")
"""The schemas whose isolation this file proves row by row; routing's, notification's and
reporting's are proved by ``test_district_isolation_services.py``."""

SEEDED = (
    "eventstore.events",
    "privacy.subject_keys",
    "intake.districts",
    "intake.stations",
    "intake.representatives",
    "intake.taxonomies",
    "intake.station_representatives",
    "intake.opinions",
    "intake.idempotency_keys",
    "intake.cases",
    "intake.case_steps",
    "intake.feedback",
    "intake.qr_scans",
)
"""Tables the seeding below fills in both districts: their checks cannot pass vacuously."""

NOT_YET_ISOLATED: dict[str, str] = {}
"""Tables holding a ``district_id`` that are knowingly left without row-level security,
each with the reason (printed when the check runs). Empty: every one is isolated."""

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "minqing_meta")

_DISTRICT_RELATIONS = """
SELECT n.nspname || '.' || c.relname AS name, c.relkind::text AS kind,
       c.relrowsecurity AS rls,
       coalesce('security_invoker=true' = ANY (c.reloptions), false) AS invoker,
       EXISTS (
           SELECT 1 FROM pg_policy p
            WHERE p.polrelid = c.oid AND p.polcmd = '*'
              AND 'minqing_runtime'::regrole = ANY (p.polroles)
              AND pg_get_expr(p.polqual, p.polrelid) LIKE '%in_scope(district_id)%'
              AND pg_get_expr(p.polwithcheck, p.polrelid) LIKE '%in_scope(district_id)%'
       ) AS policy
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm')
   AND NOT (n.nspname = ANY ($1::text[])) AND n.nspname NOT LIKE 'pg_temp%'
   AND EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'district_id' AND NOT a.attisdropped)
 ORDER BY 1
"""


async def unisolated(conn: asyncpg.Connection) -> dict[str, str]:
    """Every relation with a ``district_id`` column, in any schema of ours, that a service
    role could read across districts, and why: a table without row-level security or
    without the ``district_scope`` policy for ``minqing_runtime``, a view that runs with
    its owner's rights, a materialised view (which cannot have policies)."""
    found: dict[str, str] = {}
    for row in await conn.fetch(_DISTRICT_RELATIONS, list(SYSTEM_SCHEMAS)):
        if row["kind"] in ("r", "p"):
            if not row["rls"]:
                found[row["name"]] = "row-level security not enabled"
            elif not row["policy"]:
                found[row["name"]] = "no district_scope policy (in_scope(district_id)) for it"
        elif row["kind"] == "v" and not row["invoker"]:
            found[row["name"]] = "view without security_invoker: read with its owner's rights"
        elif row["kind"] == "m":
            found[row["name"]] = "materialised view: cannot have row-level security"
    return found


@dataclass
class Seeded:
    """What went in, per district: the opinion, its tracking code and its case."""

    opinions: dict[str, str]
    codes: dict[str, str]
    cases: dict[str, str]


@pytest.fixture
async def role_pools(database_url: str) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    """A pool per service role, as each service makes it (``SET ROLE`` after connecting)."""
    made = {role: await create_pool(database_url, role=role, max_size=4) for role in ROLES}
    try:
        yield made
    finally:
        for pool in made.values():
            await pool.close()


@pytest.fixture
def intake_settings(settings: Settings) -> IntakeSettings:
    return IntakeSettings(
        **{
            **settings.model_dump(),
            "rate_submit_per_minute": 10_000,
            "rate_submit_burst": 10_000,
            "rate_read_per_minute": 10_000,
            "rate_read_burst": 10_000,
        }
    )


@pytest.fixture
async def intake(
    intake_settings: IntakeSettings, role_pools: dict[str, asyncpg.Pool]
) -> AsyncIterator[Intake]:
    """Intake from its composition root on its own role's pool, without Kafka."""
    async with bootstrap(
        intake_settings, pool=role_pools["minqing_intake"], background=False
    ) as service:
        yield service


@pytest.fixture
async def client(
    intake_settings: IntakeSettings, role_pools: dict[str, asyncpg.Pool]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(intake_settings, pool=role_pools["minqing_intake"], background=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://intake.test"
        ) as http,
    ):
        yield http


@pytest.fixture
async def seeded(
    intake: Intake,
    client: httpx.AsyncClient,
    store: EventStore,
    intake_settings: IntakeSettings,
) -> Seeded:
    """Each district's directory, one resident's opinion taken by a liaison officer (with
    their contact and an idempotency key), its case resolved, the resident's rating, and
    views of the station's QR page recorded as events."""
    opinions: dict[str, str] = {}
    codes: dict[str, str] = {}
    cases: dict[str, str] = {}
    for district in DISTRICTS:
        # The directory is routing's to append (the test's store may append anything);
        # intake's consumer applies it as it would from Kafka.
        await publish(store, intake.consumer, directory_events(district))
    for district in DISTRICTS:
        response = await client.post(
            "/api/v1/opinions",
            json=opinion_body(
                channel="walk_in",
                district=district,
                text=f"{district}：小区东门的三盏路灯坏了三个多月，晚上老人出门很不方便。",
                contact={"name": NAME, "phone": PHONE},
                consent=True,
            ),
            headers={
                "Authorization": token(intake_settings, Role.LIAISON, district=district),
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        assert response.status_code == 201, response.text
        receipt = response.json()
        opinions[district] = receipt["opinion_id"]
        codes[district] = receipt["tracking_code"]
        cases[district] = f"c_{district}_{uuid.uuid4().hex[:8]}"
        events = case_events(cases[district], opinions[district], district=district)
        await publish(
            store,
            intake.consumer,
            [events[name] for name in ("opened", "assigned", "accepted", "replied", "resolved")],
        )
        await intake.feedback.give(codes[district], GiveFeedback(5, True, "路灯修好了"))
        await intake.scans.count(district, "zgc_home")
    assert await intake.scans.record() == len(DISTRICTS)
    return Seeded(opinions, codes, cases)


async def district_tables(admin: asyncpg.Connection, schemas: tuple[str, ...]) -> list[str]:
    """The tables of ``schemas`` with a ``district_id`` column."""
    rows = await admin.fetch(
        """
        SELECT table_schema || '.' || table_name AS name FROM information_schema.columns
         WHERE column_name = 'district_id' AND table_schema = ANY ($1::text[])
           AND (table_schema, table_name) IN (
               SELECT table_schema, table_name FROM information_schema.tables
                WHERE table_type = 'BASE TABLE')
         ORDER BY 1
        """,
        list(schemas),
    )
    return [r["name"] for r in rows]


async def readable_by(admin: asyncpg.Connection, role: str) -> list[str]:
    """The district tables of the schemas proved here that ``role`` may read at all."""
    return [
        table
        for table in await district_tables(admin, OWN_SCHEMAS)
        if await admin.fetchval("SELECT has_table_privilege($1, $2, 'SELECT')", role, table)
    ]


async def counts_by_district(admin: asyncpg.Connection, table: str) -> dict[str, int]:
    rows = await admin.fetch(f"SELECT district_id, count(*) AS n FROM {table} GROUP BY 1")
    return {r["district_id"]: int(r["n"]) for r in rows}


async def test_the_seeded_tables_hold_rows_of_both_districts(
    seeded: Seeded, admin: asyncpg.Connection
) -> None:
    tables = await district_tables(admin, OWN_SCHEMAS)
    assert set(SEEDED) <= set(tables)
    for table in SEEDED:
        counts = await counts_by_district(admin, table)
        assert all(counts.get(d, 0) > 0 for d in DISTRICTS), (table, counts)


@pytest.mark.parametrize("role", ROLES)
async def test_a_role_that_declares_no_district_sees_no_row(
    role: str,
    seeded: Seeded,
    admin: asyncpg.Connection,
    role_pools: dict[str, asyncpg.Pool],
) -> None:
    pool = role_pools[role]
    tables = await readable_by(admin, role)
    assert set(SEEDED) <= set(tables)  # rows there to be hidden
    for table in tables:
        # A query that forgot its district, as a bug would write it.
        async with pool.acquire() as conn:
            assert await conn.fetch(f"SELECT * FROM {table}") == [], table
        # And in a transaction that declared nothing either.
        async with pool.acquire() as conn, conn.transaction():
            assert await conn.fetch(f"SELECT * FROM {table}") == [], table


@pytest.mark.parametrize("role", ROLES)
async def test_a_role_scoped_to_a_district_sees_exactly_that_districts_rows(
    role: str,
    seeded: Seeded,
    admin: asyncpg.Connection,
    role_pools: dict[str, asyncpg.Pool],
) -> None:
    pool = role_pools[role]
    for table in await readable_by(admin, role):
        expected = await counts_by_district(admin, table)
        for district in DISTRICTS:
            async with district_transaction(pool, district) as conn:
                rows = await conn.fetch(f"SELECT district_id FROM {table}")
            assert {r["district_id"] for r in rows} <= {district}, table
            assert len(rows) == expected.get(district, 0), (table, district)
        async with district_transaction(pool, ALL_DISTRICTS) as conn:
            everything = await conn.fetchval(f"SELECT count(*) FROM {table}")
        assert everything == sum(expected.values()), table


async def execute_in(pool: asyncpg.Pool, district: str, query: str, *args: object) -> str:
    """``query`` in a transaction scoped to ``district``; its status."""
    async with district_transaction(pool, district) as conn:
        return str(await conn.execute(query, *args))


async def append_in(store: EventStore, district: str, event: OpinionSubmitted) -> None:
    """Append ``event`` in a transaction scoped to ``district``, as a service would."""
    async with district_transaction(store.pool, district) as conn:
        await store.append(event.stream_id, [Envelope.wrap(event)], conn=conn)


async def test_a_row_of_another_district_cannot_be_written_or_changed(
    seeded: Seeded, admin: asyncpg.Connection, role_pools: dict[str, asyncpg.Pool]
) -> None:
    pool = role_pools["minqing_intake"]
    other = seeded.opinions[OTHER_DISTRICT]
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await execute_in(
            pool,
            "demo",
            "INSERT INTO intake.opinions (opinion_id, district_id, tracking_code, channel, "
            "text, submitted_at) VALUES ($1, $2, $3, 'online', '越界', now())",
            f"op_{uuid.uuid4().hex[:12]}",
            OTHER_DISTRICT,
            uuid.uuid4().hex[:12].upper(),
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await execute_in(
            pool,
            "demo",
            "INSERT INTO privacy.subject_keys (subject_id, district_id, key) VALUES ($1, $2, $3)",
            f"subj_{uuid.uuid4().hex[:12]}",
            OTHER_DISTRICT,
            bytes(32),
        )
    # Another district's rows are not there to change, nor to move into this one.
    changed = await execute_in(
        pool,
        "demo",
        "UPDATE intake.opinions SET text = '改写', district_id = 'demo' WHERE opinion_id = $1",
        other,
    )
    assert changed == "UPDATE 0"
    row = await admin.fetchrow(
        "SELECT district_id, text FROM intake.opinions WHERE opinion_id = $1", other
    )
    assert row is not None
    assert row["district_id"] == OTHER_DISTRICT
    assert row["text"] != "改写"


async def test_the_store_refuses_an_event_outside_the_transactions_district(
    seeded: Seeded, role_pools: dict[str, asyncpg.Pool]
) -> None:
    store = EventStore(role_pools["minqing_intake"])

    def opinion(district: str, opinion_id: str) -> OpinionSubmitted:
        return OpinionSubmitted(
            district_id=district,
            occurred_at=datetime.now(UTC),
            actor=Actor(id="lo-1", role=ActorRole.LIAISON),
            opinion_id=opinion_id,
            channel="walk_in",
            text="越界的意见",
        )

    # An event of another district, in a transaction scoped to this one.
    fresh = f"op_{uuid.uuid4().hex[:12]}"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await append_in(store, "demo", opinion(OTHER_DISTRICT, fresh))
    # An event of this district on a stream of another, which this scope cannot see: still
    # the store's refusal, not taken for a new stream.
    taken = seeded.opinions[OTHER_DISTRICT]
    before = await store.read_stream(f"opinion-{taken}")
    with pytest.raises(DistrictMismatchError):
        await append_in(store, "demo", opinion("demo", taken))
    assert not await store.stream_exists(f"opinion-{fresh}")
    assert await store.read_stream(f"opinion-{taken}") == before
    assert {e.district_id for e in before} == {OTHER_DISTRICT}


async def test_intake_finds_its_rows_because_it_declares_its_district(
    seeded: Seeded, client: httpx.AsyncClient, intake_settings: IntakeSettings
) -> None:
    for district in DISTRICTS:
        # The resident's code: looked up in every district, then read in its own.
        tracked = await client.get(f"/api/v1/track/{seeded.codes[district]}")
        assert tracked.status_code == 200, tracked.text
        assert tracked.json()["opinion_id"] == seeded.opinions[district]
        assert tracked.json()["district"] == district
        assert tracked.json()["case_id"] == seeded.cases[district]
        # Staff read their own district's opinion; another district's is not found.
        for reader in DISTRICTS:
            answer = await client.get(
                f"/api/v1/opinions/{seeded.opinions[district]}",
                headers={"Authorization": token(intake_settings, Role.LIAISON, district=reader)},
            )
            assert answer.status_code == (200 if reader == district else 404), answer.text
            if reader == district:
                assert answer.json()["contact"]["phone"] == PHONE


async def test_the_relay_and_the_audit_read_every_district_because_they_say_so(
    seeded: Seeded, admin: asyncpg.Connection, role_pools: dict[str, asyncpg.Pool]
) -> None:
    expected = await counts_by_district(admin, "eventstore.events")
    store = EventStore(role_pools["minqing_audit"])
    everything = await store.read_all(limit=10_000)
    assert len(everything) == sum(expected.values())
    for district in DISTRICTS:
        assert len(await store.read_all(limit=10_000, district_id=district)) == expected[district]
    async with role_pools["minqing_audit"].acquire() as conn:
        report = await verify_store(conn)
    assert report.districts == set(DISTRICTS)
    assert report.findings == []
    assert report.events == sum(expected.values())


async def test_every_table_holding_a_districts_data_has_row_level_security(
    admin: asyncpg.Connection,
) -> None:
    found = await unisolated(admin)
    for name, reason in sorted(NOT_YET_ISOLATED.items()):
        print(f"not isolated yet, knowingly: {name}: {reason}")
    unexpected = {name: why for name, why in found.items() if name not in NOT_YET_ISOLATED}
    assert unexpected == {}, "tables holding a district's data without isolation"
    tables = await district_tables(admin, ("eventstore", "privacy", "intake"))
    assert "eventstore.events" in tables
    assert "intake.opinions" in tables


async def test_a_table_added_later_without_row_level_security_is_caught(
    admin: asyncpg.Connection,
) -> None:
    await admin.execute("CREATE TABLE intake.later_added (district_id text, note text)")
    await admin.execute(
        "CREATE TABLE intake.later_with_rls (district_id text); "
        "ALTER TABLE intake.later_with_rls ENABLE ROW LEVEL SECURITY"
    )
    await admin.execute("CREATE VIEW intake.later_view AS SELECT district_id FROM intake.opinions")
    found = await unisolated(admin)
    assert found["intake.later_added"] == "row-level security not enabled"
    assert found["intake.later_with_rls"].startswith("no district_scope policy")
    assert found["intake.later_view"].startswith("view without security_invoker")
