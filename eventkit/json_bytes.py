"""JSON written fast: orjson, with the standard library for what orjson refuses.

orjson writes the same compact JSON as ``json.dumps(value, ensure_ascii=False,
separators=(",", ":"))`` for everything the services write (strings, numbers, lists,
dicts; keys that are not strings become strings), at a fraction of the CPU: the standard
library's encoder was a twentieth of the notification service's CPU in its benchmark
(docs/performance.md). An integer beyond 64 bits, which orjson refuses, is written by the
standard library, so no value that ``json`` could write is refused here.

Reading stays with the standard library's ``json.loads``: orjson reads an integer beyond
64 bits as a float, silently losing digits.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """``value`` as compact JSON text."""
    return dumps(value).decode()
