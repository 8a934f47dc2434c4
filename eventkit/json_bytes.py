"""JSON written fast: orjson, with the standard library for what orjson refuses.

orjson writes what ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``
writes for what the services write (strings, numbers, booleans, None, lists, dicts; keys
that are not strings become strings; subclasses of str and int, such as StrEnum values,
as their value), at a fraction of the CPU: the standard library's encoder was a
twentieth of the notification service's CPU in its benchmark (docs/performance.md).
What orjson refuses is handed to the standard library: an integer beyond 64 bits is
written, a datetime or a dataclass is refused as before (orjson would write them).

Known differences: orjson writes a UUID and a plain Enum, which ``json`` refuses, and
writes NaN and the infinities as ``null`` where ``json`` wrote ``NaN`` (which jsonb
refuses anyway); numbers may be spelled otherwise (``1e16``, ``1e+16``) for the same
value.

Reading stays with the standard library's ``json.loads``: orjson reads an integer beyond
64 bits as a float, silently losing digits.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """``value`` as compact JSON text."""
    return dumps(value).decode()
