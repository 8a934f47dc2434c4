"""Intake's consumer: it learns the directory, follows the cases, and keeps the staff
roster its HTTP edge checks staff tokens against."""

from __future__ import annotations

from typing import Final

import asyncpg

from eventkit.consumer import Consumer
from eventkit.settings import Settings
from eventkit.staff_roster import RosterConsumer, StaffRoster
from services.intake.case_handlers import register_case_handlers
from services.intake.directory_handlers import register_directory_handlers

ROSTER: Final = StaffRoster("intake")
"""``intake.staff_roster``: who is known, active staff (:mod:`eventkit.staff_roster`)."""


def intake_consumer(settings: Settings, pool: asyncpg.Pool) -> Consumer:
    """The ``intake`` consumer (group ``minqing.intake``): directory, staff account and
    case events."""
    consumer = RosterConsumer("intake", roster=ROSTER, settings=settings, pool=pool)
    register_directory_handlers(consumer)
    register_case_handlers(consumer)
    return consumer
