"""The one clock of every service: injected, never read from the wall inside a decision."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Gives the current time, aware (UTC). Tests pass a clock of their own."""


def utc_now() -> datetime:
    """The current time in UTC: the default :data:`Clock`."""
    return datetime.now(UTC)
