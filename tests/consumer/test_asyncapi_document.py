"""The AsyncAPI document describes what a service consumes and publishes."""

from __future__ import annotations

from typing import Any, cast

from contracts import CaseOpened, CaseResolved
from eventkit.asyncapi import asyncapi_document
from eventkit.consumer import Consumer, HandlerContext
from eventkit.settings import Settings


def test_the_document_names_consumed_topics_and_published_event_schemas() -> None:
    settings = Settings(topic_prefix="")
    consumer = Consumer("intake", settings=settings, pool=cast(Any, None))

    @consumer.handles(CaseOpened)
    async def opened(event: CaseOpened, ctx: HandlerContext) -> None: ...

    @consumer.handles(CaseResolved)
    async def resolved(event: CaseResolved, ctx: HandlerContext) -> None: ...

    document = asyncapi_document("intake", settings, [consumer])
    assert document["asyncapi"].startswith("3.")
    channels = {c["address"]: c for c in document["channels"].values()}
    assert "CaseOpened" in channels["minqing.cases.v1"]["description"]
    assert "CaseResolved" in channels["minqing.cases.v1"]["description"]
    assert "OpinionSubmitted" in channels["minqing.opinions.v1"]["description"]
    schemas = document["components"]["schemas"]
    assert {"OpinionSubmitted", "FeedbackSubmitted", "OpinionWithdrawn"} <= set(schemas)
    assert "CaseOpened" not in schemas  # intake consumes it, it does not publish it
