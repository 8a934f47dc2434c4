"""District isolation in the database for routing, notification and reporting (issue 14,
part 1): every table of their schemas holding a district's data has row-level security;
each service's own role sees nothing without a declared district and only that
district's rows with one; and the services still do their work in two districts end to
end, because their code declares the district it works for.

One database, the three services from their composition roots, each on a pool of its
own role (minqing_routing, minqing_notification, minqing_reporting), the opinions
appended as intake would. The figures compared are counted by the superuser (who is not
subject to the policies), never written into the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from contracts import Actor, ActorRole, Location, OpinionSubmitted
from contracts.envelope import Envelope
from contracts.intake import SubmitterRef
from eventkit.auth import issue_token
from eventkit.db import ALL_DISTRICTS, create_pool, district_transaction
from eventkit.identity import Principal, Role
from eventkit.local import free_port
from eventkit.privacy import PersonalDataVault
from eventkit.settings import Settings
from eventkit.store import EventStore, RecordedEvent
from minqing.sink import Sink
from minqing.system import DEMO_CONTACTS_FILE
from services.notification import contacts
from services.notification.bootstrap import Notification
from services.notification.bootstrap import bootstrap as notification_bootstrap
from services.notification.contact_book import parse_contact_file
from services.notification.settings import NotificationSettings
from services.reporting.app import create_app as reporting_app
from services.reporting.bootstrap import Reporting
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from services.routing.bootstrap import Routing
from services.routing.bootstrap import bootstrap as routing_bootstrap
from services.routing.case_state import CaseState, CaseStatus
from services.routing.classification import JiebaSegmenter
from services.routing.district_file import load_district_file, parse_district_file
from services.routing.ids import case_id_for, transferred_case_id
from services.routing.settings import RoutingSettings
from tests.routing.routing_support import ADMIN, DEMO_FILE, Clock, act
from tests.routing.test_routing_http import OTHER_DISTRICT

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHEMAS = ("routing", "notification", "reporting", "reporting_asof")
DISTRICTS = ("demo", "other")
PHONE = "13912345678"
NAME = "王秀英"

OTHER_CONTACTS = """
district: other
contacts:
  - {staff_id: h001, name: 周建平, role: representative, email: h001@other.minqing.local,
     preferred: [email]}
  - {staff_id: lo_hx_01, role: liaison, email: lo_hx_01@other.minqing.local, preferred: [email]}
