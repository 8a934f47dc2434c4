"""The QR form's proof-of-work: signed, expiring, single-use challenges bound to a station.

When a station is under attack (its shared limit tripped, or a district admin switched
the guard on), a submission through it must carry a solution: a ``nonce`` such that
SHA-256(challenge || nonce) starts with ``bits`` zero bits. A resident's browser finds
one in a second or two (``static/qr.js``, WebCrypto); a script sending thousands pays
that for every one of them. The server issues challenges without storing them (an
HMAC-SHA256 over district, station, difficulty, expiry and a random id, with a key
derived from ``MINQING_INTAKE_HASH_KEY``), checks a solution with one hash, and keeps
only the ids of the solutions it accepted, until they expire (single use:
``station_guard.py``). After a rotation of that key, challenges signed with a previous
key (``MINQING_INTAKE_HASH_PREVIOUS_KEYS``) are accepted until they expire: a resident
solving one while the replicas roll out is not sent back to solve another.

Pure: no I/O, no clock (``now`` comes in), so that every refusal is tested on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from eventkit.refusals import Forbidden

HEADER: Final = "Proof-Of-Work"
"""The request header of a solution: ``<challenge>:<nonce>``."""
MAX_BITS: Final = 28
"""The hardest difficulty an admin may ask for (2**28 hashes: minutes on a phone)."""
_NONCE: Final = re.compile(r"^[0-9]{1,20}$")
_MAX_CHALLENGE_CHARS: Final = 600
_PURPOSE: Final = b"minqing intake proof-of-work v1"


def challenge_key(hash_secret: bytes) -> bytes:
    """The key that signs challenges, derived from intake's hash key: one secret to set
    and rotate, and a challenge's MAC is never a hash intake stores for another use."""
    return hmac.new(hash_secret, _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Challenge:
    """What a challenge says: the station it is good for, its difficulty, its expiry."""

    district_id: str
    station_code: str
    bits: int
    expires_at: datetime
    challenge_id: bytes
    """16 random bytes: what the server keeps of a spent challenge."""

    def token(self, key: bytes) -> str:
        """The challenge as the browser gets it: its content and its MAC, base64url."""
        body = _b64(self._payload())
        mac = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def _payload(self) -> bytes:
        fields = {
            "d": self.district_id,
            "s": self.station_code,
            "b": self.bits,
            "e": int(self.expires_at.timestamp()),
            "i": self.challenge_id.hex(),
        }
        return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()

    def as_json(self, key: bytes) -> dict[str, Any]:
        """The challenge as the API and the problem documents give it."""
        return {
            "challenge": self.token(key),
            "difficulty": self.bits,
            "expires_at": self.expires_at.isoformat(),
            "algorithm": "sha256-leading-zero-bits",
        }


def issue(
    district_id: str,
    station_code: str,
    bits: int,
    *,
    now: datetime,
    ttl: timedelta,
    challenge_id: bytes,
) -> Challenge:
    """A new challenge for the station (``challenge_id``: 16 random bytes)."""
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"a challenge is 1 to {MAX_BITS} bits hard, not {bits}")
    expires = datetime.fromtimestamp(int((now + ttl).timestamp()), UTC)
    return Challenge(district_id, station_code, bits, expires, challenge_id)


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits ``digest`` starts with."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solves(token: str, nonce: str, bits: int) -> bool:
    """Whether SHA-256(token || nonce) starts with ``bits`` zero bits."""
    digest = hashlib.sha256((token + nonce).encode("ascii")).digest()
    return leading_zero_bits(digest) >= bits


# --- refusals --------------------------------------------------------------------------


class ProofOfWorkRefusal(Forbidden):
    """A submission through a guarded station without a good solution. Each carries a
    fresh challenge (``extra``), so the form's script solves it and sends again."""

    def __init__(
        self,
        title: str,
        title_en: str,
        detail: str,
        detail_en: str,
        fresh: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title, title_en, detail, detail_en, extra=fresh or {})


