"""Tracking codes and opinion ids. Pure: the randomness is passed in (``secrets`` by
default), so tests can pin it.

A tracking code is a credential held by intake only (``intake.opinions``): never in an
event, since events go to Kafka and beyond.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Final

CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O or U, so a code read aloud or typed is not misread."""
TRACKING_CODE_LENGTH: Final = 12
"""12 symbols of 5 bits: 60 random bits."""
_ALIASES: Final = str.maketrans({"I": "1", "L": "1", "O": "0", "U": "V"})


def new_tracking_code(random_bits: Callable[[int], int] = secrets.randbits) -> str:
    """A fresh tracking code: 60 random bits in 12 Crockford base32 symbols."""
    value = random_bits(5 * TRACKING_CODE_LENGTH)
    symbols = []
    for _ in range(TRACKING_CODE_LENGTH):
        symbols.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(symbols))


def format_tracking_code(code: str) -> str:
    """A code as shown to people: ``ABCD-EFGH-JKMN``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def normalise_tracking_code(raw: str) -> str | None:
    """The canonical form of a typed code (case, dashes, spaces and look-alikes forgiven),
    or None when it cannot be a code."""
    code = re.sub(r"[\s\-]", "", raw).upper().translate(_ALIASES)
    if len(code) != TRACKING_CODE_LENGTH or any(c not in CROCKFORD for c in code):
        return None
    return code


def new_opinion_id(now: datetime, random_token: Callable[[int], str] = secrets.token_hex) -> str:
    """An opinion id: the day it arrived and 40 random bits, e.g. ``op_20250314_9f3a1c07d2``."""
    return f"op_{now:%Y%m%d}_{random_token(5)}"