"""

OPINIONS = {
    "demo": ("小区东门的路灯坏了三个多月，晚上老人出门很不方便", "dh_donghu"),
    "other": ("河西社区的路灯坏了，井盖也松了", "hx_home"),
}

MAIN_TABLES = {
    "minqing_routing": [
        "routing.districts",
        "routing.stations",
        "routing.representatives",
        "routing.memberships",
        "routing.cases",
    ],
    "minqing_notification": [
        "notification.districts",
        "notification.stations",
        "notification.representatives",
        "notification.contacts",
        "notification.opinions",
        "notification.cases",
        "notification.deliveries",
    ],
    "minqing_reporting": [
        "reporting.districts",
        "reporting.stations",
        "reporting.representatives",
        "reporting.cases",
        "reporting.case_steps",
    ],
}
"""Per service role, the tables the flow below fills in both districts."""


@dataclass
class Flow:
    """The three services on one database, and what the flow did in each district."""

    admin: asyncpg.Connection
    pools: dict[str, asyncpg.Pool]
    store: EventStore
    routing: Routing
    notification: Notification
    reporting: Reporting
    sink: Sink
    clock: Clock
    cases: dict[str, str]
    """The case opened in each district."""


@pytest.fixture(scope="module")
def segmenter() -> JiebaSegmenter:
    words = JiebaSegmenter()
    words.load()
    return words


@pytest.fixture
async def pools(database_url: str) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    """A pool per service role, as each service runs in production."""
    made = {
        role: await create_pool(database_url, role=role, max_size=6)
        for role in ("minqing_routing", "minqing_notification", "minqing_reporting")
    }
    try:
        yield made
    finally:
        for pool in made.values():
            await pool.close()


async def append_as_intake(store: EventStore, event: OpinionSubmitted) -> Envelope:
    """Append an opinion as intake does: in a transaction scoped to its district."""
    async with district_transaction(store.pool, event.district_id) as conn:
        await store.append(event.stream_id, [Envelope.wrap(event)], conn=conn)
        stored = await store.read_stream(event.stream_id, conn=conn)
    return stored[-1].envelope()


async def every_event(store: EventStore) -> list[RecordedEvent]:
    """Everything stored, read as an operator would (every district, declared)."""
    async with district_transaction(store.pool, ALL_DISTRICTS) as conn:
        return await store.read_all(limit=100_000, conn=conn)


@pytest.fixture
async def flow(
    settings: Settings,
    store: EventStore,
    admin: asyncpg.Connection,
    pools: dict[str, asyncpg.Pool],
    segmenter: JiebaSegmenter,
) -> AsyncIterator[Flow]:
    """An opinion routed into a case in each of two districts; notification and reporting
    handed every event, as Kafka would."""
    clock = Clock()
    sink = Sink(smtp_port=free_port(), http_port=free_port())
    await sink.start()
    routing_settings = RoutingSettings(
        **settings.model_dump(), routing_district_files=[], routing_scan_interval=0
    )
    base = f"http://127.0.0.1:{sink.http_port}"
    notification_settings = NotificationSettings(
        **settings.model_dump(),
        smtp_port=sink.smtp_port,
        sms_gateway_url=f"{base}/sms",
        delivery_timeout=2.0,
        delivery_backoff=0.01,
        delivery_max_attempts=3,
    )
    reporting_settings = ReportingSettings(**settings.model_dump(), reporting_consume=False)
    try:
        async with (
            routing_bootstrap(
                routing_settings,
                pool=pools["minqing_routing"],
                clock=clock,
                segmenter=segmenter,
                background=False,
            ) as routing,
            notification_bootstrap(
                notification_settings,
                pool=pools["minqing_notification"],
                clock=clock,
                background=False,
            ) as notification,
            reporting_bootstrap(
                reporting_settings,
                pool=pools["minqing_reporting"],
                clock=clock,
                background=False,
            ) as reporting,
        ):
            await routing.directory.change("demo", load_district_file(DEMO_FILE), ADMIN)
            await routing.directory.change("other", parse_district_file(OTHER_DISTRICT), ADMIN)
            for district in DISTRICTS:  # the districts' administrators' accounts
                await routing.accounts.invite(
                    district, f"admin_{district}", Role.DISTRICT_ADMIN, ADMIN
                )
            cases = {}
            for district, (text, station) in OPINIONS.items():
                opinion = OpinionSubmitted(
                    district_id=district,
                    occurred_at=clock.now,
                    actor=Actor(id="subj_" + uuid.uuid4().hex[:8], role=ActorRole.RESIDENT),
                    opinion_id="op_" + uuid.uuid4().hex[:12],
                    channel="qr",
                    text=text,
                    location=Location(station_code=station),
                )
                assert await routing.consumer.apply(await append_as_intake(store, opinion))
                cases[district] = case_id_for(district, opinion.opinion_id)
            now = clock.now
            for book in (DEMO_CONTACTS_FILE.read_text(encoding="utf-8"), OTHER_CONTACTS):
                await contacts.import_book(notification.pool, parse_contact_file(book), "test", now)
            for record in await every_event(store):
                await notification.consumer.apply(record.envelope())
                await reporting.consumer.apply(record.envelope())
            yield Flow(admin, pools, store, routing, notification, reporting, sink, clock, cases)
    finally:
        await sink.stop()


async def count_as_owner(admin: asyncpg.Connection, table: str, district: str) -> int:
    return int(
        await admin.fetchval(f"SELECT count(*) FROM {table} WHERE district_id = $1", district)
    )


async def load(routing: Routing, district: str, case_id: str) -> CaseState:
    async with district_transaction(routing.pool, district) as conn:
        state = await routing.cases.load(conn, case_id)
    assert state is not None
    return state


# ---------------------------------------------------------------------- the policies


async def test_every_table_of_the_three_schemas_holding_a_district_has_the_policy(
    admin: asyncpg.Connection,
) -> None:
    rows = await admin.fetch(
        """
        SELECT n.nspname || '.' || c.relname AS name, c.relrowsecurity AS secured,
               EXISTS (SELECT 1 FROM pg_policies p
                        WHERE p.schemaname = n.nspname AND p.tablename = c.relname
                          AND p.policyname = 'district_scope'
                          AND 'minqing_runtime' = ANY (p.roles)
                          AND p.qual LIKE '%in_scope(district_id)%'
                          AND p.with_check LIKE '%in_scope(district_id)%') AS policy
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p')
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attname = 'district_id' AND NOT a.attisdropped)
         ORDER BY 1
        """,
        list(SCHEMAS),
    )
    names = {r["name"] for r in rows}
    # The shadow slots of reporting are tables too, and the links got their district.
    assert {"reporting.cases_s1", "reporting_asof.cases_s0", "routing.case_links"} <= names
    assert [r["name"] for r in rows if not (r["secured"] and r["policy"])] == []
    unsecured_views = await admin.fetch(
        """
        SELECT n.nspname || '.' || c.relname AS name
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY($1::text[]) AND c.relkind = 'v'
           AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
        """,
        list(SCHEMAS),
    )
    assert [r["name"] for r in unsecured_views] == []


async def test_a_service_role_sees_nothing_without_a_district_and_only_its_own_with_one(
    flow: Flow,
) -> None:
    for role, tables in MAIN_TABLES.items():
        pool = flow.pools[role]
        for table in tables:
            owned = {d: await count_as_owner(flow.admin, table, d) for d in DISTRICTS}
            assert all(owned.values()), f"{table} should hold rows of both districts: {owned}"
            # A query that forgot its district: nothing, not everything.
            async with pool.acquire() as conn:
                assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
            for district in DISTRICTS:
                async with district_transaction(pool, district) as conn:
                    seen = await conn.fetch(f"SELECT district_id FROM {table}")
                assert len(seen) == owned[district], (table, district)
                assert {r["district_id"] for r in seen} == {district}, table


async def test_a_district_s_transaction_can_neither_change_nor_add_another_district_s_rows(
    flow: Flow,
) -> None:
    async with district_transaction(flow.pools["minqing_routing"], "demo") as conn:
        updated = await conn.execute(
            "UPDATE routing.cases SET overdue = true WHERE district_id = 'other'"
        )
    assert updated == "UPDATE 0"
    assert await count_as_owner(flow.admin, "routing.cases", "other") == 1
    pool = flow.pools["minqing_notification"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with district_transaction(pool, "demo") as conn:
            await conn.execute(
                "INSERT INTO notification.contacts (district_id, staff_id, role, updated_at, "
                "updated_by) VALUES ('other', 'intruder', 'representative', now(), 'test')"
            )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with district_transaction(flow.pools["minqing_reporting"], "other") as conn:
            await conn.execute(
                "INSERT INTO reporting.assessment_criteria (district_id, criteria, updated_at, "
                "updated_by) VALUES ('demo', '{}', now(), 'test')"
            )


# ---------------------------------------------------------------------- the work still done


async def test_routing_routes_works_and_supervises_cases_in_both_districts(flow: Flow) -> None:
    routing = flow.routing
    for district, case_id in flow.cases.items():
        state = await load(routing, district, case_id)
        assert state.district_id == district
        assert state.representative_id is not None
        accepted = await act(
            routing,
            "accept",
            district,
            case_id,
            Actor(id=state.representative_id, role=ActorRole.REPRESENTATIVE),
        )
        assert accepted.status is CaseStatus.IN_PROGRESS
    # Another district's case is not found from here, even by its id.
    other = await load(routing, "other", flow.cases["other"])
    async with district_transaction(routing.pool, "demo") as conn:
        assert await routing.cases.load(conn, other.case_id) is None

    # The overdue sweep looks at every district and records in each case's own.
    flow.clock.advance(days=40)
    recorded = await routing.overdue.scan()
    assert recorded >= len(DISTRICTS)
    for district, case_id in flow.cases.items():
        assert (await load(routing, district, case_id)).overdue_count > 0, district


async def test_notification_tells_each_district_s_representative_of_their_case(
    flow: Flow,
) -> None:
    service = flow.notification
    planned = {d: await count_as_owner(flow.admin, "notification.deliveries", d) for d in DISTRICTS}
    assert all(planned.values()), planned

    sent = await service.sender.send_due()

    assert sent == sum(planned.values())
    mails = [m for m in flow.sink.received if m.kind == "mail"]
    recipients = {m.path.rsplit("@", 1)[1] for m in mails}
    assert recipients == {"demo.minqing.local", "other.minqing.local"}
    for district, case_id in flow.cases.items():
        assert any(case_id in m.subject for m in mails), district
    rows = await flow.admin.fetch("SELECT district_id, status FROM notification.deliveries")
    ended = {(r["district_id"], r["status"]) for r in rows}
    assert {("demo", "sent"), ("other", "sent")} <= ended
    assert {status for _, status in ended} <= {"sent", "failed"}
    outcomes = [r for r in await every_event(flow.store) if r.category == "notification"]
    assert {r.district_id for r in outcomes} == set(DISTRICTS)


async def test_reporting_shows_each_district_its_own_figures_and_rebuilds_them_all(
    flow: Flow,
) -> None:
    service = flow.reporting
    recorded = [r.recorded_at.astimezone(SHANGHAI).date() for r in await every_event(flow.store)]
    period = {
        "from": (min(recorded) - timedelta(days=1)).isoformat(),
        "to": (max(recorded) + timedelta(days=1)).isoformat(),
    }
    app = reporting_app(service.settings, pool=service.pool, clock=flow.clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as client:
            for district in DISTRICTS:
                token = issue_token(
                    service.settings,
                    role=Role.DISTRICT_ADMIN,
                    district_id=district,
                    subject=f"admin_{district}",
                )
                headers = {"Authorization": f"Bearer {token}"}
                answer = await client.get(
                    f"/api/v1/districts/{district}/overview", params=period, headers=headers
                )
                assert answer.status_code == 200, answer.text
                received = answer.json()["figures"]["counts"]["received"]
                assert received == await count_as_owner(flow.admin, "reporting.cases", district)
                elsewhere = "other" if district == "demo" else "demo"
                refused = await client.get(
                    f"/api/v1/districts/{elsewhere}/overview", params=period, headers=headers
                )
                assert refused.status_code == 404

    result = await service.rebuild.run()

    assert result.swapped
    assert result.equal, [c.differences for c in result.comparisons]
    assert sum(c.shadow_rows for c in result.comparisons if c.table == "cases") == sum(
        [await count_as_owner(flow.admin, "routing.cases", d) for d in DISTRICTS]
    )


async def test_a_case_transferred_to_another_district_still_reaches_its_resident(
    flow: Flow,
) -> None:
    """The one flow that crosses districts on purpose: the case continues in the other
    district, whose staff call the resident back and whose answer reaches them by SMS,
    although the resident's sealed contact and key stay with the district that took the
    opinion down."""
    routing = flow.routing
    vault = PersonalDataVault(flow.store.pool)
    async with district_transaction(flow.store.pool, "demo") as conn:
        sealed = await vault.seal(
            "demo",
            {"name": NAME, "phone": PHONE, "tracking_code": "QRST2345WXYZ"},
            identifier=PHONE,
            conn=conn,
        )
    opinion = OpinionSubmitted(
        district_id="demo",
        occurred_at=flow.clock.now,
        actor=Actor(id=sealed.subject_id, role=ActorRole.RESIDENT),
        opinion_id="op_" + uuid.uuid4().hex[:12],
        channel="qr",
        text="河西社区门口的井盖松了，晚上很危险",
        location=Location(station_code="dh_donghu"),
        submitter=SubmitterRef(
            subject_id=sealed.subject_id,
            name_ciphertext=sealed.values["name"],
            phone_ciphertext=sealed.values["phone"],
            tracking_code_ciphertext=sealed.values["tracking_code"],
            contact_consent=True,
        ),
    )
    assert await routing.consumer.apply(await append_as_intake(flow.store, opinion))
    case_id = case_id_for("demo", opinion.opinion_id)
    admin = Actor(id="admin_demo", role=ActorRole.DISTRICT_ADMIN)

    moved = await act(
        routing,
        "transfer",
        "demo",
        case_id,
        admin,
        reason="归邻区管辖",
        to_district_id="other",
        to_station_code="hx_home",
    )

    assert moved.status is CaseStatus.TRANSFERRED_OUT
    there = transferred_case_id(case_id, "other")
    officer = Principal("lo_hx_01", Role.LIAISON, "other")
    contact = await routing.staff.open_contact(officer, there, "回访")
    assert (contact.shown, contact.phone) == (True, PHONE)
    await act(
        routing,
        "reply",
        "other",
        there,
        Actor(id="lo_hx_01", role=ActorRole.LIAISON),
        message="已联系城管，本周内加固井盖",
    )
    for record in await every_event(flow.store):
        await flow.notification.consumer.apply(record.envelope())
    await flow.notification.sender.send_due()

    texts = [json.loads(m.body)["text"] for m in flow.sink.received if m.kind == "sms"]
    assert any("本周内加固井盖" in text for text in texts), texts
    assert all(NAME not in text for text in texts)
