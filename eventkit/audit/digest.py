"""The two hashes an auditor recomputes. Pure: nothing but ``hashlib``.

- A **link** of a stream's chain: ``hash = sha256(prev_hash || canonical bytes)``, where
  the canonical bytes are what ``eventstore.canonical_bytes`` gives (jsonb's text of the
  event's identity, times, data and metadata); the first link's ``prev_hash`` is 32 zero
  bytes. Archives carry those bytes as they were hashed, so nobody has to reproduce
  PostgreSQL's JSON formatting to check them.
- A **seal**: ``digest = sha256(previous_digest || hash_1 || … || hash_n)`` over the
  stored hashes of the district's events the seal covers, in the store's order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

ZERO_HASH: Final = bytes(32)
"""The ``prev_hash`` of every stream's first event and the ``previous_digest`` of every
district's first seal."""


def link_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    """The hash a link of a stream's chain must have."""
    return hashlib.sha256(prev_hash + canonical).digest()


class SealDigest:
    """A seal's digest, fed one event hash at a time (constant memory)."""

    def __init__(self, previous_digest: bytes) -> None:
        self._hash = hashlib.sha256(previous_digest)
        self.count = 0

    def add(self, event_hash: bytes) -> None:
        """The next event of the seal, in the store's order."""
        self._hash.update(event_hash)
        self.count += 1

    def digest(self) -> bytes:
        """The digest of what was added so far."""
        return self._hash.digest()


def seal_digest(previous_digest: bytes, event_hashes: Iterable[bytes]) -> bytes:
    """The digest of a seal covering events with ``event_hashes``, in the store's order."""
    digest = SealDigest(previous_digest)
    for event_hash in event_hashes:
        digest.add(event_hash)
    return digest.digest()
