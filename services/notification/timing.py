"""When a delivery may go: residents' quiet hours and the retries' backoff. Pure."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_BACKOFF = timedelta(hours=1)


def after_quiet_hours(now: datetime, timezone: str, start: int, end: int) -> datetime | None:
    """The end of the quiet hours (``start``:00 to ``end``:00, district time) when ``now``
    falls inside them, else None: an SMS to a resident waits until then."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    hour = local.hour
    quiet = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    return datetime.combine(day, time(end), tzinfo=zone)


def backoff(attempt: int, first: float, rng: random.Random | None = None) -> timedelta:
    """How long to wait before attempt ``attempt + 1``: ``first`` doubled per attempt,
    with full jitter (between half and all of it), at most an hour."""
    base = min(first * 2 ** max(attempt - 1, 0), MAX_BACKOFF.total_seconds())
    spread = (rng or random).uniform(0.5, 1.0)
    return timedelta(seconds=base * spread)
