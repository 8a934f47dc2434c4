"""Kafka entry points: every event reporting projects, handed to the projector inside
the consumer runtime's transaction (``ctx.conn``), so the projection rows and the
version gate commit together; and the events of who is staff, folded into
``reporting.staff_roster`` the same way (a consumer table, not a projection: the rebuild
leaves it alone, :mod:`eventkit.staff_roster`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from contracts.base import Event
from eventkit.consumer import Consumer, HandlerContext
from eventkit.staff_roster import RosterConsumer, StaffRoster
from services.reporting.changes import HANDLED
from services.reporting.projection import CONSUMER_NAME, Projector
from services.reporting.settings import ReportingSettings

ROSTER: Final = StaffRoster("reporting")
"""``reporting.staff_roster``: who is known, active staff (:mod:`eventkit.staff_roster`)."""


def build_consumer(
    settings: ReportingSettings, pool: asyncpg.Pool, projector: Projector
) -> Consumer:
    """The reporting consumer: one batch handler for every type it projects, and the
    roster."""
    consumer = RosterConsumer(
        CONSUMER_NAME,
        roster=ROSTER,
        settings=settings,
        pool=pool,
        batch_size=settings.reporting_consumer_batch,
    )

    @consumer.handles_many(*HANDLED)
    async def project(events: Sequence[tuple[Event, HandlerContext]]) -> None:
        # A run of one district's events of a batch, in one transaction (the runtime's):
        # projected together (Projector.apply_many).
        conn = events[0][1].conn
        await projector.apply_many(conn, [(e, ctx.envelope, ctx.topic) for e, ctx in events])

    return consumer
