"""Tracking codes and opinion ids. Pure: the randomness is passed in (``secrets`` by
default), so tests can pin it.

A tracking code is a credential held by intake only (``intake.opinions``): never in an
event, since events go to Kafka and beyond (``OpinionSubmitted`` carries only a keyed hash
of it, ``tracking_ref``, for staff to find the case). Its shape is shared with routing
(``eventkit.tracking_codes``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from eventkit.tracking_codes import CROCKFORD, TRACKING_CODE_LENGTH, normalise_tracking_code

__all__ = [
    "CROCKFORD",
    "TRACKING_CODE_LENGTH",
    "format_tracking_code",
    "new_opinion_id",
    "new_tracking_code",
    "normalise_tracking_code",
]


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


def new_opinion_id(now: datetime, random_token: Callable[[int], str] = secrets.token_hex) -> str:
    """An opinion id: the day it arrived and 40 random bits, e.g. ``op_20250314_9f3a1c07d2``."""
    return f"op_{now:%Y%m%d}_{random_token(5)}"