_NO_SCRIPT = (
    "请在浏览器中启用 JavaScript 后重新打开本页提交，或到联络站当面反映、拨打 12345",
    "Turn JavaScript on and open this page again to send it, or come to the station "
    "in person, or call 12345",
)


class ProofOfWorkRequired(ProofOfWorkRefusal):
    """The station is guarded and the submission carries no solution."""

    code = "proof-of-work-required"

    def __init__(self, fresh: dict[str, Any] | None = None) -> None:
        super().__init__(
            "本站点访问量过大，提交前需要浏览器完成一次验证",
            "This station is receiving too many submissions: your browser must complete "
            "a check before sending",
            _NO_SCRIPT[0],
            _NO_SCRIPT[1],
            fresh,
        )


class ProofOfWorkInvalid(ProofOfWorkRefusal):
    """Malformed, forged, too easy or not solved."""

    code = "proof-of-work-invalid"

    def __init__(self, fresh: dict[str, Any] | None = None) -> None:
        super().__init__(
            "验证未通过",
            "The check failed",
            "验证结果无效，请重新提交（页面会重新验证）",
            "The solution is not valid: send again (the page checks again)",
            fresh,
        )


class ProofOfWorkExpired(ProofOfWorkRefusal):
    """The challenge's time is over."""

    code = "proof-of-work-expired"

    def __init__(self, fresh: dict[str, Any] | None = None) -> None:
        super().__init__(
            "验证已过期",
            "The check has expired",
            "验证已超时，请重新提交（页面会重新验证）",
            "The check took too long ago: send again (the page checks again)",
            fresh,
        )


class ProofOfWorkReused(ProofOfWorkRefusal):
    """The challenge was spent by an earlier submission."""

    code = "proof-of-work-reused"

    def __init__(self, fresh: dict[str, Any] | None = None) -> None:
        super().__init__(
            "验证已使用过",
            "The check was already used",
            "每次验证只能用于一次提交，请重新提交（页面会重新验证）",
            "Each check is good for one submission: send again (the page checks again)",
            fresh,
        )


class ProofOfWorkWrongStation(ProofOfWorkRefusal):
    """The challenge was issued for another station."""

    code = "proof-of-work-wrong-station"

    def __init__(self, fresh: dict[str, Any] | None = None) -> None:
        super().__init__(
            "验证不属于本站点",
            "The check belongs to another station",
            "请从本站点的页面重新提交",
            "Send again from this station's page",
            fresh,
        )


def verify(
    solution: str,
    keys: Sequence[bytes],
    *,
    district_id: str,
    station_code: str,
    bits: int,
    now: datetime,
) -> Challenge:
    """The challenge ``solution`` (``<challenge>:<nonce>``) solves for this station, at
    least ``bits`` hard and not expired; otherwise the refusal that says why (without a
    fresh challenge: the caller adds one). Single use is the caller's: it keeps the ids.
    ``keys``: the challenge keys, the current one first; a challenge signed with any of
    them is good (the previous ones only until their challenges expire)."""
    token, _, nonce = solution.strip().rpartition(":")
    if not token or len(token) > _MAX_CHALLENGE_CHARS or not _NONCE.match(nonce):
        raise ProofOfWorkInvalid()
    body, _, mac = token.partition(".")
    try:
        given = _unb64(mac)
        signed = [
            hmac.compare_digest(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest(), given)
            for key in keys
        ]
        if not any(signed):
            raise ProofOfWorkInvalid()
        fields = json.loads(_unb64(body))
        challenge = Challenge(
            district_id=str(fields["d"]),
            station_code=str(fields["s"]),
            bits=int(fields["b"]),
            expires_at=datetime.fromtimestamp(int(fields["e"]), UTC),
            challenge_id=bytes.fromhex(str(fields["i"])),
        )
    except (UnicodeError, binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ProofOfWorkInvalid() from exc
    if (challenge.district_id, challenge.station_code) != (district_id, station_code):
        raise ProofOfWorkWrongStation()
    if challenge.expires_at <= now:
        raise ProofOfWorkExpired()
    if challenge.bits < max(bits, 1) or not solves(token, nonce, challenge.bits):
        raise ProofOfWorkInvalid()
    return challenge
