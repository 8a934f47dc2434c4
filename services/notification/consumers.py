"""Kafka entry points: directory events, opinions and case events, each handed to the
planner inside the consumer runtime's transaction (so the outbox, the projections and the
version gate commit together, and a redelivered event plans nothing new)."""

from __future__ import annotations

import asyncpg

from contracts.cases import EVENTS as CASE_EVENTS
from contracts.cases import CaseEvent
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
from services.notification.planner import Planner

CONSUMER_NAME = "notification"

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
    """The notification consumer with its handlers."""
    consumer = Consumer(CONSUMER_NAME, settings=settings, pool=pool)

    async def on_directory(event: object, ctx: HandlerContext) -> None:
        assert isinstance(event, DIRECTORY_EVENTS)
        await planner.on_directory(event, ctx.conn)

    for model in DIRECTORY_EVENTS:
        consumer.handles(model)(on_directory)

    @consumer.handles(OpinionSubmitted)
    async def on_opinion(event: OpinionSubmitted, ctx: HandlerContext) -> None:
        await planner.on_opinion(event, ctx.envelope, ctx.conn)

    async def on_case(event: object, ctx: HandlerContext) -> None:
        assert isinstance(event, CaseEvent)
        await planner.on_case(event, ctx.envelope, ctx.conn)

    for case_model in CASE_EVENTS:
        consumer.handles(case_model)(on_case)
    return consumer
