"""What a request says about itself, carried from the edge into the application layer.

Pure (no web framework): the HTTP edge builds it (``eventkit.http.request_info``), a
command handler reads it; a CLI or a test makes one by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from contracts.envelope import Metadata
from eventkit.refusals import MalformedRequest

_IDEMPOTENCY_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")


class InvalidIdempotencyKey(MalformedRequest):
    """The key is empty, too long or not printable ASCII."""

    code = "invalid-idempotency-key"

    def __init__(self) -> None:
        super().__init__(
            "幂等键格式不正确",
            "Malformed Idempotency-Key",
            "幂等键应为 1–255 个可见 ASCII 字符，建议使用 UUID",
            "The key must be 1 to 255 visible ASCII characters; a UUID is a good choice",
        )


def checked_idempotency_key(value: str | None) -> str | None:
    """A client's ``Idempotency-Key`` when well formed; :class:`InvalidIdempotencyKey`
    otherwise (None when the client sent none)."""
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.match(value):
        raise InvalidIdempotencyKey()
    return value


@dataclass(frozen=True)
class RequestInfo:
    """Correlation, trace context and idempotency of one request."""

    correlation_id: str | None = None
    """The request's id (``X-Request-ID``, or one made up at the edge)."""
    traceparent: str | None = None
    idempotency_key: str | None = None
    """The client's ``Idempotency-Key``: a retried request must change nothing."""

    def metadata(self, causation_id: str | None = None) -> Metadata:
        """Correlation and trace context of the events this request causes (caused by
        ``causation_id``, by default the request itself)."""
        return Metadata(
            correlation_id=self.correlation_id,
            causation_id=causation_id or self.correlation_id,
            traceparent=self.traceparent,
        )
