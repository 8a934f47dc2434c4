"""The event loop every Minqing process runs on: uvloop's (libuv), not the standard
library's.

Every service here is network-bound asyncio: Kafka records in and out, PostgreSQL round
trips, HTTP, SMTP. Measured under the notification benchmark's burst, running the
service, the relay and the local outbox on uvloop cut their CPU per delivery by about a
tenth. The HTTP services get it from uvicorn (``eventkit.service.serve``); everything
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
