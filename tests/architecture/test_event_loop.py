"""Every Minqing process runs on uvloop's event loop (``eventkit.loop``), and so do the
tests: what is tested is what runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import uvloop

from eventkit.loop import run


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_the_processes_run_on_uvloop() -> None:
    assert issubclass(run(_loop_type()), uvloop.Loop)


async def test_the_tests_run_on_uvloop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


def test_no_process_starts_a_loop_of_another_kind() -> None:
    root = Path(__file__).resolve().parents[2]
    starting = sorted(
        str(path.relative_to(root))
        for folder in ("services", "eventkit", "minqing", "tests", "bench")
        for path in (root / folder).rglob("*.py")
        if "asyncio.run(" in path.read_text(encoding="utf-8")
        and path != root / "eventkit" / "loop.py"
        and path != Path(__file__).resolve()
    )
    assert starting == [], f"start loops with eventkit.loop.run, not asyncio.run: {starting}"
