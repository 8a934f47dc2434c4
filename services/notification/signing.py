"""Signatures on what the service sends over HTTP. Pure.

- Webhooks (subscribers, staff endpoints) and the SMS gateway: ``X-Minqing-Timestamp``
  (unix seconds) and ``X-Minqing-Signature: v1=<hex>``, HMAC-SHA256 over
  ``<timestamp>.<body>`` with the receiver's secret; several ``v1=`` values, separated by
  spaces, while a rotated secret's grace period runs. A receiver recomputes it, compares
  in constant time, and refuses a timestamp more than five minutes old. The SMS
  gateway's requests also carry ``X-Minqing-Key-Id``: the ids of the keys that signed,
  in the order of the signatures.
- DingTalk group robots with 加签: ``timestamp`` (milliseconds) and ``sign`` =
  base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")) as query parameters, as DingTalk
  documents.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TIMESTAMP_HEADER = "X-Minqing-Timestamp"
SIGNATURE_HEADER = "X-Minqing-Signature"
KEY_ID_HEADER = "X-Minqing-Key-Id"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secrets: Sequence[str], timestamp: int, body: bytes) -> dict[str, str]:
    """The headers carrying the timestamp and one signature per secret (current first)."""
    values = " ".join(f"v1={signature(s, timestamp, body)}" for s in secrets)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: values}


def verify(secret: str, headers: dict[str, str], body: bytes, now: int) -> bool:
    """Whether ``headers`` sign ``body`` with ``secret`` recently: what a receiver does."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, timestamp, body)
    given = [v.removeprefix("v1=") for v in lowered.get(SIGNATURE_HEADER.lower(), "").split()]
    return any(hmac.compare_digest(expected, g) for g in given)


def dingtalk_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    """The robot's address with DingTalk's ``timestamp`` and ``sign`` when it has a secret."""
    if not secret:
        return url
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    sign = base64.b64encode(digest).decode()
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("timestamp", str(timestamp_ms)), ("sign", sign)]
    return urlunsplit(parts._replace(query=urlencode(query)))
