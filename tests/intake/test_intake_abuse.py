"""Abuse of the public forms: limits shared by every replica (per client address, per
station), the proof-of-work a guarded station's QR form asks for, and the limits on
payloads and attachments. Real PostgreSQL; two apps on one database are two replicas."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from playwright.async_api import async_playwright

from eventkit.db import scope
from eventkit.identity import Role
from eventkit.local import free_port
from services.intake.app import create_app
from services.intake.proof_of_work import (
    HEADER,
    ProofOfWorkExpired,
    ProofOfWorkInvalid,
    ProofOfWorkWrongStation,
    challenge_key,
    issue,
    leading_zero_bits,
    solves,
    verify,
)
from services.intake.ratelimit import SharedRateLimiter, client_address
from services.intake.settings import IntakeSettings
from services.intake.station_guard import GUARDED_BUDGET, RAISE_BITS, RAISE_EVERY, sweep
from tests.intake.intake_support import (
    API_KEY,
    COMMUNITY_STATION,
    DISTRICT,
    OTHER_DISTRICT,
    STATION,
    Known,
    opinion_body,
    token,
)

CHROMIUM = "/usr/bin/chromium"
BITS = 8
"""A difficulty the tests solve in a few hundred hashes."""


class Clock:
    """The time the app is given, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def abuse_settings(intake_settings: IntakeSettings) -> IntakeSettings:
    """Generous limits except where a test narrows one; clients named by X-Forwarded-For
    (the test client's peer is a trusted proxy)."""
    return intake_settings.model_copy(
        update={
            "trusted_proxies": ["127.0.0.0/8"],
            "rate_station_per_minute": 10_000,
            "rate_station_burst": 10_000,
            "pow_auto_bits": BITS,
        }
    )


async def replica(
    settings: IntakeSettings, pool: asyncpg.Pool, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    """One intake process (an app of its own, sharing only the database)."""
    app = create_app(settings, pool=pool, clock=clock, background=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://intake.test"
        ) as client,
    ):
        yield client


def problem_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = response.json()
    assert doc["type"] == f"https://minqing.cn/problems/{code}"
    assert doc["title"]
    assert doc["title_en"]
    return doc


def from_address(address: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **headers}


def solve(challenge: str, bits: int) -> str:
    """``challenge:nonce`` solving the challenge, as the form's script finds it."""
    nonce = 0
    while not solves(challenge, str(nonce), bits):
        nonce += 1
    return f"{challenge}:{nonce}"


def admin(settings: IntakeSettings, district: str = DISTRICT) -> dict[str, str]:
    return {"Authorization": token(settings, Role.DISTRICT_ADMIN, district, "admin_01")}


async def guard_on(
    client: httpx.AsyncClient, settings: IntakeSettings, station: str = STATION, bits: int = BITS
) -> None:
    response = await client.put(
        f"/api/v1/stations/{station}/proof-of-work",
        json={"difficulty": bits},
        headers=admin(settings),
    )
    assert response.status_code == 200, response.text
    assert response.json()["on"] is True


