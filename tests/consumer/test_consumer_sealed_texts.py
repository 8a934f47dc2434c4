"""The consumer runtime opens the staff's texts sealed inside case events before its
handlers see them (``eventkit.sealed_texts``): a batch from Kafka spanning districts, a
gap filled from the store, a legacy event in clear, a case whose key is gone."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from contracts import Actor, ActorRole, CaseReplied
from contracts.envelope import Envelope
from contracts.topics import CASES
from eventkit.consumer import Consumer, HandlerContext
from eventkit.db import district_transaction
from eventkit.privacy_rights import ERASED
from eventkit.sealed_texts import SEALED_MARK, TextKeys, seal_case_events, shred_texts
from eventkit.settings import Settings
from eventkit.store import EventStore
from tests.consumer.test_consumer_runtime import running, wait_until
from tests.helpers import publish

STAFF = Actor(id="lo_dh_02", role=ActorRole.LIAISON)


async def _sealed_replies(
    pool: asyncpg.Pool, texts: TextKeys, district: str, case_id: str, messages: Sequence[str]
) -> list[Envelope]:
    replies = [
        CaseReplied(
            district_id=district,
            occurred_at=datetime.now(UTC),
            actor=STAFF,
            case_id=case_id,
            message=m,
        )
        for m in messages
    ]
    async with district_transaction(pool, district) as conn:
        sealed = await seal_case_events(conn, texts, replies)
    return [Envelope.wrap(e) for e in sealed]


async def test_a_batch_spanning_districts_reaches_its_handlers_opened(
    store: EventStore, settings: Settings, pool: asyncpg.Pool
) -> None:
    settings = settings.model_copy(update={"kafka_partitions": 1})
    texts = TextKeys(settings.privacy_keys())
    here, there, gone, legacy = (uuid.uuid4().hex[:12] for _ in range(4))
    await store.append(
        f"case-{here}", await _sealed_replies(pool, texts, "demo", here, ["一", "二", "三"])
    )
    await store.append(
        f"case-{there}", await _sealed_replies(pool, texts, "other", there, ["外区答复"])
    )
    await store.append(
        f"case-{gone}", await _sealed_replies(pool, texts, "demo", gone, ["将被删除"])
    )
    await store.append(
        f"case-{legacy}",
        [
            Envelope.wrap(
                CaseReplied(
                    district_id="demo",
                    occurred_at=datetime.now(UTC),
                    actor=STAFF,
                    case_id=legacy,
                    message="旧事件明文",
                )
            )
        ],
    )
    async with district_transaction(pool, "demo") as conn:
        await shred_texts(conn, [gone])
    stored = {
        c: [r.envelope() for r in await store.read_stream(f"case-{c}")]
        for c in (here, there, gone, legacy)
    }
    assert stored[here][0].data["message"] == SEALED_MARK
    # On Kafka: every record but the second reply of ``here`` (filled from the store).
    sent = [e for c in (here, there, gone, legacy) for e in stored[c]]
    sent.remove(stored[here][1])
    topic = settings.topic(CASES)
    await publish(settings, topic, sent)

    seen: dict[str, list[str]] = {}
    forwarded: list[dict[str, object]] = []
    consumer = Consumer(f"sealed-{here}", settings=settings, pool=pool, batch_size=50)

    @consumer.handles_many(CaseReplied)
    async def replies(events: Sequence[tuple[CaseReplied, HandlerContext]]) -> None:
        for event, ctx in events:
            seen.setdefault(event.case_id, []).append(event.message)
            forwarded.append(ctx.envelope.data)

    async with running(settings, consumer):
        await wait_until(lambda: sum(len(v) for v in seen.values()) >= 6)

    assert seen[here] == ["一", "二", "三"]
    assert seen[there] == ["外区答复"]
    assert seen[gone] == [ERASED]
    assert seen[legacy] == ["旧事件明文"]
    assert not any(data.get("sealed") for data in forwarded)  # webhooks forward clear
    assert consumer.stats.gap_filled == 1
    assert consumer.stats.dead_lettered == 0
