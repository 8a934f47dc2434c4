"""Kafka entry points: every event reporting projects, handed to the projector inside
the consumer runtime's transaction (``ctx.conn``), so the projection rows and the
version gate commit together."""

from __future__ import annotations

import asyncpg

from contracts.base import Event
from eventkit.consumer import Consumer, HandlerContext
from services.reporting.changes import HANDLED
from services.reporting.projection import CONSUMER_NAME, Projector
from services.reporting.settings import ReportingSettings


def build_consumer(
    settings: ReportingSettings, pool: asyncpg.Pool, projector: Projector
) -> Consumer:
    """The reporting consumer: one handler for every type it projects."""
    consumer = Consumer(
        CONSUMER_NAME,
        settings=settings,
        pool=pool,
        batch_size=settings.reporting_consumer_batch,
    )

    async def project(event: Event, ctx: HandlerContext) -> None:
        await projector.apply(ctx.conn, event, ctx.envelope, ctx.topic)

    for model in HANDLED:
        consumer.handles(model)(project)
    return consumer
