"""What residents type, made safe to keep and to show: control characters stripped,
mainland mobile numbers recognised, phone and ID numbers masked in public views. Pure."""

from __future__ import annotations

import re
from typing import Final

MOBILE: Final = re.compile(r"^1[3-9]\d{9}$")
"""A mainland China mobile number: 11 digits, 1 then 3 to 9."""
_PHONE_SEPARATORS: Final = re.compile(r"[\s\-()（）]")
_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_controls(value: str) -> str:
    """``value`` without C0 control characters (tab, newline and carriage return kept)
    and DEL: they carry no meaning in a resident's text and break XML output."""
    return _CONTROL.sub("", value)


def cleaned(value: str | None) -> str | None:
    """A free-text field without control characters or surrounding blanks; None when
    nothing is left (an empty field is a field not filled in)."""
    if value is None:
        return None
    value = strip_controls(value).strip()
    return value or None


def normalise_phone(raw: str) -> str | None:
    """The 11-digit mainland mobile number in ``raw``, or None when it is not one.

    Spaces, hyphens and brackets are ignored, and so is a +86 / 0086 / 86 prefix.
    """
    digits = _PHONE_SEPARATORS.sub("", raw.strip())
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    return digits if MOBILE.match(digits) else None


_MASKS: Final = (
    # Resident ID numbers (18 characters, last may be X) before phone numbers.
    (re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)"), r"\1********\2"),
    (re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\1****\2"),
)


def mask_personal_numbers(text: str) -> str:
    """``text`` with mobile and resident ID numbers masked, for public views."""
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text
