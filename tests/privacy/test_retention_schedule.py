"""``minqing privacy retention run --every HOURS``: retention where no scheduler runs it
(Docker Compose). The command stays up, runs again at the interval, and a run that fails
(the database away) is reported and tried again instead of ending the process."""

from __future__ import annotations

import codecs
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
EVERY_HOURS = "0.0002"  # 0.72 s
RETENTION = ("privacy", "retention", "run")


def _started(database_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "minqing.cli", *RETENTION, "--every", EVERY_HOURS],
        env={**os.environ, "MINQING_DATABASE_URL": database_url, "MINQING_LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _until(
    process: subprocess.Popen[str], stream: str, text: str, times: int, timeout: float = 60.0
) -> tuple[int | None, str]:
    """What ``process`` wrote to ``stream`` (stdout or stderr) until ``text`` appeared
    ``times`` times, or ``timeout`` passed (a loaded machine starts the command slowly);
    whether it was still running then."""
    pipe = process.stdout if stream == "stdout" else process.stderr
    assert pipe is not None
    seen = ""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may be split
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        while seen.count(text) < times and (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    break  # the command ended
                seen += decoder.decode(chunk)
    return process.poll(), seen


def test_the_retention_runs_again_at_its_interval_and_stays_up(database_url: str) -> None:
    process = _started(database_url)
    try:
        # The test database has no district: each run says so.
        ended, out = _until(process, "stdout", "没有区 / no district", 2)
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert ended is None, "the command ended instead of staying up"
    assert out.count("没有区 / no district") >= 2


def test_a_failed_run_is_reported_and_tried_again(database_url: str) -> None:
    unreachable = database_url.rsplit("/", 1)[0] + "/no_such_database_here"
    if "?" in database_url:
        unreachable += "?" + database_url.split("?", 1)[1]
    process = _started(unreachable)
    try:
        ended, err = _until(process, "stderr", "retention run failed", 2)
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert ended is None, "a failed run ended the command"
    assert err.count("retention run failed") >= 2
