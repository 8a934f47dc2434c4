"""The shape of a resident's tracking code (查询码), shared by intake (which issues and
keeps the codes) and routing (whose staff look a case up by the code a resident reads
out, through its keyed hash). Pure.
"""

from __future__ import annotations

import re
from typing import Final

CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O or U, so a code read aloud or typed is not misread."""
TRACKING_CODE_LENGTH: Final = 12
"""12 symbols of 5 bits: 60 random bits."""
_ALIASES: Final = str.maketrans({"I": "1", "L": "1", "O": "0", "U": "V"})


def normalise_tracking_code(raw: str) -> str | None:
    """The canonical form of a typed code (case, dashes, spaces and look-alikes forgiven),
    or None when it cannot be a code."""
    code = re.sub(r"[\s\-]", "", raw).upper().translate(_ALIASES)
    if len(code) != TRACKING_CODE_LENGTH or any(c not in CROCKFORD for c in code):
        return None
    return code
