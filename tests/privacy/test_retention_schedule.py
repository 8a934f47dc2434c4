"""``minqing privacy retention run --every HOURS``: retention where no scheduler runs it
(Docker Compose). The command stays up, runs again at the interval, and a run that fails
(the database away) is reported and tried again instead of ending the process."""

from __future__ import annotations

import os
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


def _after(process: subprocess.Popen[str], seconds: float) -> tuple[int | None, str, str]:
    time.sleep(seconds)
    still_running = process.poll()
    process.terminate()
    out, err = process.communicate(timeout=30)
    return still_running, out, err


def test_the_retention_runs_again_at_its_interval_and_stays_up(database_url: str) -> None:
    process = _started(database_url)
    try:
        ended, out, _ = _after(process, 6.0)
    finally:
        process.kill()
    assert ended is None, "the command ended instead of staying up"
    # The test database has no district: each run says so.
    assert out.count("没有区 / no district") >= 2


def test_a_failed_run_is_reported_and_tried_again(database_url: str) -> None:
    unreachable = database_url.rsplit("/", 1)[0] + "/no_such_database_here"
    if "?" in database_url:
        unreachable += "?" + database_url.split("?", 1)[1]
    process = _started(unreachable)
    try:
        ended, _, err = _after(process, 6.0)
    finally:
        process.kill()
    assert ended is None, "a failed run ended the command"
    assert err.count("retention run failed") >= 2
