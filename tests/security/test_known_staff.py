"""A staff token's subject must be a known, active person of that role in that district,
in every service (issue 10): routing answers from its directory and accounts, intake,
reporting and notification from the staff roster each folds from routing's events
(eventkit.staff_roster). Every service is built as production builds it, on the test's
database; routing's events are handed to the others' consumers as Kafka would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI

from contracts.directory import StationKind
from eventkit.auth import issue_token
from eventkit.consumer import Consumer
from eventkit.db import district_transaction
from eventkit.identity import Principal, Role
from eventkit.settings import Settings
from eventkit.staff_roster import StaffRoster
from eventkit.staff_rule import NotActiveStaff
from eventkit.store import Checkpoint, EventStore
from services.intake.consumers import ROSTER as INTAKE_ROSTER
from services.notification.consumers import ROSTER as NOTIFICATION_ROSTER
from services.reporting.consumers import ROSTER as REPORTING_ROSTER
from services.routing.bootstrap import Routing
from services.routing.district_file import DistrictFile, StationEntry, load_district_file
from tests.routing.routing_support import ADMIN, DEMO_FILE
from tests.security.service_apps import build

DEMO = load_district_file(DEMO_FILE)
DESK = StationEntry(
    code="dh_desk",
    name_zh="东湖街道测试联络点",
    kind=StationKind.CONTACT_POINT,
    street=DEMO.streets[0].code,
    liaison_officers=["lo_desk_01"],
)
"""A contact point no representative belongs to: one that can close."""
BASE = DEMO.model_copy(update={"stations": [*DEMO.stations, DESK]})
ROSTERS = {
    "intake": INTAKE_ROSTER,
    "reporting": REPORTING_ROSTER,
    "notification": NOTIFICATION_ROSTER,
}
ACCOUNTS = [
    ("admin_demo", Role.DISTRICT_ADMIN),
    ("au_01", Role.AUDITOR),
    ("hl_01", Role.HOTLINE),
    ("au_02", Role.AUDITOR),
]
"""People known by their accounts (invited in routing)."""


@dataclass
class Stack:
    """Routing and the three services that keep a roster, on one database."""

    settings: dict[str, Settings]
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    store: EventStore
    delivered: Checkpoint = field(default_factory=Checkpoint)

    @property
    def routing(self) -> Routing:
        routing: Routing = self.apps["routing"].state.routing
        return routing

    def consumer(self, name: str) -> Consumer:
        consumer: Consumer = getattr(self.apps[name].state, name).consumer
        return consumer

    async def deliver(self) -> None:
        """Hand what routing appended since the last call to each service's consumer."""
        while events := await self.store.read_all(self.delivered, limit=100_000):
            for name in ROSTERS:
                for recorded in events:
                    await self.consumer(name).apply(recorded.envelope())
            self.delivered = events[-1].checkpoint

    def bearer(self, name: str, person: str, role: Role) -> dict[str, str]:
        token = issue_token(self.settings[name], role=role, district_id="demo", subject=person)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def stack(settings: Settings, store: EventStore) -> AsyncIterator[Stack]:
    built = {name: build(name, settings) for name in ("routing", *ROSTERS)}
    async with contextlib.AsyncExitStack() as exits:
        clients = {}
        for name, (_, app) in built.items():
            await exits.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await exits.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            )
        made = Stack(
            {n: s for n, (s, _) in built.items()},
            {n: a for n, (_, a) in built.items()},
            clients,
            store,
        )
        await made.routing.directory.change("demo", BASE, ADMIN)
        for person, role in ACCOUNTS:
            await made.routing.accounts.invite("demo", person, role, ADMIN)
        await made.deliver()
        yield made


def people_of(district: DistrictFile) -> set[str]:
    """Everyone the file names as staff of some kind."""
    found = {r.id for r in district.representatives}
    found |= {p for s in district.stations for p in s.liaison_officers}
    found |= {s.head for s in district.stations if s.head}
    found |= {p for s in district.streets for p in s.supervisors}
    found |= {p for d in district.departments for p in d.duty_staff}
    found |= {s.id for s in district.staff} | {s.id for s in district.spokespersons}
    return found


