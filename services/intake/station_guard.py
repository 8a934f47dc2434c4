"""A station's guard against floods from many addresses: its shared submission limit and
the proof-of-work its QR form then asks for.

Each replica limits each client address (``ratelimit.py``); a QR code under attack from
many addresses is limited as a whole here. A public submission through a station:

1. when the station is guarded (a district admin switched the guard on, or the station's
   limit tripped, below), must carry a solution of a challenge for that station
   (``proof_of_work.py``), checked before any work is done; without one it is refused
   with a fresh challenge, which the form's script solves before sending again;
2. in the transaction that stores it, spends the solution (single use), then takes a
   token of the station's bucket (``intake.station_rate_buckets``) as the transaction
   commits: the submission declares the token it needs (:data:`TOKEN_SETTING`, in the
   round trip that begins its transaction) and a deferred trigger takes it inside the
   server's commit (migration
   ``0012_station_token_at_commit.sql``), so that the one row every submission through
   the station updates is locked for the commit only, never across a round trip to this
   process and its turn in the event loop. A station without tokens left refuses the
   commit: the transaction rolls back (the solution is not spent) and the station's
   limit has tripped (below).

While a station is guarded its submissions still take tokens of the same bucket, with a
budget ``GUARDED_BUDGET`` times larger (rate and burst): a solution costs a script
milliseconds in native code, so the work alone does not limit a flood from many
addresses; the larger budget leaves room for residents whose phones solve more slowly.

When the station's limit trips:

- unguarded, the guard switches on by itself at ``pow_auto_bits`` for
  ``pow_auto_minutes``, and the submission is refused with a challenge (unless
  ``pow_auto_bits`` is 0: then the answer is 429 with Retry-After);
- guarded, the answer is 429 with Retry-After, and the difficulty rises by one bit (each
  bit doubles the work) at most once per ``RAISE_EVERY`` while the station keeps
  tripping, up to ``RAISE_BITS`` above ``pow_auto_bits`` (an admin's higher difficulty is
  never lowered); a guard that switched on by itself stays on ``pow_auto_minutes`` after
  the last trip, then goes off, and the next trip starts again at ``pow_auto_bits``. With
  ``pow_auto_bits`` 0 nothing is automatic: an admin's guard keeps its difficulty.

Whether a station is guarded, and how hard, is read at most once per
``directory_cache_seconds`` per process; a change reaches every replica within that time
(at once in the replica that made it).

The tables hold a district's data: every statement runs in a transaction scoped to the
station's district (row-level security), the sweeper's in one declared for all districts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from contracts.envelope import Metadata
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, Conn, district_transaction, scope
from eventkit.logging import get_logger
from eventkit.refusals import InvalidInput
from services.intake.idempotency import IdempotencyKey
from services.intake.proof_of_work import (
    MAX_BITS,
    Challenge,
    ProofOfWorkRefusal,
    ProofOfWorkRequired,
    ProofOfWorkReused,
    challenge_key,
    issue,
    verify,
)
from services.intake.ratelimit import SharedRateLimiter, rate_limited
from services.intake.settings import IntakeSettings
from services.intake.submission import Admission, Receipt, Submissions
from services.intake.submission_rules import PUBLIC_CHANNELS, Place, SubmitOpinion

log = get_logger(__name__)

TOKEN_SETTING: Final = "minqing.station_token"
"""The transaction-local setting that asks the commit for a station's token (JSON:
district, station, burst, rate per second, the moment)."""
STATION_EMPTY: Final = "MQ201"
"""The SQLSTATE of a commit refused for want of a station's token (DETAIL: the tokens
there were)."""
SYSTEM: Final = "intake"
"""Who switched a guard on when it switched on by itself."""

Station = tuple[str, str]
"""(district id, station code)."""
GUARDED_BUDGET: Final = 2
"""A guarded station's bucket holds and refills this many times the unguarded budget."""
RAISE_BITS: Final = 4
"""How far above ``pow_auto_bits`` the difficulty rises while the station keeps tripping
(4 bits: 16 times the work; 18 bits with the defaults)."""
RAISE_EVERY: Final = timedelta(minutes=1)
"""The difficulty rises by one bit at most this often."""


