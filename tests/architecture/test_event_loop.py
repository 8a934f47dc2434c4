"""Every Minqing process runs on uvloop's event loop (``eventkit.loop``), and so do the
tests: what is tested is what runs."""

from __future__ import annotations

import asyncio

import uvloop

from eventkit.loop import run


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_the_processes_run_on_uvloop() -> None:
    assert issubclass(run(_loop_type()), uvloop.Loop)


async def test_the_tests_run_on_uvloop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
