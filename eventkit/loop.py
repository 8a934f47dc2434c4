"""The event loop every Minqing process runs on: uvloop's (libuv), not the standard
library's.

Every service here is network-bound asyncio: Kafka records in and out, PostgreSQL round
trips, HTTP, SMTP. Measured in A/B runs minutes apart: the notification burst's CPU per
delivery 3.72 → 3.42 ms, routing's CPU per case 1.84 → 1.69 ms (docs/performance.md).
The HTTP services get it from uvicorn (``eventkit.service.serve``); everything
else that runs a loop of its own (the relay, the CLI's commands, the rebuild's fold
workers, the local outbox, the stack's supervisor) goes through :func:`run`, and the
tests run on it too (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the kind Minqing runs on."""
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a loop of the kind Minqing runs on."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
