"""Kafka entry points: directory events, opinions and case events, each handed to the
planner inside the consumer runtime's transaction (so the outbox, the projections and the
version gate commit together, and a redelivered event plans nothing new)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from contracts.base import Event
from contracts.cases import EVENTS as CASE_EVENTS
from contracts.directory import (
    DepartmentRegistered,
    DepartmentRetired,
    DistrictRegistered,
    RepresentativeRegistered,
    StationMoved,
    StationRegistered,
    StationRetired,
    StreetRegistered,
    TaxonomyPublished,
)
from contracts.intake import OpinionSubmitted
from eventkit.consumer import Consumer, HandlerContext
from eventkit.settings import Settings
from eventkit.staff_roster import RosterConsumer, StaffRoster
from services.notification.planner import Planner

CONSUMER_NAME = "notification"

ROSTER: Final = StaffRoster("notification")
"""``notification.staff_roster``: who is known, active staff (:mod:`eventkit.staff_roster`),
folded by this consumer; the admin and subscription routes check tokens against it."""

DIRECTORY_EVENTS = (
    DistrictRegistered,
    TaxonomyPublished,
    StreetRegistered,
    StationRegistered,
    StationMoved,
    StationRetired,
    RepresentativeRegistered,
    DepartmentRegistered,
    DepartmentRetired,
)


def build_consumer(settings: Settings, pool: asyncpg.Pool, planner: Planner) -> Consumer:
    """The notification consumer with its handlers (and the staff roster's)."""
    consumer = RosterConsumer(CONSUMER_NAME, roster=ROSTER, settings=settings, pool=pool)

    async def on_directory(event: object, ctx: HandlerContext) -> None:
        assert isinstance(event, DIRECTORY_EVENTS)
        await planner.on_directory(event, ctx.conn)

    for model in DIRECTORY_EVENTS:
        consumer.handles(model)(on_directory)

    @consumer.handles_many(OpinionSubmitted, *CASE_EVENTS)
    async def on_events(items: Sequence[tuple[Event, HandlerContext]]) -> None:
        # A run of one district's opinions and case events, mixed as they came: planned
        # together in the batch's transaction (a directory event between two runs is
        # applied on its own, in order).
        await planner.plan_batch(items[0][1].conn, [(e, ctx.envelope) for e, ctx in items])

    return consumer
