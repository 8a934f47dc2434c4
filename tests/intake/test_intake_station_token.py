"""A station's token is taken as the submission commits, inside the server: the bucket's
row, which every submission through the station updates, is never locked across a round
trip to intake (``migrations/0012_station_token_at_commit.sql``). Real PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from contracts import Channel
from eventkit.db import Conn, scoped
from services.intake.bootstrap import Intake
from services.intake.submission_rules import Place, SubmitOpinion
from tests.intake.intake_support import DISTRICT, STATION

COMMAND = SubmitOpinion(
    channel=Channel.QR, text="小区东门的路灯坏了三个多月，希望尽快修好。", station_code=STATION
)


async def bucket(pool: asyncpg.Pool) -> tuple[float, datetime]:
    """The station's tokens and last update, read without waiting for a lock."""
    async with pool.acquire() as conn, scoped(conn, DISTRICT):
        await conn.execute("SET LOCAL lock_timeout = '1s'")
        row = await conn.fetchrow(
            "SELECT tokens, updated_at FROM intake.station_rate_buckets "
            "WHERE district_id = $1 AND station_code = $2 FOR UPDATE",
            DISTRICT,
            STATION,
        )
    assert row is not None
    return row["tokens"], row["updated_at"]


async def test_a_stations_bucket_is_untouched_until_the_submission_commits(
    intake: Intake, directory: None, pool: asyncpg.Pool
) -> None:
    await intake.guard.submit(intake.submissions, COMMAND, proof=None, key=None, metadata=None)
    before = await bucket(pool)
    seen: list[tuple[float, datetime]] = []

    async def look(conn: Conn, place: Place) -> None:
        # Inside the submission's transaction, its token asked for, its work done:
        # another submission may lock the station's row at once.
        seen.append(await bucket(pool))

    place = await intake.submissions.place(COMMAND)
    claim = intake.guard.token_claim(place, guarded=False)
    await intake.submissions.submit(COMMAND, None, admit=look, settings=claim)
    after = await bucket(pool)
    assert seen == [before]
    assert after[1] > before[1]


async def test_a_submission_takes_one_token_of_its_station_at_commit(
    intake: Intake, directory: None, pool: asyncpg.Pool
) -> None:
    await intake.guard.submit(intake.submissions, COMMAND, proof=None, key=None, metadata=None)
    tokens, _ = await bucket(pool)
    assert tokens == intake.settings.rate_station_burst - 1
