"""Kafka entrypoints: opinions become cases; feedback and withdrawals act on them.

Each handler runs inside the consumer runtime's transaction (``ctx.conn``), so the case's
events, its read model and the version gate commit together: a redelivered opinion is
recognised by the gate, and the events' ids derive from the opinion's event id, so even
a handler retried after an unknown outcome cannot open the case twice.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from contracts.intake import FeedbackSubmitted, OpinionSubmitted, OpinionWithdrawn
from eventkit.consumer import Consumer, HandlerContext, PermanentError
from services.routing.service import CaseNotFound, RoutingService, UnknownDistrict
from services.routing.settings import RoutingSettings

CONSUMER_NAME = "routing"


class RoutingConsumer(Consumer):
    """The routing consumer; with several workers, partitions are handled in parallel.

    Each worker is a member of the consumer group with partitions of its own, handled in
    order (faststream's concurrent-between-partitions subscriber, manual commits).
    """

    def __init__(self, *args: Any, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workers = workers

    def attach(self, broker: KafkaBroker, **subscriber_options: Any) -> None:
        """Subscribe, with ``max_workers`` when more than one worker is wanted."""
        if self.workers > 1:
            subscriber_options.setdefault("max_workers", self.workers)
        super().attach(broker, **subscriber_options)


def build_consumer(
    settings: RoutingSettings, pool: asyncpg.Pool, service: RoutingService
) -> RoutingConsumer:
    """The routing consumer with its handlers."""
    consumer = RoutingConsumer(
        CONSUMER_NAME, settings=settings, pool=pool, workers=settings.routing_consumer_workers
    )

    @consumer.handles(OpinionSubmitted)
    async def opinion_submitted(event: OpinionSubmitted, ctx: HandlerContext) -> None:
        try:
            await service.open_case(event, ctx.envelope, ctx.conn)
        except UnknownDistrict as exc:
            # Retrying cannot help until the district is imported: dead-letter it, and
            # `minqing dlq redrive` brings it back afterwards.
            raise PermanentError(str(exc)) from exc

    @consumer.handles(FeedbackSubmitted)
    async def feedback_submitted(event: FeedbackSubmitted, ctx: HandlerContext) -> None:
        try:
            await service.on_feedback(event, ctx.envelope, ctx.conn)
        except (UnknownDistrict, CaseNotFound) as exc:
            raise PermanentError(str(exc)) from exc

    @consumer.handles(OpinionWithdrawn)
    async def opinion_withdrawn(event: OpinionWithdrawn, ctx: HandlerContext) -> None:
        try:
            await service.on_withdrawn(event, ctx.envelope, ctx.conn)
        except UnknownDistrict as exc:
            raise PermanentError(str(exc)) from exc

    return consumer
