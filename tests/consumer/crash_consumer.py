"""A consumer process for the crash test: it can die right after committing an effect.

``CRASH_AT_VERSION=n`` makes it exit at once after the transaction of stream version n
has committed and before the Kafka offset is committed: the worst moment.
"""

from __future__ import annotations

import asyncio
import os
import signal

from contracts import CaseReplied
from contracts.envelope import Envelope
from eventkit.consumer import Consumer, HandlerContext, run_consumers
from eventkit.db import create_pool
from eventkit.loop import run as run_loop
from eventkit.settings import Settings

CRASH_EXIT_CODE = 17


async def main() -> None:
    settings = Settings()
    assert settings.database_url
    crash_at = int(os.environ.get("CRASH_AT_VERSION", "0"))
    pool = await create_pool(settings.database_url, role=settings.database_role)

    def after_commit(envelope: Envelope) -> None:
        if envelope.stream_version == crash_at:
            os._exit(CRASH_EXIT_CODE)

    consumer = Consumer("crashy", settings=settings, pool=pool, after_commit=after_commit)

    @consumer.handles(CaseReplied)
    async def record(event: CaseReplied, ctx: HandlerContext) -> None:
        await ctx.conn.execute(
            "INSERT INTO public.effects (event_id, stream_id, stream_version) VALUES ($1, $2, $3)",
            ctx.envelope.event_id,
            ctx.envelope.stream_id,
            ctx.envelope.stream_version,
        )

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await run_consumers(settings, [consumer], stop)
    finally:
        await pool.close()


if __name__ == "__main__":
    run_loop(main())
