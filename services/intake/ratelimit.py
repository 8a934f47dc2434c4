"""Rate limits of the public endpoints, shared by every intake replica through PostgreSQL.

A token bucket per (limit, client) in ``intake.rate_buckets``: ``burst`` tokens, refilled
at ``per_minute``. One check is one statement (an ``INSERT … ON CONFLICT DO UPDATE``
that refills and takes a token, or leaves the row as it is when there is none), in
autocommit: the row is locked for the statement only, and a refused request (invalid
input, a 422) has spent its token all the same. The client is a keyed hash of its
address (an IPv6 client by its /64), never the address: an address is personal data.

In front of the database, each process remembers for how long it told a client to wait
(:class:`SharedRateLimiter`): a client hammering after a 429 is answered without a round
trip, and can never get more than the shared limit from it. When the database cannot be
reached, or does not answer within ``timeout``, each process falls back to buckets of its
own (:class:`RateLimiter`, per process as before): reads that need no database (the home
page, static files) keep working, and a replica still refuses a flood by itself.

The same bucket, on ``intake.station_rate_buckets``, limits a station's submissions
from every address together (``station_guard.py``), taken by a trigger as the submission
commits (``migrations/0012_station_token_at_commit.sql``, the same arithmetic in SQL).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any, Final

import asyncpg

from eventkit.db import Conn, is_database_unavailable
from eventkit.http import Problem
from eventkit.logging import get_logger

log = get_logger(__name__)

_CLIENT_PURPOSE: Final = b"minqing intake rate-limit client v1"
_IPV6_PREFIX: Final = 64
"""An IPv6 client is its /64: one subscriber line holds that many addresses."""
_FALLBACK_LOG_SECONDS: Final = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key in this process: ``burst`` tokens, refilled at
    ``per_minute`` per minute. The fallback of :class:`SharedRateLimiter`."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when allowed, else the seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                # The least recently seen client forgets its bucket: it was (nearly) full.
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def bucket_statement(table: str, keys: Sequence[str], *, carried: bool = False) -> str:
    """The one statement of a check on ``table`` keyed by ``keys`` ($1…$n), then burst,
    rate per second and now: refill and take a token, or leave the row as it is.
    Answers ``allowed`` and, when refused, ``had`` (the tokens there were).

    ``carried``: the last key is a keyed hash and the hash key was rotated; one more
    parameter ($n+4, ``bytea``) gives the client's hash under the previous key. A client
    with no bucket under the current key starts from what its bucket under the previous
    key holds (refilled since), not from a full one: a rotation does not hand every
    client a fresh burst. One previous key, a scalar: with an array (``= ANY``) the
    statement was planned afresh at every check (450 µs instead of 150 µs, measured)."""
    n = len(keys)
    burst, rate, now = f"${n + 1}::float8", f"${n + 2}::float8", f"${n + 3}::timestamptz"

    def refilled(row: str) -> str:
        elapsed = f"GREATEST(0, EXTRACT(EPOCH FROM {now} - {row}updated_at)::float8)"
        return f"LEAST({burst}, {row}tokens + {elapsed} * {rate})"

    columns = ", ".join(keys)
    values = ", ".join(f"${i + 1}" for i in range(n))
    match = " AND ".join(f"{k} = ${i + 1}" for i, k in enumerate(keys))
    current = f"(SELECT {refilled('')} FROM {table} WHERE {match})"
    insert = f"VALUES ({values}, {burst} - 1, {now})"
    if carried:
        earlier = " AND ".join(
            [*(f"{k} = ${i + 1}" for i, k in enumerate(keys[:-1])), f"{keys[-1]} = ${n + 4}::bytea"]
        )
        before = f"(SELECT min({refilled('')}) FROM {table} WHERE {earlier})"
        start = (
            f"CASE WHEN EXISTS (SELECT 1 FROM {table} WHERE {match}) THEN {burst} "
            f"ELSE COALESCE({before}, {burst}) END"
        )
        insert = (
            f"SELECT {values}, s.tokens - 1, {now} FROM (SELECT {start} AS tokens) AS s "
            "WHERE s.tokens >= 1"
        )
        current = f"COALESCE({current}, {before})"
    return f"""
        WITH taken AS (
            INSERT INTO {table} AS b ({columns}, tokens, updated_at)
            {insert}
            ON CONFLICT ({columns}) DO UPDATE
               SET tokens = {refilled("b.")} - 1,
                   updated_at = GREATEST(b.updated_at, {now})
             WHERE {refilled("b.")} >= 1
            RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM taken) AS allowed, {current} AS had
        """


async def take_token(
    conn: Conn,
    statement: str,
    keys: Sequence[Any],
    *,
    per_minute: float,
    burst: int,
    now: datetime,
    timeout: float | None = None,
    earlier: bytes | None = None,
) -> float:
    """Run a :func:`bucket_statement`: 0.0 when a token was taken, else the seconds to
    wait for the next one. ``earlier``: the last key under the previous hash key, for a
    statement made ``carried``."""
    rate = per_minute / 60.0
    extra = () if earlier is None else (earlier,)
    row = await conn.fetchrow(statement, *keys, float(burst), rate, now, *extra, timeout=timeout)
    assert row is not None
    if row["allowed"]:
        return 0.0
    had = row["had"]
    # ``had`` is missing only when another request created the bucket meanwhile.
    return (1.0 - (had if had is not None else 0.0)) / rate


_CLIENT_STATEMENT: Final = bucket_statement("intake.rate_buckets", ["bucket", "client"])
_CARRIED_STATEMENT: Final = bucket_statement(
    "intake.rate_buckets", ["bucket", "client"], carried=True
)


class SharedRateLimiter:
    """One public limit (``name``: ``submit``, ``read``, ``open311``) shared by every
    replica.

    Clients are keyed hashes under the current hash key. With previous keys
    (``previous_secrets``, after a rotation of ``MINQING_INTAKE_HASH_KEY``) a client's
    first check under the new key carries its bucket over from the hash under the first
    previous key (the one just replaced: list it first), so a rotation neither forgets
    who was told to wait nor refills everyone's burst; the old rows are swept once
    idle."""

    def __init__(
        self,
        name: str,
        per_minute: float,
        burst: int,
        *,
        pool: asyncpg.Pool,
        hash_secret: bytes,
        previous_secrets: Sequence[bytes] = (),
        clock: Callable[[], datetime],
        timeout: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.name = name
        self.per_minute = per_minute
        self.burst = burst
        self._pool = pool
        self._key = _client_key(hash_secret)
        self._previous = tuple(_client_key(secret) for secret in previous_secrets)
        self._clock = clock
        self._timeout = timeout
        self._monotonic = monotonic
        self._max_keys = max_keys
        self._waiting: OrderedDict[bytes, float] = OrderedDict()
        """Clients told to wait, and until when (the clock's seconds): answered here."""
        self.fallback = RateLimiter(per_minute, burst, clock=monotonic, max_keys=max_keys)
        self._fallback_logged = -math.inf

    def client(self, address: str) -> bytes:
        """The bucket's key for ``address``: a keyed hash (16 bytes), IPv6 by its /64."""
        return _client_hash(self._key, address)

    def client_before(self, address: str) -> bytes | None:
        """The bucket's key for ``address`` under the (first) previous hash key."""
        return _client_hash(self._previous[0], address) if self._previous else None

    async def take(self, address: str) -> float:
        """Take a token for ``address``: 0.0 when allowed, else the seconds to wait."""
        client = self.client(address)
        moment = self._clock()
        now = moment.timestamp()
        until = self._waiting.get(client)
        if until is not None:
            if until > now:
                return until - now
            del self._waiting[client]
        earlier = self.client_before(address)
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                wait = await take_token(
                    conn,
                    _CLIENT_STATEMENT if earlier is None else _CARRIED_STATEMENT,
                    (self.name, client),
                    per_minute=self.per_minute,
                    burst=self.burst,
                    now=moment,
                    timeout=self._timeout,
                    earlier=earlier,
                )
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            return self._take_here(client, exc)
        if wait > 0:
            self._waiting[client] = now + wait
            if len(self._waiting) > self._max_keys:
                self._waiting.popitem(last=False)
        return wait

    def _take_here(self, client: bytes, exc: BaseException) -> float:
        now = self._monotonic()
        if now - self._fallback_logged > _FALLBACK_LOG_SECONDS:
            self._fallback_logged = now
            log.warning(
                "rate limit counted per process: no database", limit=self.name, error=repr(exc)
            )
        return self.fallback.take(client.hex())

    async def sweep(self, conn: Conn, now: datetime) -> int:
        """Delete the buckets idle long enough to be full again (the same as none)."""
        full = timedelta(seconds=self.burst / (self.per_minute / 60.0))
        status = await conn.execute(
            "DELETE FROM intake.rate_buckets WHERE bucket = $1 AND updated_at < $2",
            self.name,
            now - full,
        )
        return int(status.split()[-1])


def _client_key(hash_secret: bytes) -> bytes:
    """The key of the clients' hashes, derived from intake's hash key."""
    return hmac.new(hash_secret, _CLIENT_PURPOSE, hashlib.sha256).digest()


def _client_hash(key: bytes, address: str) -> bytes:
    """A client's keyed hash (16 bytes): its canonical address, an IPv6 one by its /64
    (any other text, an Open311 client's key, as it is)."""
    try:
        ip = ip_address(address)
    except ValueError:
        canonical = address
    else:
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            canonical = str(ip.ipv4_mapped)
        elif isinstance(ip, IPv6Address):
            canonical = str(ip_network(f"{ip}/{_IPV6_PREFIX}", strict=False))
        else:
            canonical = str(ip)
    return hmac.new(key, canonical.encode(), hashlib.sha256).digest()[:16]


def retry_after_header(wait: float) -> str:
    """Seconds for ``Retry-After``: a whole number, at least 1."""
    return str(max(1, math.ceil(wait)))


def rate_limited(wait: float) -> Problem:
    """The 429 problem for a client (or a station) that must wait ``wait`` seconds."""
    seconds = retry_after_header(wait)
    return Problem(
        429,
        "rate-limited",
        "请求过于频繁，请稍后再试",
        "Too many requests, please retry later",
        f"请在 {seconds} 秒后重试",
        f"Retry in {seconds} s",
        headers={"Retry-After": seconds},
    )


Network = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address


def client_address(
    peer: str | None,
    forwarded_for: str | Sequence[str] | None,
    trusted: tuple[Network, ...],
) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the
    right-most hop of ``X-Forwarded-For`` that is not itself a trusted proxy.

    ``forwarded_for`` is every line of the header, in order (a proxy may add a line of
    its own instead of appending to the client's: the lines are one list). Hops are
    read from the right, the nearest first, each with its port stripped (``v4:port``,
    ``[v6]:port``); a hop that is not an address (``unknown``, garbage) ends the walk at
    the last trusted hop, since nothing left of it was written by a proxy we trust. The
    answer is always a canonical address (or the peer as given, when it is none), so
    that no spelling of a hop makes a fresh bucket.
    """
    peer_ip = _parse_hop(peer) if peer else None
    if peer_ip is None:
        return peer or "unknown"
    nearest = peer_ip
    if not trusted or not forwarded_for or not _is_trusted(nearest, trusted):
        return str(nearest)
    lines = [forwarded_for] if isinstance(forwarded_for, str) else list(forwarded_for)
    hops = [hop.strip() for line in lines for hop in line.split(",")]
    for hop in reversed(hops):
        ip = _parse_hop(hop)
        if ip is None:
            return str(nearest)
        if not _is_trusted(ip, trusted):
            return str(ip)
        nearest = ip
    return str(nearest)


def _parse_hop(hop: str) -> IPAddress | None:
    """A hop of ``X-Forwarded-For`` as an address, its port stripped; None when it is
    not an address. An IPv4-mapped IPv6 address is its IPv4 address."""
    text = hop.strip()
    if text.startswith("["):  # [v6] or [v6]:port
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not _is_port(rest)):
            return None
        text = inside
    elif text.count(":") == 1:  # v4:port (an IPv6 address has at least two colons)
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        ip = ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit()


def _is_trusted(ip: IPAddress, trusted: tuple[Network, ...]) -> bool:
    return any(ip in network for network in trusted)
