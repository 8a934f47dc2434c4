"""Intake's consumer: it learns the directory and follows the cases."""

from __future__ import annotations

import asyncpg

from eventkit.consumer import Consumer
from eventkit.settings import Settings
from services.intake.case_handlers import register_case_handlers
from services.intake.directory_handlers import register_directory_handlers


def intake_consumer(settings: Settings, pool: asyncpg.Pool) -> Consumer:
    """The ``intake`` consumer (group ``minqing.intake``): directory and case events."""
    consumer = Consumer("intake", settings=settings, pool=pool)
    register_directory_handlers(consumer)
    register_case_handlers(consumer)
    return consumer
