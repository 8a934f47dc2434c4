"""Kafka entrypoints: opinions become cases; feedback and withdrawals act on them.

Thin: each handler hands the event to :mod:`services.routing.opening` or
:mod:`services.routing.reactions` inside the consumer runtime's transaction
(``ctx.conn``), so the case's events, its read model and the version gate commit together.
A district not yet imported cannot be helped by retrying: such an event goes straight to
the DLQ, and ``minqing dlq redrive`` brings it back afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from contracts.intake import FeedbackSubmitted, OpinionSubmitted, OpinionWithdrawn
from eventkit.consumer import Consumer, HandlerContext, PermanentError
from services.routing.errors import CaseNotFound, UnknownDistrict
from services.routing.opening import CaseOpening
from services.routing.reactions import Reactions
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
    settings: RoutingSettings, pool: asyncpg.Pool, opening: CaseOpening, reactions: Reactions
) -> RoutingConsumer:
    """The routing consumer with its handlers."""
    consumer = RoutingConsumer(
        CONSUMER_NAME, settings=settings, pool=pool, workers=settings.routing_consumer_workers
    )

    @consumer.handles_many(OpinionSubmitted)
    async def opinions_submitted(
        opinions: Sequence[tuple[OpinionSubmitted, HandlerContext]],
    ) -> None:
        # The opinions of one batch open their cases together (one query, one append).
        try:
            await opening.open_cases(
                [(o, ctx.envelope) for o, ctx in opinions], opinions[0][1].conn
            )
        except UnknownDistrict as exc:
            raise PermanentError(str(exc)) from exc

    @consumer.handles(FeedbackSubmitted)
    async def feedback_submitted(event: FeedbackSubmitted, ctx: HandlerContext) -> None:
        try:
            await reactions.on_feedback(event, ctx.envelope, ctx.conn)
        except (UnknownDistrict, CaseNotFound) as exc:
            raise PermanentError(str(exc)) from exc

    @consumer.handles(OpinionWithdrawn)
    async def opinion_withdrawn(event: OpinionWithdrawn, ctx: HandlerContext) -> None:
        try:
            await reactions.on_withdrawn(event, ctx.envelope, ctx.conn)
        except UnknownDistrict as exc:
            raise PermanentError(str(exc)) from exc

    return consumer
