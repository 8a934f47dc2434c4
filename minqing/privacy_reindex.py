"""The blind index re-hashed with the current key: ``minqing privacy reindex``.

Each resident indexed by their mobile number has a ``lookup_hash`` made with some key of
the index (``privacy.subject_keys.lookup_key_id``). After the key is rotated
(``MINQING_PRIVACY_LOOKUP_KEY`` new, the old one among the previous keys), or after the
upgrade that moved the key out of the database (the old one read as ``legacy``), the
index still finds everyone, trying each key; this command re-hashes every row with the
current key so that the old key can go. A hash cannot be recomputed without the number,
so the number is opened from the subject's latest sealed copy (``OpinionSubmitted``'s
``phone_ciphertext``) with the subject's own key, and never printed or stored in clear.

District by district, in batches of one transaction each (a batch's rows locked, so a
concurrent ``forget`` waits or goes first): stopping it at any point loses nothing, and
running it again takes up where it stopped, since rows already re-hashed carry the
current key's id. Each district's run is recorded in ``privacy.rights_requests`` (kind
``reindex``: the key id, how many rows were re-hashed, how many could not be).

It updates the key table, which only the database owner may: run it as the owner, like
``minqing keys rewrap``. When no row is left with the database's former key, it drops
that key (``privacy.lookup_key``): a copy of the database then holds no key of the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import asyncpg

from eventkit.blind_index import LEGACY, IndexKey
from eventkit.clock import Clock, utc_now
from eventkit.db import ALL_DISTRICTS, Conn, district_transaction
from eventkit.keys import KeyRing
from eventkit.privacy import PersonalDataVault, SealError, SubjectKey, open_value, unwrap_key
from eventkit.privacy_rights import record_request
from eventkit.store import EventStore
from services.intake.privacy import opinions_of
from services.intake.text import normalise_phone

BATCH: Final = 200


@dataclass
class Reindexed:
    """One district's run: rows re-hashed, and rows whose number could not be opened
    (no sealed copy found, or one that does not open: left as they were, still found
    with their old key while it is given)."""

    district_id: str
    key_id: str
    rehashed: int = 0
    unreadable: list[str] = field(default_factory=list)


async def _districts(pool: asyncpg.Pool) -> list[str]:
    # Which districts have an index: a question about every district by nature.
    async with district_transaction(pool, ALL_DISTRICTS) as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT district_id FROM privacy.subject_keys "
            "WHERE lookup_hash IS NOT NULL ORDER BY district_id"
        )
    return [row["district_id"] for row in rows]


class LookupReindex:
    """Re-hash the blind index with the current key (see the module's note)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        keys: KeyRing,
        lookup_keys: KeyRing,
        *,
        clock: Clock = utc_now,
        batch: int = BATCH,
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._vault = PersonalDataVault(pool, keys, lookup_keys)
        self._store = EventStore(pool)
        self._clock = clock
        self._batch = batch

    async def run(self, district_id: str | None, *, requested_by: str) -> list[Reindexed]:
        """Re-hash ``district_id``'s index (every district's when None), then drop the
        database's former key if no row needs it any more."""
        districts = [district_id] if district_id is not None else await _districts(self._pool)
        done = [await self._district(d, requested_by) for d in districts]
        await self.drop_legacy_key()
        return done

    async def _district(self, district_id: str, requested_by: str) -> Reindexed:
        after = ""
        result: Reindexed | None = None
        while True:
            async with district_transaction(self._pool, district_id) as conn:
                current = (await self._vault.index_keys(conn))[0]
                result = result or Reindexed(district_id, current.key_id)
                rows = await conn.fetch(
                    """
                    SELECT subject_id, key FROM privacy.subject_keys
                     WHERE district_id = $1 AND lookup_hash IS NOT NULL
                       AND lookup_key_id IS DISTINCT FROM $2 AND subject_id > $3
                     ORDER BY subject_id LIMIT $4 FOR UPDATE
                    """,
                    district_id,
                    current.key_id,
                    after,
                    self._batch,
                )
                if not rows:
                    await record_request(
                        conn,
                        district_id=district_id,
                        kind="reindex",
                        requested_by=requested_by,
                        reason=None,
                        subject_ids=[],
                        outcome={
                            "key_id": result.key_id,
                            "rehashed": result.rehashed,
                            "unreadable": len(result.unreadable),
                        },
                        now=self._clock(),
                    )
                    return result
                after = rows[-1]["subject_id"]
                await self._batch_of(conn, district_id, current, rows, result)

    async def _batch_of(
        self,
        conn: Conn,
        district_id: str,
        current: IndexKey,
        rows: Sequence[asyncpg.Record],
        result: Reindexed,
    ) -> None:
        keys = {row["subject_id"]: bytes(row["key"]) for row in rows}
        latest: dict[str, str] = {}
        for opinion in await opinions_of(conn, list(keys)):  # oldest first
            latest[opinion["subject_id"]] = opinion["opinion_id"]
        subjects, hashes = [], []
        for subject_id, stored in keys.items():
            number = await self._number(conn, subject_id, stored, latest.get(subject_id))
            if number is None:
                result.unreadable.append(subject_id)
                continue
            subjects.append(subject_id)
            hashes.append(current.phone_hash(district_id, number))
        status = await conn.execute(
            """
            UPDATE privacy.subject_keys AS k
               SET lookup_hash = u.hash, lookup_key_id = $3
              FROM unnest($1::text[], $2::bytea[]) AS u (subject_id, hash)
             WHERE k.subject_id = u.subject_id
               AND NOT EXISTS (SELECT 1 FROM privacy.subject_keys o
                                WHERE o.district_id = k.district_id AND o.lookup_hash = u.hash)
            """,
            subjects,
            hashes,
            current.key_id,
        )
        result.rehashed += int(status.split()[-1])

    async def _number(
        self, conn: Conn, subject_id: str, stored: bytes, opinion_id: str | None
    ) -> str | None:
        """The subject's mobile number, opened from their latest opinion's sealed copy."""
        if opinion_id is None:
            return None
        events = await self._store.read_stream(f"opinion-{opinion_id}", conn=conn)
        submitter = events[0].data.get("submitter") if events else None
        token = submitter.get("phone_ciphertext") if isinstance(submitter, dict) else None
        if not token:
            return None
        try:
            subject = SubjectKey(subject_id, unwrap_key(self._keys, subject_id, stored))
            return normalise_phone(open_value(subject, "phone", token))
        except SealError:
            return None

    async def legacy_left(self) -> int:
        """How many rows are still indexed with the database's former key."""
        # Every district's index: the former key is one for the whole database.
        async with district_transaction(self._pool, ALL_DISTRICTS) as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM privacy.subject_keys WHERE lookup_hash IS NOT NULL "
                "AND (lookup_key_id IS NULL OR lookup_key_id = $1)",
                LEGACY,
            )
        return int(count)

    async def drop_legacy_key(self) -> bool:
        """Drop ``privacy.lookup_key`` once no row needs it; whether it was dropped now."""
        if await self.legacy_left():
            return False
        async with district_transaction(self._pool, ALL_DISTRICTS) as conn:
            if not await conn.fetchval("SELECT to_regclass('privacy.lookup_key') IS NOT NULL"):
                return False
            await conn.execute("DROP TABLE privacy.lookup_key")
        return True

    async def legacy_key(self) -> bytes | None:
        """The database's former key while it is there (for an operator who keeps it in
        the environment so that tracking refs made with it keep matching)."""
        async with district_transaction(self._pool, ALL_DISTRICTS) as conn:
            if not await conn.fetchval("SELECT to_regclass('privacy.lookup_key') IS NOT NULL"):
                return None
            found = await conn.fetchval("SELECT key FROM privacy.lookup_key")
        return None if found is None else bytes(found)