@dataclass(frozen=True)
class GuardState:
    """A station's guard as stored: on until ``until`` (None: until switched off)."""

    district_id: str
    station_code: str
    difficulty: int
    mode: str
    """``manual`` (a district admin) or ``auto`` (the station's limit tripped)."""
    until: datetime | None
    set_by: str
    set_at: datetime

    def active(self, now: datetime) -> bool:
        """Whether the guard is on at ``now``."""
        return self.until is None or self.until > now


class DifficultyOutOfRange(InvalidInput):
    """A difficulty an admin asked for that is too easy to matter or too hard to solve."""

    code = "difficulty-out-of-range"

    def __init__(self) -> None:
        super().__init__(
            "难度超出范围",
            "Difficulty out of range",
            f"难度为 1 到 {MAX_BITS} 位",
            f"The difficulty is 1 to {MAX_BITS} bits",
        )


class _StationFull(Exception):
    """The station's bucket is empty: the submission's transaction rolls back."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


class StationGuard:
    """Stations' shared limits and proof-of-work (see the module's note)."""

    def __init__(self, pool: asyncpg.Pool, settings: IntakeSettings, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        self.per_minute = settings.rate_station_per_minute
        self.burst = settings.rate_station_burst
        self.auto_bits = settings.pow_auto_bits
        self.auto_minutes = settings.pow_auto_minutes
        self.challenge_ttl = timedelta(seconds=settings.pow_challenge_seconds)
        self._cache_seconds = settings.directory_cache_seconds
        self._keys = tuple(challenge_key(secret) for secret in settings.intake_hash_secrets)
        """Challenge keys, the current one first (it signs; every one verifies)."""
        self._known: dict[Station, tuple[float, GuardState | None]] = {}
        self.max_bits = min(MAX_BITS, self.auto_bits + RAISE_BITS) if self.auto_bits > 0 else 0
        """The highest difficulty a station's trips raise its guard to (0: never raised)."""
        self._full: dict[tuple[Station, bool], float] = {}
        """(station, guarded): until when this process answers 429 without asking."""

    # --- the guard's state ------------------------------------------------------------

    async def state(self, district_id: str, station_code: str) -> GuardState | None:
        """The station's guard as stored (active or expired), read now."""
        async with district_transaction(self._pool, district_id) as conn:
            row = await conn.fetchrow(
                "SELECT * FROM intake.station_guards WHERE district_id = $1 AND station_code = $2",
                district_id,
                station_code,
            )
        state = GuardState(**dict(row)) if row is not None else None
        self._known[(district_id, station_code)] = (time.monotonic(), state)
        return state

    async def required_bits(self, district_id: str, station_code: str) -> int:
        """The difficulty a submission through the station must solve now (0: none)."""
        known = self._known.get((district_id, station_code))
        if known is not None and time.monotonic() - known[0] < self._cache_seconds:
            state = known[1]
        else:
            state = await self.state(district_id, station_code)
        return state.difficulty if state is not None and state.active(self._clock()) else 0

    async def switch_on(
        self, district_id: str, station_code: str, difficulty: int, hours: float | None, by: str
    ) -> GuardState:
        """A district admin's guard: on until switched off, or for ``hours``."""
        if not 1 <= difficulty <= MAX_BITS:
            raise DifficultyOutOfRange()
        now = self._clock()
        until = now + timedelta(hours=hours) if hours is not None else None
        async with district_transaction(self._pool, district_id) as conn:
            await conn.execute(
                """
                INSERT INTO intake.station_guards AS g
                    (district_id, station_code, difficulty, mode, until, set_by, set_at)
                VALUES ($1, $2, $3, 'manual', $4, $5, $6)
                ON CONFLICT (district_id, station_code) DO UPDATE
                   SET difficulty = $3, mode = 'manual', until = $4, set_by = $5, set_at = $6
                """,
                district_id,
                station_code,
                difficulty,
                until,
                by,
                now,
            )
        self._forget_full((district_id, station_code))
        log.warning(
            "station guard switched on",
            district=district_id,
            station=station_code,
            difficulty=difficulty,
            by=by,
        )
        state = await self.state(district_id, station_code)
        assert state is not None
        return state

    async def switch_off(self, district_id: str, station_code: str, by: str) -> bool:
        """Switch the guard off (whoever switched it on); whether one was on."""
        async with district_transaction(self._pool, district_id) as conn:
            status = await conn.execute(
                "DELETE FROM intake.station_guards WHERE district_id = $1 AND station_code = $2",
                district_id,
                station_code,
            )
        self._known[(district_id, station_code)] = (time.monotonic(), None)
        self._forget_full((district_id, station_code))
        log.warning("station guard switched off", district=district_id, station=station_code, by=by)
        return status.split()[-1] != "0"

    def _forget_full(self, station: Station) -> None:
        for guarded in (False, True):
            self._full.pop((station, guarded), None)

    async def _trip(self, district_id: str, station_code: str) -> int:
        """The station's limit tripped: switch the guard on by itself (none on, or it is
        over), or make the guard that is on harder (one bit, at most once per
        ``RAISE_EVERY``, up to ``max_bits``; an auto guard also stays on
        ``pow_auto_minutes`` from now, an admin's keeps its end). The difficulty the
        station asks for now (0: none)."""
        if self.auto_bits <= 0:
            return 0
        now = self._clock()
        async with district_transaction(self._pool, district_id) as conn:
            row = await conn.fetchrow(
                """
                INSERT INTO intake.station_guards AS g
                    (district_id, station_code, difficulty, mode, until, set_by, set_at)
                VALUES ($1, $2, $3, 'auto', $4, $5, $6)
                ON CONFLICT (district_id, station_code) DO UPDATE SET
                    difficulty = CASE
                        WHEN g.until <= $6 THEN $3
                        WHEN g.set_at <= $7 THEN GREATEST(g.difficulty, LEAST(g.difficulty + 1, $8))
                        ELSE g.difficulty END,
                    mode = CASE WHEN g.until <= $6 THEN 'auto' ELSE g.mode END,
                    until = CASE WHEN g.until <= $6 OR g.mode = 'auto' THEN $4 ELSE g.until END,
                    set_by = CASE WHEN g.until <= $6 THEN $5 ELSE g.set_by END,
                    set_at = CASE
                        WHEN g.until <= $6 THEN $6
                        WHEN g.set_at <= $7 AND g.difficulty < $8 THEN $6
                        ELSE g.set_at END
                RETURNING difficulty, mode
                """,
                district_id,
                station_code,
                self.auto_bits,
                now + timedelta(minutes=self.auto_minutes),
                SYSTEM,
                now,
                now - RAISE_EVERY,
                self.max_bits,
            )
        assert row is not None
        log.warning(
            "station limit tripped: proof-of-work on",
            district=district_id,
            station=station_code,
            difficulty=row["difficulty"],
            mode=row["mode"],
        )
        state = await self.state(district_id, station_code)
        return state.difficulty if state is not None and state.active(now) else 0

    # --- challenges ---------------------------------------------------------------------

    def challenge(self, district_id: str, station_code: str, bits: int) -> dict[str, Any]:
        """A fresh challenge for the station, as the API gives it."""
        fresh = issue(
            district_id,
            station_code,
            bits,
            now=self._clock(),
            ttl=self.challenge_ttl,
            challenge_id=secrets.token_bytes(16),
        )
        return fresh.as_json(self._keys[0])

    def _check(self, proof: str | None, station: Station, bits: int) -> Challenge:
        fresh = self.challenge(*station, bits or max(self.auto_bits, 1))
        if not proof:
            raise ProofOfWorkRequired(fresh)
        try:
            return verify(
                proof,
                self._keys,
                district_id=station[0],
                station_code=station[1],
                bits=bits,
                now=self._clock(),
            )
        except ProofOfWorkRefusal as refusal:
            refusal.extra.update(fresh)  # so that the script solves again at once
            raise

    # --- submissions --------------------------------------------------------------------

    async def submit(
        self,
        submissions: Submissions,
        command: SubmitOpinion,
        *,
        proof: str | None,
        key: IdempotencyKey | None,
        metadata: Metadata | None,
    ) -> Receipt:
        """A resident's submission (no token), through its station's guard and limit."""
        place = None
        if command.channel in PUBLIC_CHANNELS and command.station_code is not None:
            place = await submissions.place(command)  # a refusal here is the submission's
        if place is None or place.station is None:
            return await submissions.submit(command, None, key=key, metadata=metadata)
        station = (place.district_id, place.station.station_code)
        bits = await self.required_bits(*station)
        # A solution is checked even where this process does not know of a guard yet:
        # the challenge came from a replica that did.
        solution = self._check(proof, station, bits) if bits or proof else None
        guarded = solution is not None
        now = self._clock().timestamp()
        if (full := self._full.get((station, guarded), 0.0) - now) > 0:
            raise rate_limited(full)  # told a moment ago: no work for a known answer
        budget = GUARDED_BUDGET if guarded else 1
        try:
            try:
                return await submissions.submit(
                    command,
                    None,
                    key=key,
                    metadata=metadata,
                    admit=self.admission(solution),
                    settings=self.token_claim(place, guarded=guarded),
                )
            except asyncpg.PostgresError as exc:
                if exc.sqlstate != STATION_EMPTY:
                    raise
                had = float(getattr(exc, "detail", None) or 0.0)
                raise _StationFull((1.0 - had) / (self.per_minute * budget / 60.0)) from None
        except _StationFull as exc:
            required = await self._trip(*station)  # a guard on, or a harder one
            if required and not guarded:
                raise ProofOfWorkRequired(self.challenge(*station, required)) from None
            self._full[(station, guarded)] = now + exc.wait
            raise rate_limited(exc.wait) from None

    def token_claim(self, place: Place, *, guarded: bool) -> dict[str, str]:
        """What a public submission through ``place``'s station declares as it begins
        (``Submissions.submit``'s settings): the station's token its commit takes
        (guarded: from the larger budget), the module's note."""
        assert place.station is not None
        budget = GUARDED_BUDGET if guarded else 1
        claim = {
            "district_id": place.district_id,
            "station_code": place.station.station_code,
            "burst": float(self.burst * budget),
            "rate": self.per_minute * budget / 60.0,
            "now": self._clock().isoformat(),
        }
        return {TOKEN_SETTING: json.dumps(claim)}

    def admission(self, solution: Challenge | None) -> Admission | None:
        """The last step of a guarded submission's transaction: spend ``solution``
        (single use). None without one: the station's token needs no step of its own."""
        if solution is None:
            return None

        async def admit(conn: Conn, place: Place) -> None:
            assert place.station is not None
            # The submission's transaction is scoped to the place's district already.
            district, station = place.district_id, place.station.station_code
            spent = await conn.fetchval(
                "INSERT INTO intake.spent_challenges (challenge_id, district_id, expires_at) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
                solution.challenge_id,
                district,
                solution.expires_at,
            )
            if not spent:
                raise ProofOfWorkReused(self.challenge(district, station, solution.bits))

        return admit

    # --- clean-up -----------------------------------------------------------------------

    async def sweep(self, conn: Conn, now: datetime) -> int:
        """Forget what no longer matters, in every district: spent challenges past their
        expiry (they can no longer be replayed), guards switched off by time, station
        buckets idle long enough to be full again."""
        full = timedelta(seconds=math.ceil(self.burst / (self.per_minute / 60.0)))
        await scope(conn, ALL_DISTRICTS)
        deleted = 0
        for statement, moment in (
            ("DELETE FROM intake.spent_challenges WHERE expires_at < $1", now),
            ("DELETE FROM intake.station_guards WHERE until < $1", now),
            ("DELETE FROM intake.station_rate_buckets WHERE updated_at < $1", now - full),
        ):
            deleted += int((await conn.execute(statement, moment)).split()[-1])
        return deleted


async def sweep(
    pool: asyncpg.Pool, now: datetime, guard: StationGuard, limiters: Sequence[SharedRateLimiter]
) -> int:
    """Every clean-up of the limits in one transaction; how many rows went."""
    async with pool.acquire() as conn, conn.transaction():
        deleted = await guard.sweep(conn, now)
        for limiter in limiters:
            deleted += await limiter.sweep(conn, now)
    return deleted


async def run_sweeper(
    stop: asyncio.Event,
    *,
    pool: asyncpg.Pool,
    clock: Clock,
    guard: StationGuard,
    limiters: Sequence[SharedRateLimiter],
    interval: float,
) -> None:
    """Sweep every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            deleted = await sweep(pool, clock(), guard, limiters)
            if deleted:
                log.info("rate limits swept", rows=deleted)
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            log.error("sweeping rate limits failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
