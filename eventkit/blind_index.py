"""The keys of the blind index of residents' phone numbers and of the tracking refs.

Both are keyed hashes that services compare, never reverse: ``lookup_hash`` (a resident's
mobile number in a district, so that one resident has one subject) and ``tracking_ref``
(an opinion's tracking code, so that staff find a case by the code a resident reads
out). A mobile number has about 10⁹ possible values: whoever holds the key and the
hashes learns every indexed resident's number. So the key is a secret of the
environment (``MINQING_PRIVACY_LOOKUP_KEY``, with its id and previous keys like every
keyed secret, :class:`eventkit.keys.KeyRing`), never the database's, and each purpose
gets a key of its own derived from it (HKDF-SHA256): a tracking ref is never a phone
number's index under the same key.

Databases made before this kept one random key in ``privacy.lookup_key``. It is read as
the key id :data:`LEGACY` (used as it is, not derived, since the hashes it made are
stored) until ``minqing privacy reindex`` has re-hashed every row with the current key
and removed it. An operator who wants staff to keep finding, by their tracking code,
cases submitted before the upgrade (their events carry refs made with the database's
key, which cannot be rewritten) may keep that key among the previous keys of the
environment, as ``{"legacy": "<64 hex digits>"}``: the index itself no longer uses it.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from eventkit.keys import KeyRing, KeyRingError

LEGACY: Final = "legacy"
"""The id of the key a database kept in ``privacy.lookup_key`` before the key came from
the environment."""
_PHONE: Final = b"minqing blind index: phone v1"
_TRACKING: Final = b"minqing blind index: tracking ref v1"


@lru_cache(maxsize=32)
def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


def legacy_secret(value: str) -> bytes:
    """The database's former key, given as 64 hex digits in the environment."""
    try:
        raw = bytes.fromhex(value.strip())
    except ValueError as exc:
        raise KeyRingError(
            "旧索引密钥须为 64 位十六进制 / the legacy lookup key must be 64 hex digits"
        ) from exc
    if len(raw) != 32:
        raise KeyRingError(
            "旧索引密钥须为 64 位十六进制 / the legacy lookup key must be 64 hex digits"
        )
    return raw


@dataclass(frozen=True, slots=True)
class IndexKey:
    """One key of the index, by id, with the keys of both purposes."""

    key_id: str
    phone: bytes
    tracking: bytes

    def __repr__(self) -> str:  # never print a key
        return f"IndexKey(key_id={self.key_id!r})"

    @classmethod
    def from_setting(cls, key_id: str, secret: str) -> IndexKey:
        """A key of the environment: each purpose's key derived from it (HKDF); the id
        :data:`LEGACY` names the database's former key, used as it was."""
        if key_id == LEGACY:
            return cls.from_legacy(legacy_secret(secret))
        return cls(key_id, _derive(secret, _PHONE), _derive(secret, _TRACKING))

    @classmethod
    def from_legacy(cls, raw: bytes) -> IndexKey:
        """The database's former key (``privacy.lookup_key``): one key for both uses."""
        return cls(LEGACY, raw, raw)

    def phone_hash(self, district_id: str, identifier: str) -> bytes:
        """The blind index of a normalised phone number in a district."""
        message = f"{district_id}\x00{identifier}".encode()
        return hmac.new(self.phone, message, hashlib.sha256).digest()

    def tracking_ref(self, code: str) -> str:
        """The keyed hash of a tracking code, as ``OpinionSubmitted.tracking_ref``
        carries it (``t1.`` and 32 hex digits)."""
        digest = hmac.new(self.tracking, f"tracking\x00{code}".encode(), hashlib.sha256)
        return f"t1.{digest.hexdigest()[:32]}"


def index_keys(ring: KeyRing, legacy: bytes | None = None) -> tuple[IndexKey, ...]:
    """Every key of the index, the current one first, then the previous ones, then the
    database's former key while it is still there (and not already given)."""
    if ring.current_id == LEGACY:
        raise KeyRingError(
            f"当前索引密钥的编号不能是 {LEGACY!r} / the current lookup key's id cannot be "
            f"{LEGACY!r}"
        )
    keys = [IndexKey.from_setting(kid, secret) for kid, secret in ring.all()]
    if legacy is not None and all(k.key_id != LEGACY for k in keys):
        keys.append(IndexKey.from_legacy(legacy))
    return tuple(keys)
