"""Staff accounts against the real database: invitations, passwords, lock-out, sessions,
retirement, and tokens of people who are no longer staff."""

from __future__ import annotations

import json

import pytest

from contracts.staff import staff_stream_key
from eventkit.identity import Role
from services.routing.district_file import load_district_file
from services.routing.staff_rules import (
    AccountLocked,
    InviteNotValid,
    SignInFailed,
    UnknownPerson,
    WeakPassword,
)
from tests.every_district import every_district
from tests.routing.routing_support import ADMIN, DEMO_FILE
from tests.workbench.conftest import PASSWORD, Bench

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def events_of(bench: Bench, person: str) -> list[tuple[str, dict[str, object]]]:
    records = await bench.routing.store.read_stream(f"staff-{staff_stream_key('demo', person)}")
    return [(r.event_type, dict(r.data)) for r in records]


async def test_an_invitation_sets_a_password_once_and_leaves_no_secret_in_the_record(
    bench: Bench,
) -> None:
    accounts = bench.routing.accounts
    invitation = await accounts.invite("demo", "lo_dh_02", None, ADMIN)
    assert invitation.account.role is Role.LIAISON  # from the directory

    with pytest.raises(WeakPassword):
        await accounts.accept_invitation(invitation.code, "short", "short")
    session = await accounts.accept_invitation(invitation.code, PASSWORD, PASSWORD)
    assert session.principal.subject == "lo_dh_02"
    assert (await accounts.session(session.token)) is not None
    with pytest.raises(InviteNotValid):
        await accounts.accept_invitation(invitation.code, PASSWORD, PASSWORD)

    recorded = await events_of(bench, "lo_dh_02")
    assert [kind for kind, _ in recorded] == ["StaffInvited", "StaffPasswordSet"]
    text = json.dumps([data for _, data in recorded], ensure_ascii=False)
    assert PASSWORD not in text
    assert invitation.code not in text
    assert "argon2" not in text
    stored = await every_district(bench.routing.pool).fetchval(
        "SELECT password_hash FROM routing.staff_accounts WHERE person_id = 'lo_dh_02'"
    )
    assert stored.startswith("$argon2id$")


async def test_an_unknown_person_is_not_invited_and_an_expired_code_does_nothing(
    bench: Bench,
) -> None:
    accounts = bench.routing.accounts
    with pytest.raises(UnknownPerson):
        await accounts.invite("demo", "nobody_99", None, ADMIN)
    invitation = await accounts.invite("demo", "r003", None, ADMIN)
    bench.clock.advance(hours=bench.settings.routing_invite_hours + 1)
    try:
        with pytest.raises(InviteNotValid):
            await accounts.accept_invitation(invitation.code, PASSWORD, PASSWORD)
    finally:
        bench.clock.advance(hours=-(bench.settings.routing_invite_hours + 1))


async def test_repeated_wrong_passwords_lock_the_account_for_a_while(bench: Bench) -> None:
    accounts = bench.routing.accounts
    await bench.account("lo_xs_01")
    for _ in range(bench.settings.routing_lockout_failures - 1):
        with pytest.raises(SignInFailed):
            await accounts.sign_in("demo", "lo_xs_01", "not the password")
    with pytest.raises(AccountLocked):
        await accounts.sign_in("demo", "lo_xs_01", "not the password")
    # Locked: even the right password waits.
    with pytest.raises(AccountLocked):
        await accounts.sign_in("demo", "lo_xs_01", PASSWORD)
    assert [k for k, _ in await events_of(bench, "lo_xs_01")][-1] == "StaffLocked"

    bench.clock.advance(minutes=bench.settings.routing_lockout_minutes + 1)
    try:
        session = await accounts.sign_in("demo", "lo_xs_01", PASSWORD)
    finally:
        bench.clock.advance(minutes=-(bench.settings.routing_lockout_minutes + 1))
    assert session.principal.role is Role.LIAISON


async def test_a_wrong_account_and_a_wrong_password_are_refused_alike(bench: Bench) -> None:
    with pytest.raises(SignInFailed):
        await bench.routing.accounts.sign_in("demo", "nobody_99", PASSWORD)
    with pytest.raises(SignInFailed):
        await bench.routing.accounts.sign_in("demo", ADMINISTRATOR, "wrong password!")


ADMINISTRATOR = "admin_demo"


async def test_a_retired_account_ends_its_sessions_and_its_tokens(bench: Bench) -> None:
    accounts = bench.routing.accounts
    await bench.account("ops_02", Role.DISTRICT_ADMIN)
    session = await accounts.sign_in("demo", "ops_02", PASSWORD)
    headers = bench.bearer(Role.DISTRICT_ADMIN, "ops_02")
    assert (await bench.client.get("/api/v1/cases", headers=headers)).status_code == 200

    assert await accounts.retire("demo", "ops_02", "调离", ADMIN)

    assert await accounts.session(session.token) is None
    refused = await bench.client.get("/api/v1/cases", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/not-active-staff")
    with pytest.raises(SignInFailed):
        await accounts.sign_in("demo", "ops_02", PASSWORD)
    assert [k for k, _ in await events_of(bench, "ops_02")][-1] == "StaffRetired"


async def test_a_token_names_a_known_active_person_of_its_role(bench: Bench) -> None:
    async def status(role: Role, subject: str, district: str = "demo") -> int:
        headers = bench.bearer(role, subject, district)
        return (await bench.client.get("/api/v1/cases", headers=headers)).status_code

    # Listed by the directory in that role: yes; in another role, or not at all: no.
    assert await status(Role.LIAISON, "lo_dh_01") == 200
    assert await status(Role.REPRESENTATIVE, "lo_dh_01") == 401
    assert await status(Role.LIAISON, "lo_made_up") == 401
    # A district administrator without an account is nobody.
    assert await status(Role.DISTRICT_ADMIN, "admin_x") == 401
    # The same person in another district is nobody there.
    assert await status(Role.LIAISON, "lo_dh_01", "other") == 401


async def test_a_liaison_officer_who_leaves_the_station_loses_token_and_session(
    bench: Bench,
) -> None:
    await bench.account("lo_nc_04")
    session = await bench.routing.accounts.sign_in("demo", "lo_nc_04", PASSWORD)
    headers = bench.bearer(Role.LIAISON, "lo_nc_04")
    assert (await bench.client.get("/api/v1/queue", headers=headers)).status_code == 200

    # The station's officers are changed in the directory (the district file again).
    gone = "lo_nc_04"
    demo = load_district_file(DEMO_FILE)
    stations = [
        s.model_copy(update={"liaison_officers": [o for o in s.liaison_officers if o != gone]})
        for s in demo.stations
    ]
    routing = bench.routing
    await routing.directory.change("demo", demo.model_copy(update={"stations": stations}), ADMIN)

    assert (await bench.client.get("/api/v1/queue", headers=headers)).status_code == 401
    assert await routing.accounts.session(session.token) is None


async def test_sessions_end_when_idle_or_signed_out(bench: Bench) -> None:
    accounts = bench.routing.accounts
    session = await accounts.sign_in("demo", ADMINISTRATOR, PASSWORD)
    assert await accounts.session(session.token) is not None
    bench.clock.advance(minutes=bench.settings.routing_session_idle_minutes + 1)
    try:
        assert await accounts.session(session.token) is None
    finally:
        bench.clock.advance(minutes=-(bench.settings.routing_session_idle_minutes + 1))
    other = await accounts.sign_in("demo", ADMINISTRATOR, PASSWORD)
    await accounts.sign_out(other.token)
    assert await accounts.session(other.token) is None
