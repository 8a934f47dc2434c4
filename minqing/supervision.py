"""Running the local stack's processes: each child supervised (restarted with backoff
when it exits on its own, stopped with SIGTERM then SIGKILL), its output prefixed on the
terminal and kept in its log file; SIGINT and SIGTERM turned into a stop that start-up
and teardown check between their steps. ``minqing.stack`` decides what runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from eventkit.local import die_with_parent

STOP_GRACE = 10.0
"""Seconds a child gets between SIGTERM and SIGKILL."""
_BACKOFF_FIRST = 1.0
_BACKOFF_MAX = 30.0
_STABLE_AFTER = 30.0
"""A child that ran this long before exiting starts again from the first backoff."""
_READ_CHUNK = 65536

COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92")
"""The terminal colours of the children's prefixes, in turn."""
SELF_NAME = "minqing"
"""The prefix of the supervisor's own lines."""


# --- signals --------------------------------------------------------------------------


class Signals:
    """SIGINT and SIGTERM only record that a stop was asked for.

    During start-up the steps check the record between them, so no exception ever
    lands in the middle of starting PostgreSQL; while the children run, the record also
    wakes the event loop; during teardown a second Ctrl-C cannot cut the cleanup short.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(sig, self._handle)
            if previous is not None:  # None: set outside Python, nothing to restore
                self._previous[sig] = previous

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def attach(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop, self._event = loop, event
        if self.received is not None:
            event.set()

    def detach(self) -> None:
        self._loop = self._event = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum
        if self._loop is not None and self._event is not None:
            # The handler runs in the main thread between bytecodes, possibly inside the
            # selector's poll: call_soon_threadsafe also wakes the loop up.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._event.set)


# --- output ---------------------------------------------------------------------------


class Console:
    """Prefixed, optionally coloured lines on stdout; the stack's own lines also to a file."""

    def __init__(self, width: int, own_log: IO[bytes]) -> None:
        self.width = width
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self._own_log = own_log

    def line(self, name: str, colour: str, text: str) -> None:
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        try:
            sys.stdout.write(f"{prefix} {text}\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            # Nobody reads our stdout any more: the log files still have everything.
            pass

    def say(self, text: str) -> None:
        """A line of the supervisor itself."""
        self.line(SELF_NAME, "1", text)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with contextlib.suppress(OSError):
            self._own_log.write(f"{stamp} {text}\n".encode())
            self._own_log.flush()


# --- supervised children ----------------------------------------------------------------


@dataclass
class Child:
    """One supervised process, restarted with backoff when it exits on its own."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_file: IO[bytes]
    colour: str
    console: Console
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    async def run(self, stop: asyncio.Event) -> None:
        """Run the process until ``stop``; restart it whenever it exits before that."""
        loop = asyncio.get_running_loop()
        backoff = _BACKOFF_FIRST
        while not stop.is_set():
            started = loop.time()
            outcome = await self._run_once(stop)
            if stop.is_set():
                return
            if loop.time() - started >= _STABLE_AFTER:
                backoff = _BACKOFF_FIRST
            self.console.say(
                f"{self.name} 意外退出 / exited unexpectedly ({outcome}); "
                f"{backoff:g} 秒后重启 / restarting in {backoff:g} s"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _run_once(self, stop: asyncio.Event) -> str:
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
                # Its own session: a Ctrl-C on the terminal reaches only `up`, which then
                # stops the children in order instead of all at once.
                start_new_session=True,
                # And if `up` itself is killed outright, the child still goes.
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            return f"could not start: {exc}"
        self.process = process
        if stop.is_set():
            # The stop came while we were starting it: the shutdown may have missed it.
            process.terminate()
        assert process.stdout is not None
        pump = asyncio.create_task(self._pump(process.stdout))
        code = await process.wait()
        # A grandchild holding the pipe open must not keep us waiting for the last lines.
        _done, pending = await asyncio.wait({pump}, timeout=2)
        for task in pending:
            task.cancel()
        self.process = None
        return f"signal {-code}" if code < 0 else f"code {code}"

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        # Read chunks, not readline(): a very long line must not break the pump.
        pending = b""
        while chunk := await stream.read(_READ_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._emit(raw)
        if pending:
            self._emit(pending)

    def _emit(self, raw: bytes) -> None:
        with contextlib.suppress(OSError):
            self.log_file.write(raw + b"\n")
            self.log_file.flush()
        self.console.line(self.name, self.colour, raw.decode("utf-8", "replace").rstrip("\r"))

    def send(self, sig: int) -> bool:
        """Send ``sig`` to the process if it runs; whether it did."""
        process = self.process
        if process is None or process.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        return True


async def supervise(
    children: list[Child], signals: Signals, console: Console, banner: Callable[[], None]
) -> None:
    """Run the children until SIGINT/SIGTERM, then stop them: SIGTERM, then SIGKILL."""
    stop = asyncio.Event()
    signals.attach(asyncio.get_running_loop(), stop)
    try:
        tasks = [asyncio.create_task(child.run(stop), name=child.name) for child in children]
        banner()
        await stop.wait()
        console.say("正在停止 / stopping ...")
        if not tasks:
            return
        for child in children:
            child.send(signal.SIGTERM)
        _done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
        if pending:
            for child in children:
                if child.send(signal.SIGKILL):
                    console.say(f"{child.name} 未在 {STOP_GRACE:g} 秒内退出，强制结束 / killed")
            _done, pending = await asyncio.wait(pending, timeout=5)
            for task in pending:
                task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                console.say(f"{task.get_name()} supervisor failed: {task.exception()!r}")
    finally:
        signals.detach()