async def opinions_stored(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await scope(conn, DISTRICT)
        count: int = await conn.fetchval("SELECT count(*) FROM intake.opinions")
    return count


# --- limits shared by the replicas ------------------------------------------------------


async def test_two_replicas_share_one_limit_per_client_address(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={"rate_submit_per_minute": 2, "rate_submit_burst": 3}
    )
    async for first in replica(settings, pool, clock):
        async for second in replica(settings, pool, clock):
            resident = from_address("203.0.113.9")
            answers = [
                await client.post("/api/v1/opinions", json=opinion_body(), headers=resident)
                for client in (first, second, first, second)
            ]
            assert [a.status_code for a in answers] == [201, 201, 201, 429]
            problem_of(answers[-1], 429, "rate-limited")
            assert int(answers[-1].headers["retry-after"]) == 30  # one token at 2 a minute
            # Each process alone would have allowed its own three.
            other = await first.post(
                "/api/v1/opinions", json=opinion_body(), headers=from_address("203.0.113.10")
            )
            assert other.status_code == 201
            clock.now += timedelta(seconds=30)
            again = await second.post("/api/v1/opinions", json=opinion_body(), headers=resident)
            assert again.status_code == 201


async def test_reads_are_limited_across_replicas_too(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(update={"rate_read_per_minute": 1, "rate_read_burst": 2})
    async for first in replica(settings, pool, clock):
        async for second in replica(settings, pool, clock):
            url = f"/api/v1/track/{'0' * 12}"
            who = from_address("198.51.100.4")
            statuses = [
                (await client.get(url, headers=who)).status_code
                for client in (first, second, first)
            ]
            assert statuses == [404, 404, 429]


async def test_a_refused_submission_spends_its_token_all_the_same(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={"rate_submit_per_minute": 1, "rate_submit_burst": 2}
    )
    async for client in replica(settings, pool, clock):
        who = from_address("203.0.113.77")
        for _ in range(2):
            bad = await client.post("/api/v1/opinions", json=opinion_body(text="短"), headers=who)
            assert bad.status_code == 422
        good = await client.post("/api/v1/opinions", json=opinion_body(), headers=who)
        problem_of(good, 429, "rate-limited")
    assert await opinions_stored(pool) == 0


async def test_no_client_address_is_stored_only_a_keyed_hash(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    address = "203.0.113.200"
    async for client in replica(abuse_settings, pool, clock):
        await client.get("/api/v1/stations?district=demo", headers=from_address(address))
    rows = await pool.fetch("SELECT bucket, client, tokens FROM intake.rate_buckets")
    assert [r["bucket"] for r in rows] == ["read"]
    stored = rows[0]["client"]
    assert len(stored) == 16
    assert address.encode() not in stored
    dump = str([dict(r) for r in await pool.fetch("SELECT * FROM intake.rate_buckets")])
    assert address not in dump
    # The hash is keyed: without the key, hashing every address finds nothing.
    ours = SharedRateLimiter(
        "read", 1, 1, pool=pool, hash_secret=abuse_settings.intake_hash_secret, clock=clock
    )
    theirs = SharedRateLimiter("read", 1, 1, pool=pool, hash_secret=b"another key", clock=clock)
    assert ours.client(address) == stored
    assert theirs.client(address) != stored


def test_an_ipv6_client_is_limited_by_its_64_bit_prefix(pool: asyncpg.Pool) -> None:
    limiter = SharedRateLimiter(
        "read", 1, 1, pool=pool, hash_secret=b"k", clock=lambda: datetime.now(UTC)
    )
    assert limiter.client("2001:db8:1:2::1") == limiter.client("2001:db8:1:2:ffff::9")
    assert limiter.client("2001:db8:1:3::1") != limiter.client("2001:db8:1:2::1")
    assert limiter.client("::ffff:203.0.113.9") == limiter.client("203.0.113.9")


PROXIES = IntakeSettings(trusted_proxies=["10.0.0.0/8", "2001:db8:ffff::/48"])
"""A deployment behind proxies in 10/8 and 2001:db8:ffff::/48."""


@pytest.mark.parametrize(
    ("peer", "lines", "client"),
    [
        # A proxy that adds a line of its own (HAProxy) leaves the client's line first.
        ("10.0.0.2", ["6.6.6.6", "203.0.113.5"], "203.0.113.5"),
        ("10.0.0.2", ["6.6.6.6, 7.7.7.7", "203.0.113.5, 10.0.0.3"], "203.0.113.5"),
        ("10.0.0.2", ["6.6.6.6, 203.0.113.5"], "203.0.113.5"),
        # Ports are stripped: a port is no new client.
        ("10.0.0.2", ["203.0.113.5:4711"], "203.0.113.5"),
        ("10.0.0.2", ["[2001:db8:1:2::1]:443"], "2001:db8:1:2::1"),
        ("10.0.0.2", ["[2001:db8:1:2::1]"], "2001:db8:1:2::1"),
        ("10.0.0.2", ["2001:db8:1:2::1, [2001:db8:ffff::7]:80"], "2001:db8:1:2::1"),
        ("10.0.0.2", ["::ffff:203.0.113.5"], "203.0.113.5"),
        # A hop that is no address: the last trusted hop is as far as anything is known.
        ("10.0.0.2", ["unknown"], "10.0.0.2"),
        ("10.0.0.2", ["203.0.113.5, unknown, 10.0.0.9"], "10.0.0.9"),
        ("10.0.0.2", ["203.0.113.5:port"], "10.0.0.2"),
        ("10.0.0.2", ["[2001:db8:1:2::1]x"], "10.0.0.2"),
        ("10.0.0.2", ["1.2.3.4:5:6"], "10.0.0.2"),
        ("10.0.0.2", ["<script>"], "10.0.0.2"),
        ("10.0.0.2", [""], "10.0.0.2"),
        # Only proxies on the way: the farthest of them.
        ("10.0.0.2", ["10.0.0.7, 10.0.0.8"], "10.0.0.7"),
        # A peer that is no trusted proxy: the header is the client's own, ignored.
        ("198.51.100.7", ["203.0.113.9"], "198.51.100.7"),
        ("198.51.100.7", ["203.0.113.9", "203.0.113.10"], "198.51.100.7"),
        ("10.0.0.2", [], "10.0.0.2"),
    ],
)
def test_the_client_address_is_read_from_every_forwarded_line_through_trusted_proxies(
    peer: str, lines: list[str], client: str
) -> None:
    assert client_address(peer, lines, PROXIES.trusted_proxy_networks) == client


async def test_a_client_cannot_pick_its_bucket_through_x_forwarded_for(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    """Behind a proxy that adds a second header line, with a port, or garbage: the
    client's own lines change nothing, every request takes from one bucket."""
    settings = abuse_settings.model_copy(update={"rate_read_per_minute": 1, "rate_read_burst": 3})
    url = f"/api/v1/track/{'0' * 12}"
    async for client in replica(settings, pool, clock):
        spoofed = [
            [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "203.0.113.50")],
            [("X-Forwarded-For", "2.2.2.2, 3.3.3.3"), ("X-Forwarded-For", "203.0.113.50")],
            [("X-Forwarded-For", "203.0.113.50:40001")],
            [("X-Forwarded-For", "203.0.113.50:40002")],
        ]
        statuses = [(await client.get(url, headers=h)).status_code for h in spoofed]
        assert statuses == [404, 404, 404, 429]
        garbage = [[("X-Forwarded-For", f"unknown-{i}")] for i in range(4)]
        statuses = [(await client.get(url, headers=h)).status_code for h in garbage]
        assert statuses == [404, 404, 404, 429]  # the proxy's bucket (the peer)


async def test_an_untrusted_peers_x_forwarded_for_is_ignored(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={"trusted_proxies": ["10.0.0.0/8"], "rate_read_per_minute": 1, "rate_read_burst": 2}
    )
    url = f"/api/v1/track/{'0' * 12}"
    async for client in replica(settings, pool, clock):  # the peer is 127.0.0.1
        statuses = [
            (await client.get(url, headers=from_address(f"203.0.113.{i}"))).status_code
            for i in range(3)
        ]
        assert statuses == [404, 404, 429]


async def test_without_a_database_each_process_still_limits_by_itself() -> None:
    """A database that cannot be reached does not turn the limit into an outage: each
    process counts on its own (as before the shared limits) until it is back."""
    dead = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{free_port()}/none", min_size=0, max_size=1
    )
    assert dead is not None
    try:
        limiter = SharedRateLimiter(
            "read", 6, 2, pool=dead, hash_secret=b"k", clock=lambda: datetime.now(UTC)
        )
        waits = [await limiter.take("203.0.113.1") for _ in range(3)]
    finally:
        await dead.close()
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(10.0, abs=0.5)


async def test_a_station_attacked_from_many_addresses_is_limited_as_a_whole(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={"rate_station_per_minute": 1, "rate_station_burst": 3, "pow_auto_bits": 0}
    )
    async for first in replica(settings, pool, clock):
        async for second in replica(settings, pool, clock):
            statuses = []
            for i, client in enumerate((first, second, first, second)):
                answer = await client.post(
                    "/api/v1/opinions", json=opinion_body(), headers=from_address(f"10.9.0.{i}")
                )
                statuses.append(answer.status_code)
            assert statuses == [201, 201, 201, 429]
            assert int(answer.headers["retry-after"]) == 60
            # The refused one was rolled back; another station is not affected.
            assert await opinions_stored(pool) == 3
            elsewhere = await first.post(
                "/api/v1/opinions",
                json=opinion_body(station_code=COMMUNITY_STATION),
                headers=from_address("10.9.0.9"),
            )
            assert elsewhere.status_code == 201
            # Staff registering opinions at the station are not limited by it.
            staff = {"Authorization": token(settings, Role.LIAISON)}
            walk_in = await second.post(
                "/api/v1/opinions", json=opinion_body(channel="walk_in"), headers=staff
            )
            assert walk_in.status_code == 201


async def test_a_qr_page_over_the_station_limit_says_when_to_retry(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={"rate_station_per_minute": 1, "rate_station_burst": 1, "pow_auto_bits": 0}
    )
    async for client in replica(settings, pool, clock):
        answers = [
            await client.post(
                f"/q/{STATION}",
                data={"text": opinion_body()["text"], "idempotency_key": uuid.uuid4().hex},
                headers=from_address(f"10.6.0.{i}"),
            )
            for i in range(2)
        ]
        assert [a.status_code for a in answers] == [201, 429]
        assert answers[1].headers["retry-after"] == "60"
        assert "请求过于频繁" in answers[1].text
        assert answers[1].headers["content-type"].startswith("text/html")


async def test_station_limits_are_a_districts_data(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    async for client in replica(abuse_settings, pool, clock):
        await client.post("/api/v1/opinions", json=opinion_body(), headers=from_address("10.1.1.1"))
        await guard_on(client, abuse_settings)
    async with pool.acquire() as conn:
        # Unscoped, the service's role sees none of them; scoped, only its district's.
        for table in ("station_rate_buckets", "station_guards"):
            assert await conn.fetchval(f"SELECT count(*) FROM intake.{table}") == 0
            for district, expected in ((DISTRICT, 1), (OTHER_DISTRICT, 0)):
                async with conn.transaction():
                    await scope(conn, district)
                    found = await conn.fetchval(f"SELECT count(*) FROM intake.{table}")
                assert found == expected, (table, district)


async def test_idle_buckets_and_spent_challenges_are_swept(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    app = create_app(abuse_settings, pool=pool, clock=clock, background=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t") as client,
    ):
        intake = app.state.intake
        await guard_on(client, abuse_settings)
        first = (await client.post("/api/v1/opinions", json=opinion_body())).json()
        await client.post(
            "/api/v1/opinions",
            json=opinion_body(),
            headers={HEADER: solve(first["challenge"], BITS)},
        )
        await client.delete(
            f"/api/v1/stations/{STATION}/proof-of-work", headers=admin(abuse_settings)
        )
        await client.post("/api/v1/opinions", json=opinion_body())  # takes a station token
        limiters = (intake.submit_limiter, intake.read_limiter)
        assert await sweep(pool, clock(), intake.guard, limiters) == 0  # all of it is recent
        later = clock() + timedelta(days=2)
        assert await sweep(pool, later, intake.guard, limiters) >= 3
    async with pool.acquire() as conn, conn.transaction():
        await scope(conn, "*")
        for table in ("rate_buckets", "station_rate_buckets", "spent_challenges"):
            assert await conn.fetchval(f"SELECT count(*) FROM intake.{table}") == 0, table


# --- proof-of-work ----------------------------------------------------------------------


async def test_a_guarded_station_asks_for_a_proof_of_work_and_takes_a_solution(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    async for client in replica(abuse_settings, pool, clock):
        unguarded = await client.get(f"/api/v1/stations/{STATION}/challenge?district=demo")
        assert unguarded.json()["required"] is False
        await guard_on(client, abuse_settings)

        refused = await client.post("/api/v1/opinions", json=opinion_body())
        doc = problem_of(refused, 403, "proof-of-work-required")
        assert "JavaScript" in doc["detail_en"]
        assert "JavaScript" in doc["detail"]
        assert doc["difficulty"] == BITS

        offered = await client.get(f"/api/v1/stations/{STATION}/challenge?district=demo")
        assert offered.headers["cache-control"] == "no-store"
        challenge = offered.json()
        assert challenge["required"] is True
        for given in (challenge["challenge"], doc["challenge"]):
            accepted = await client.post(
                "/api/v1/opinions", json=opinion_body(), headers={HEADER: solve(given, BITS)}
            )
            assert accepted.status_code == 201, accepted.text
    assert await opinions_stored(pool) == 2


async def fresh(client: httpx.AsyncClient, station: str = STATION) -> str:
    """A challenge of the station, as its form's script gets it."""
    response = await client.get(f"/api/v1/stations/{station}/challenge?district=demo")
    challenge: str = response.json()["challenge"]
    return challenge


async def send(client: httpx.AsyncClient, proof: str, station: str = STATION) -> httpx.Response:
    """A resident's submission through ``station`` with ``proof``."""
    return await client.post(
        "/api/v1/opinions", json=opinion_body(station_code=station), headers={HEADER: proof}
    )


async def test_wrong_expired_reused_and_other_stations_solutions_are_refused(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    async for client in replica(abuse_settings, pool, clock):
        await guard_on(client, abuse_settings)
        await guard_on(client, abuse_settings, station=COMMUNITY_STATION)

        # Wrong: a nonce that does not solve it, a forged challenge, garbage.
        challenge = await fresh(client)
        nonce = 0
        while solves(challenge, str(nonce), BITS):
            nonce += 1
        wrong = await send(client, f"{challenge}:{nonce}")
        assert problem_of(wrong, 403, "proof-of-work-invalid")["challenge"]
        body, _, mac = challenge.partition(".")
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
        problem_of(await send(client, solve(forged, BITS)), 403, "proof-of-work-invalid")
        problem_of(await send(client, "not-a-proof"), 403, "proof-of-work-invalid")

        # Expired: solved too late.
        late = solve(await fresh(client), BITS)
        clock.now += timedelta(seconds=abuse_settings.pow_challenge_seconds + 1)
        problem_of(await send(client, late), 403, "proof-of-work-expired")

        # Reused: good once, whichever replica or request it comes with.
        proof = solve(await fresh(client), BITS)
        assert (await send(client, proof)).status_code == 201
        problem_of(await send(client, proof), 403, "proof-of-work-reused")

        # Another station's.
        theirs = solve(await fresh(client, COMMUNITY_STATION), BITS)
        problem_of(await send(client, theirs), 403, "proof-of-work-wrong-station")
        assert (await send(client, theirs, COMMUNITY_STATION)).status_code == 201
    assert await opinions_stored(pool) == 2


async def test_a_station_whose_limit_trips_asks_for_a_proof_of_work_by_itself(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={"rate_station_per_minute": 1, "rate_station_burst": 2, "pow_auto_bits": BITS}
    )
    async for first in replica(settings, pool, clock):
        async for second in replica(settings, pool, clock):
            for i in range(2):
                ok = await first.post(
                    "/api/v1/opinions", json=opinion_body(), headers=from_address(f"10.2.0.{i}")
                )
                assert ok.status_code == 201
            tripped = await second.post(
                "/api/v1/opinions", json=opinion_body(), headers=from_address("10.2.0.7")
            )
            doc = problem_of(tripped, 403, "proof-of-work-required")
            # Guarded, the station's bucket refills at its guarded rate while the
            # resident's phone solves: one token after 30 s at twice 1 a minute.
            clock.now += timedelta(seconds=30)
            solved = await first.post(
                "/api/v1/opinions",
                json=opinion_body(),
                headers=from_address("10.2.0.8", **{HEADER: solve(doc["challenge"], BITS)}),
            )
            assert solved.status_code == 201, solved.text
            state = await first.get(
                f"/api/v1/stations/{STATION}/proof-of-work", headers=admin(settings)
            )
            assert state.json()["mode"] == "auto"
            assert state.json()["difficulty"] == BITS
            assert state.json()["set_by"] == "intake"
            # It switches itself off after its time.
            clock.now += timedelta(minutes=settings.pow_auto_minutes, seconds=1)
            off = await first.get(
                f"/api/v1/stations/{STATION}/proof-of-work", headers=admin(settings)
            )
            assert off.json()["on"] is False
    assert await opinions_stored(pool) == 3


async def test_a_guarded_station_still_limits_valid_solutions_from_many_addresses(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    """A solution costs a script milliseconds: the station's bucket still counts every
    submission, with the guarded budget, across replicas and addresses."""
    settings = abuse_settings.model_copy(
        update={"rate_station_per_minute": 1, "rate_station_burst": 2}
    )
    budget = 2 * GUARDED_BUDGET
    async for first in replica(settings, pool, clock):
        async for second in replica(settings, pool, clock):
            await guard_on(first, settings)
            answers, proofs = [], []
            for i in range(budget + 1):
                client = (first, second)[i % 2]
                proofs.append(solve(await fresh(client), BITS))
                answers.append(
                    await client.post(
                        "/api/v1/opinions",
                        json=opinion_body(),
                        headers=from_address(f"10.3.0.{i}", **{HEADER: proofs[-1]}),
                    )
                )
            assert [a.status_code for a in answers] == [201] * budget + [429]
            refused = answers[-1]
            problem_of(refused, 429, "rate-limited")
            assert refused.headers["retry-after"] == "30"  # a token at twice 1 a minute
            assert "challenge" not in refused.json()  # the script does not solve again
            # The refused one rolled back, its solution unspent: good after the wait.
            assert await opinions_stored(pool) == budget
            clock.now += timedelta(seconds=30)
            again = await second.post(
                "/api/v1/opinions",
                json=opinion_body(),
                headers=from_address("10.3.0.99", **{HEADER: proofs[-1]}),
            )
            assert again.status_code == 201, again.text
    assert await opinions_stored(pool) == budget + 1


async def guard_state(client: httpx.AsyncClient, settings: IntakeSettings) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/stations/{STATION}/proof-of-work", headers=admin(settings)
    )
    state: dict[str, Any] = response.json()
    return state


async def until_refused(client: httpx.AsyncClient, address: str) -> httpx.Response:
    """Valid solutions through the station until one is refused; that answer."""
    for _ in range(10):
        challenge = (await client.get(f"/api/v1/stations/{STATION}/challenge?district=demo")).json()
        answer = await client.post(
            "/api/v1/opinions",
            json=opinion_body(),
            headers=from_address(
                address, **{HEADER: solve(challenge["challenge"], challenge["difficulty"])}
            ),
        )
        if answer.status_code != 201:
            return answer
    pytest.fail("the station's limit never tripped")


async def test_the_difficulty_rises_while_a_guarded_station_keeps_tripping(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={"rate_station_per_minute": 1, "rate_station_burst": 1, "pow_auto_bits": BITS}
    )
    async for first in replica(settings, pool, clock):
        async for second in replica(settings, pool, clock):
            await guard_on(first, settings)
            difficulties = []
            for minute in range(RAISE_BITS + 2):
                refused = await until_refused(first, f"10.4.{minute}.1")
                problem_of(refused, 429, "rate-limited")
                # Another replica's trip in the same minute does not raise it again.
                problem_of(await until_refused(second, "10.4.9.9"), 429, "rate-limited")
                difficulties.append((await guard_state(first, settings))["difficulty"])
                clock.now += RAISE_EVERY
            # Tripped within the minute it was switched on: as the admin set it; then a
            # bit a minute, up to RAISE_BITS more.
            assert difficulties == [BITS, BITS + 1, BITS + 2, BITS + 3, BITS + 4, BITS + 4]
            state = await guard_state(first, settings)
            assert state["mode"] == "manual"
            assert state["set_by"] == "admin_01"
            # A solution of the easier difficulty no longer does.
            easy = issue(DISTRICT, STATION, BITS, now=clock(), ttl=timedelta(minutes=1),
                         challenge_id=b"e" * 16)  # fmt: skip
            key = challenge_key(settings.intake_hash_secret)
            stale = await first.post(
                "/api/v1/opinions",
                json=opinion_body(),
                headers={HEADER: solve(easy.token(key), BITS)},
            )
            problem_of(stale, 403, "proof-of-work-invalid")


async def test_a_guard_that_switched_on_by_itself_stays_on_while_the_station_trips(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={"rate_station_per_minute": 1, "rate_station_burst": 1, "pow_auto_bits": BITS}
    )
    async for client in replica(settings, pool, clock):
        assert (await client.post("/api/v1/opinions", json=opinion_body())).status_code == 201
        tripped = await client.post("/api/v1/opinions", json=opinion_body())
        problem_of(tripped, 403, "proof-of-work-required")
        switched_on = datetime.fromisoformat((await guard_state(client, settings))["until"])
        clock.now += timedelta(minutes=settings.pow_auto_minutes - 1)
        problem_of(await until_refused(client, "10.5.0.1"), 429, "rate-limited")
        state = await guard_state(client, settings)
        assert datetime.fromisoformat(state["until"]) > switched_on
        assert state["difficulty"] == BITS + 1
        assert state["mode"] == "auto"


async def test_only_the_districts_admin_switches_a_guard(
    abuse_settings: IntakeSettings,
    directory: None,
    pool: asyncpg.Pool,
    clock: Clock,
    known: Known,
) -> None:
    await known(Role.DISTRICT_ADMIN, "admin_01", OTHER_DISTRICT)
    url = f"/api/v1/stations/{STATION}/proof-of-work"
    async for client in replica(abuse_settings, pool, clock):
        liaison = {"Authorization": token(abuse_settings, Role.LIAISON)}
        problem_of(
            await client.put(url, json={"difficulty": 10}, headers=liaison), 403, "role-not-allowed"
        )
        problem_of(await client.put(url, json={"difficulty": 10}), 401, "unauthenticated")
        elsewhere = admin(abuse_settings, OTHER_DISTRICT)
        problem_of(
            await client.put(url + "?district=demo", json={"difficulty": 10}, headers=elsewhere),
            404,
            "unknown-station",
        )
        too_hard = await client.put(url, json={"difficulty": 40}, headers=admin(abuse_settings))
        assert too_hard.status_code == 422
        on = await client.put(
            url, json={"difficulty": 10, "hours": 2}, headers=admin(abuse_settings)
        )
        assert on.json()["mode"] == "manual"
        assert on.json()["set_by"] == "admin_01"
        assert (await client.post("/api/v1/opinions", json=opinion_body())).status_code == 403
        off = await client.delete(url, headers=admin(abuse_settings))
        assert off.json()["on"] is False
        assert (await client.post("/api/v1/opinions", json=opinion_body())).status_code == 201


async def test_without_javascript_a_guarded_form_says_what_to_do(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    async for client in replica(abuse_settings, pool, clock):
        await guard_on(client, abuse_settings)
        page = await client.get(f"/q/{STATION}")
        assert f'data-pow="{BITS}"' in page.text
        noscript = page.text.split("<noscript>")[1].split("</noscript>")[0]
        assert noscript.index("请启用 JavaScript") < noscript.index("turn JavaScript on")
        form = {"text": opinion_body()["text"], "idempotency_key": uuid.uuid4().hex}
        posted = await client.post(f"/q/{STATION}", data=form)
        assert posted.status_code == 403
        assert "请在浏览器中启用 JavaScript" in posted.text
        posted_en = await client.post(f"/q/{STATION}", data={**form, "lang": "en"})
        assert "Turn JavaScript on" in posted_en.text
    assert await opinions_stored(pool) == 0


def test_a_challenge_says_its_station_and_expiry_and_is_checked_in_full() -> None:
    key = challenge_key(b"hash key")
    now = datetime.now(UTC)
    made = issue(DISTRICT, STATION, BITS, now=now, ttl=timedelta(minutes=5), challenge_id=b"i" * 16)
    proof = solve(made.token(key), BITS)
    checked = verify(proof, [key], district_id=DISTRICT, station_code=STATION, bits=BITS, now=now)
    assert checked == made
    with pytest.raises(ProofOfWorkInvalid):  # another key did not sign it
        verify(
            proof,
            [challenge_key(b"other")],
            district_id=DISTRICT,
            station_code=STATION,
            bits=BITS,
            now=now,
        )
    with pytest.raises(ProofOfWorkInvalid):  # the station asks for more than it offers
        verify(proof, [key], district_id=DISTRICT, station_code=STATION, bits=BITS + 4, now=now)
    with pytest.raises(ProofOfWorkWrongStation):
        verify(proof, [key], district_id=OTHER_DISTRICT, station_code=STATION, bits=BITS, now=now)
    with pytest.raises(ProofOfWorkExpired):
        verify(
            proof,
            [key],
            district_id=DISTRICT,
            station_code=STATION,
            bits=BITS,
            now=now + timedelta(minutes=6),
        )
    assert leading_zero_bits(bytes([0, 0x10]) + bytes(30)) == 11
    assert leading_zero_bits(bytes([0x80]) + bytes(31)) == 0


# --- payloads and attachments -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/api/v1/opinions", "json"),
        (f"/q/{STATION}", "form"),
        ("/api/v1/track/MQAAAAAAAAAA/feedback", "json"),
        ("/open311/v2/requests.json", "form"),
    ],
)
async def test_every_public_post_refuses_a_body_over_64_kb(
    abuse_settings: IntakeSettings,
    directory: None,
    pool: asyncpg.Pool,
    clock: Clock,
    path: str,
    kind: str,
) -> None:
    async for client in replica(abuse_settings, pool, clock):
        big = "灯" * 30_000  # 90 KB of UTF-8
        if kind == "json":
            answer = await client.post(path, json={"text": big})
        else:
            answer = await client.post(path, data={"text": big, "api_key": API_KEY})
        assert answer.status_code == 413, answer.text
    assert await opinions_stored(pool) == 0


async def test_attachments_are_limited_in_number_length_and_scheme(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    async for client in replica(abuse_settings, pool, clock):
        cases = {
            "too-many-attachments": [f"https://img.example.cn/{i}.jpg" for i in range(10)],
            "attachment-too-long": ["https://img.example.cn/" + "a" * 2000 + ".jpg"],
            "attachment-not-https": ["http://img.example.cn/1.jpg"],
        }
        for code, attachments in cases.items():
            answer = await client.post(
                "/api/v1/opinions", json=opinion_body(attachments=attachments)
            )
            assert answer.status_code == 422, answer.text
            assert code in [e["code"] for e in answer.json()["errors"]]
    assert await opinions_stored(pool) == 0


# --- the form in a browser ----------------------------------------------------------------


async def test_the_qr_form_solves_the_proof_of_work_in_a_browser_and_submits(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool
) -> None:
    """Chromium, under the real Content-Security-Policy: the guarded form's script asks
    for a challenge, solves it with WebCrypto and sends; nothing on the console."""
    bits = 10
    app = create_app(abuse_settings, pool=pool, background=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, not an event
        await asyncio.sleep(0.02)
    console: list[str] = []
    proofs: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
            await guard_on(api, abuse_settings, bits=bits)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page(locale="zh-CN")
                await page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
                page.on(
                    "console",
                    lambda m: (
                        console.append(f"{m.type}: {m.text}")
                        if m.type in ("error", "warning")
                        else None
                    ),
                )
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                page.on(
                    "request",
                    lambda r: (
                        proofs.append(r.headers.get(HEADER.lower(), ""))
                        if r.url.endswith("/api/v1/opinions")
                        else None
                    ),
                )
                await page.goto(f"http://127.0.0.1:{port}/q/{STATION}?district=demo")
                await page.fill("#text", "小区东门的路灯坏了一个星期，晚上很黑")
                await page.click("#send")
                link = page.locator("#result-link")
                await link.wait_for(state="visible", timeout=30_000)
                assert "/t/" in (await link.get_attribute("href") or "")
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await serving
    assert console == []
    assert len(proofs) == 1
    assert proofs[0]
    challenge, _, nonce = proofs[0].rpartition(":")
    assert solves(challenge, nonce, bits)
    assert await opinions_stored(pool) == 1


# --- the command line -------------------------------------------------------------------


def minqing(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", *args],
        env={**os.environ, "MINQING_DATABASE_URL": database_url, "MINQING_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_an_operator_switches_a_guard_from_the_command_line(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, database_url: str
) -> None:
    where = ["--district", DISTRICT, "--station", STATION]
    on = minqing("intake", "guard", "on", *where, "--difficulty", "12", "--hours", "2",
                 "--by", "ops_07", database_url=database_url)  # fmt: skip
    assert on.returncode == 0, on.stderr
    assert "difficulty 12" in on.stdout
    shown = minqing("intake", "guard", "show", *where, database_url=database_url)
    assert "已开启 / on" in shown.stdout
    assert "ops_07" in shown.stdout
    async for client in replica(abuse_settings, pool, Clock()):
        refused = await client.post("/api/v1/opinions", json=opinion_body())
        assert problem_of(refused, 403, "proof-of-work-required")["difficulty"] == 12
    off = minqing("intake", "guard", "off", *where, database_url=database_url)
    assert "已关闭 / switched off" in off.stdout
    assert (
        "未开启 / off"
        in minqing("intake", "guard", "show", *where, database_url=database_url).stdout
    )
    unknown = minqing(
        "intake", "guard", "on", "--district", DISTRICT, "--station", "nowhere",
        database_url=database_url,
    )  # fmt: skip
    assert unknown.returncode != 0
    assert "no station 'nowhere'" in unknown.stderr
    too_hard = minqing(
        "intake", "guard", "on", *where, "--difficulty", "40", database_url=database_url
    )
    assert too_hard.returncode != 0


# --- a rotation of the hash key -----------------------------------------------------------

OLD_HASH_KEY = "hash-key-before-the-rotation-0c3f6b9e2a5d8c1f"
NEW_HASH_KEY = "hash-key-after-the-rotation-7a0d3f6c9b2e5a8d1f"


def hash_keys(settings: IntakeSettings, *, previous: bool) -> IntakeSettings:
    """``settings`` after a rotation of the hash key (with or without the old one kept)."""
    return settings.model_copy(
        update={
            "intake_hash_key": NEW_HASH_KEY,
            "intake_hash_key_id": "k2",
            "intake_hash_previous_keys": {"k1": OLD_HASH_KEY} if previous else {},
        }
    )


async def test_a_challenge_signed_with_the_previous_key_is_accepted_until_it_expires(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    before = abuse_settings.model_copy(
        update={"intake_hash_key": OLD_HASH_KEY, "intake_hash_key_id": "k1"}
    )
    async for old in replica(before, pool, clock):
        await guard_on(old, before)
        kept, dropped, late = [solve(await fresh(old), BITS) for _ in range(3)]
    async for rotated in replica(hash_keys(abuse_settings, previous=True), pool, clock):
        assert (await send(rotated, kept)).status_code == 201
        clock.now += timedelta(seconds=abuse_settings.pow_challenge_seconds + 1)
        problem_of(await send(rotated, late), 403, "proof-of-work-expired")
    async for forgotten in replica(hash_keys(abuse_settings, previous=False), pool, clock):
        problem_of(await send(forgotten, dropped), 403, "proof-of-work-invalid")
    assert await opinions_stored(pool) == 1


async def test_a_clients_bucket_is_carried_over_a_rotation_of_the_hash_key(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    limits = {"rate_read_per_minute": 1, "rate_read_burst": 2}
    before = abuse_settings.model_copy(
        update={**limits, "intake_hash_key": OLD_HASH_KEY, "intake_hash_key_id": "k1"}
    )
    url = f"/api/v1/track/{'0' * 12}"
    who = from_address("198.51.100.40")
    async for old in replica(before, pool, clock):
        assert [(await old.get(url, headers=who)).status_code for _ in range(3)] == [
            404,
            404,
            429,
        ]
    rotated = hash_keys(abuse_settings.model_copy(update=limits), previous=True)
    async for new in replica(rotated, pool, clock):
        # The same client under the new key: still waiting, not a fresh burst.
        problem_of(await new.get(url, headers=who), 429, "rate-limited")
        # A client seen by no one before gets its burst.
        other = from_address("198.51.100.41")
        assert (await new.get(url, headers=other)).status_code == 404
        # Once refilled, the carried bucket serves again, now under the new key.
        clock.now += timedelta(minutes=1)
        assert (await new.get(url, headers=who)).status_code == 404
        problem_of(await new.get(url, headers=who), 429, "rate-limited")
    buckets = await pool.fetchval("SELECT count(*) FROM intake.rate_buckets WHERE bucket = 'read'")
    assert buckets == 3  # the old hash's, the new hash's, the other client's


# --- Open311 clients ------------------------------------------------------------------------

OTHER_API_KEY = "k-demo-second-client-5b8e1d4a"


def open311_form(api_key: str) -> dict[str, str]:
    return {
        "api_key": api_key,
        "jurisdiction_id": DISTRICT,
        "service_code": "municipal.road",
        "lat": "39.9612",
        "long": "116.3301",
        "description": "路口有个大坑，下雨积水，电动车容易摔倒。",
    }


async def test_an_open311_client_key_has_a_limit_shared_by_the_replicas(
    abuse_settings: IntakeSettings, directory: None, pool: asyncpg.Pool, clock: Clock
) -> None:
    settings = abuse_settings.model_copy(
        update={
            "open311_api_keys": {DISTRICT: [API_KEY, OTHER_API_KEY]},
            "rate_open311_per_minute": 2,
            "rate_open311_burst": 2,
        }
    )
    async for first in replica(settings, pool, clock):
        async for second in replica(settings, pool, clock):
            # From three addresses: the key is the client, whatever address it comes from.
            answers = [
                await client.post(
                    "/open311/v2/requests.json",
                    data=open311_form(API_KEY),
                    headers=from_address(f"203.0.113.{n}"),
                )
                for n, client in enumerate((first, second, first))
            ]
            assert [a.status_code for a in answers] == [200, 200, 429]
            refused = answers[-1]
            assert refused.headers["retry-after"] == "30"
            [error] = refused.json()
            assert error["code"] == 429
            assert "Too many requests" in error["description"]
            assert "Retry in 30 s" in error["description"]
            assert "请求过于频繁" in error["description"]
            xml = await second.post("/open311/v2/requests.xml", data=open311_form(API_KEY))
            assert xml.status_code == 429
            assert "<code>429</code>" in xml.text
            # Another client of the district has its own budget.
            theirs = await second.post(
                "/open311/v2/requests.json", data=open311_form(OTHER_API_KEY)
            )
            assert theirs.status_code == 200, theirs.text
            clock.now += timedelta(seconds=30)
            again = await second.post("/open311/v2/requests.json", data=open311_form(API_KEY))
            assert again.status_code == 200, again.text
    stored = str([dict(r) for r in await pool.fetch("SELECT * FROM intake.rate_buckets")])
    assert API_KEY not in stored
    assert API_KEY.encode().hex() not in stored