def changed_file() -> DistrictFile:
    """The demo district after people left: the first representative's term ended, the
    desk closed, the first department, staff member and spokesperson retired, a station
    lost its first liaison officer, a street changed its supervisors."""
    reps, stations = list(BASE.representatives), list(BASE.stations)
    reps[0] = reps[0].model_copy(update={"retired": True})
    stations[-1] = DESK.model_copy(update={"retired": True})
    staffed = next(i for i, s in enumerate(stations) if s.liaison_officers)
    stations[staffed] = stations[staffed].model_copy(
        update={"liaison_officers": stations[staffed].liaison_officers[1:]}
    )
    streets = list(DEMO.streets)
    streets[0] = streets[0].model_copy(update={"supervisors": ["ss_new_01"]})
    departments, staff, spokes = list(DEMO.departments), list(DEMO.staff), list(DEMO.spokespersons)
    departments[0] = departments[0].model_copy(update={"retired": True})
    staff[0] = staff[0].model_copy(update={"retired": True})
    spokes[0] = spokes[0].model_copy(update={"retired": True})
    return BASE.model_copy(
        update={
            "representatives": reps,
            "stations": stations,
            "streets": streets,
            "departments": departments,
            "staff": staff,
            "spokespersons": spokes,
        }
    )


async def routing_admits(stack: Stack, principal: Principal) -> bool:
    async with district_transaction(stack.routing.pool, "demo") as conn:
        try:
            await stack.routing.accounts.ensure_active(conn, principal)
        except NotActiveStaff:
            return False
    return True


async def roster_admits(stack: Stack, name: str, roster: StaffRoster, who: Principal) -> bool:
    pool = getattr(stack.apps[name].state, name).pool
    async with district_transaction(pool, "demo") as conn:
        try:
            await roster.ensure_active(conn, who)
        except NotActiveStaff:
            return False
    return True


async def verdicts(stack: Stack, people: set[str]) -> dict[str, dict[tuple[str, Role], bool]]:
    """Each service's answer for every person in every role."""
    asked = [(p, r) for p in sorted(people) for r in Role]
    found: dict[str, dict[tuple[str, Role], bool]] = {"routing": {}}
    for person, role in asked:
        found["routing"][(person, role)] = await routing_admits(
            stack, Principal(person, role, "demo")
        )
    for name, roster in ROSTERS.items():
        found[name] = {
            (p, r): await roster_admits(stack, name, roster, Principal(p, r, "demo"))
            for p, r in asked
        }
    return found


async def test_every_service_admits_exactly_the_staff_routing_admits(stack: Stack) -> None:
    people = people_of(BASE) | {p for p, _ in ACCOUNTS} | {"nobody", "ss_new_01"}
    before = await verdicts(stack, people)
    for name in ROSTERS:
        assert before[name] == before["routing"], name

    await stack.routing.directory.change("demo", changed_file(), ADMIN)
    await stack.routing.accounts.retire("demo", "au_02", "调离", ADMIN)
    await stack.routing.accounts.invite("demo", "hl_01", Role.AUDITOR, ADMIN)  # a new role
    await stack.routing.accounts.invite("demo", "lo_xs_01", None, ADMIN)
    await stack.routing.accounts.retire("demo", "lo_xs_01", "离岗", ADMIN)  # listed still
    await stack.deliver()
    after = await verdicts(stack, people)
    for name in ROSTERS:
        assert after[name] == after["routing"], name

    changed = {k for k, v in before["routing"].items() if v != after["routing"][k]}
    assert (DEMO.representatives[0].id, Role.REPRESENTATIVE) in changed  # term ended
    assert ("au_02", Role.AUDITOR) in changed  # account closed
    assert ("hl_01", Role.HOTLINE) in changed  # account's role changed
    assert ("ss_new_01", Role.STREET_SUPERVISOR) in changed  # newly listed
    assert ("lo_desk_01", Role.LIAISON) in changed  # their station closed
    assert ("lo_xs_01", Role.LIAISON) in changed  # listed, but their account closed
    assert not any(v for (p, _), v in after["routing"].items() if p == "nobody")


# --------------------------------------------------------------------------- the edges

PROBES = {
    "intake": ("/api/v1/opinions/op_none", 404),
    "reporting": ("/api/v1/districts/demo/overview", 200),
    "notification": ("/api/v1/deliveries", 200),
}
"""A staff route of each service, and its answer to an admitted district admin."""


async def call(stack: Stack, name: str, person: str, role: Role) -> httpx.Response:
    path, _ = PROBES[name]
    return await stack.clients[name].get(path, headers=stack.bearer(name, person, role))


def refused(response: httpx.Response) -> bool:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "此账号不是本区在职工作人员"
    return bool(problem["type"].endswith("/not-active-staff"))


@pytest.mark.parametrize("name", sorted(PROBES))
async def test_a_token_for_a_person_never_known_is_refused(stack: Stack, name: str) -> None:
    assert refused(await call(stack, name, "nobody", Role.DISTRICT_ADMIN))


@pytest.mark.parametrize("name", sorted(PROBES))
async def test_a_known_admin_is_let_in_and_refused_once_their_account_is_closed(
    stack: Stack, name: str
) -> None:
    _, admitted = PROBES[name]
    assert (await call(stack, name, "admin_demo", Role.DISTRICT_ADMIN)).status_code == admitted

    await stack.routing.accounts.retire("demo", "admin_demo", "调离", ADMIN)
    await stack.deliver()

    assert refused(await call(stack, name, "admin_demo", Role.DISTRICT_ADMIN))


@pytest.mark.parametrize("name", sorted(PROBES))
async def test_a_listed_person_is_refused_in_another_role_and_once_they_leave(
    stack: Stack, name: str
) -> None:
    rep = DEMO.representatives[0].id
    member = DEMO.staff[0]
    assert (await call(stack, name, rep, Role.REPRESENTATIVE)).status_code != 401
    assert refused(await call(stack, name, rep, Role.LIAISON))
    assert refused(await call(stack, name, rep, Role.DISTRICT_ADMIN))
    as_member = Role(member.role.value)
    assert (await call(stack, name, member.id, as_member)).status_code != 401

    await stack.routing.directory.change("demo", changed_file(), ADMIN)
    await stack.deliver()

    assert refused(await call(stack, name, rep, Role.REPRESENTATIVE))  # RepresentativeRetired
    assert refused(await call(stack, name, member.id, as_member))  # StaffMemberRetired


async def test_reporting_s_sign_in_and_pages_refuse_a_person_who_is_not_staff(
    stack: Stack,
) -> None:
    client = stack.clients["reporting"]
    stranger = stack.bearer("reporting", "nobody", Role.DISTRICT_ADMIN)["Authorization"][7:]
    form = await client.post("/dashboard/login", data={"token": stranger})
    assert form.status_code == 401
    assert "人员已离任、调整岗位或账号已停用" in form.text
    link = await client.get("/dashboard/login", params={"token": stranger})
    assert link.status_code == 401
    assert "minqing_staff" not in link.cookies

    admin = stack.bearer("reporting", "admin_demo", Role.DISTRICT_ADMIN)["Authorization"][7:]
    signed_in = await client.post("/dashboard/login", data={"token": admin})
    assert signed_in.status_code == 303
    assert (await client.get("/dashboard/demo")).status_code == 200

    await stack.routing.accounts.retire("demo", "admin_demo", "调离", ADMIN)
    await stack.deliver()

    page = await client.get("/dashboard/demo")
    assert page.status_code == 401
    assert "人员已离任、调整岗位或账号已停用" in page.text


async def test_a_roster_left_empty_by_an_earlier_version_is_filled_before_consuming(
    settings: Settings, store: EventStore
) -> None:
    # Routing's events are in the store, but intake's consumer had gone past them before
    # the roster existed: it will not be handed them again.
    built = {name: build(name, settings) for name in ("routing", "intake")}
    async with contextlib.AsyncExitStack() as exits:
        for _, app in built.values():
            await exits.enter_async_context(app.router.lifespan_context(app))
        routing: Routing = built["routing"][1].state.routing
        await routing.directory.change("demo", BASE, ADMIN)
        await routing.accounts.invite("demo", "admin_demo", Role.DISTRICT_ADMIN, ADMIN)
        await routing.accounts.invite("demo", "au_02", Role.AUDITOR, ADMIN)
        await routing.accounts.retire("demo", "au_02", "调离", ADMIN)
        intake = built["intake"][1].state.intake
        admin = Principal("admin_demo", Role.DISTRICT_ADMIN, "demo")
        liaison = Principal("lo_desk_01", Role.LIAISON, "demo")
        closed = Principal("au_02", Role.AUDITOR, "demo")

        async def admits(who: Principal) -> bool:
            async with district_transaction(intake.pool, "demo") as conn:
                try:
                    await INTAKE_ROSTER.ensure_active(conn, who)
                except NotActiveStaff:
                    return False
            return True

        assert not await admits(admin)
        await intake.consumer.prepare()  # what the service does before it consumes
        assert await admits(admin)
        assert await admits(liaison)
        assert not await admits(closed)
        assert await INTAKE_ROSTER.refill(intake.pool, store) == 0  # filled once
