"""``minqing routing train`` and ``minqing routing evaluate`` as an operator runs them, on
the demo district in the test's database (the real labelled set is fitted once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from eventkit.store import EventStore
from services.routing.bootstrap import Routing
from services.routing.training import labelled_set


def minqing(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", "routing", *args],
        env={**os.environ, "MINQING_DATABASE_URL": database_url, "MINQING_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_train_publishes_evaluate_reports_and_a_worse_model_is_refused(
    demo: Routing, database_url: str, store: EventStore, tmp_path: Path
) -> None:
    trained = minqing(database_url, "train", "--district", "demo")

    assert trained.returncode == 0, trained.stderr
    assert "published classifier v1" in trained.stdout
    types = [r.event_type for r in await store.read_stream("district-demo")]
    assert types.count("ClassifierTrained") == 1

    report = minqing(database_url, "evaluate", "--district", "demo")

    assert report.returncode == 0, report.stderr
    print(report.stdout)
    assert "model v1 + keywords" in report.stdout
    assert "urgent recall 100.0%" in report.stdout
    assert "safety" in report.stdout
    assert "most frequent confusions" in report.stdout
    assert "cost of one classification" in report.stdout

    lines = labelled_set("demo").read_text(encoding="utf-8").splitlines()
    few = tmp_path / "few.jsonl"
    few.write_text("\n".join(lines[:: len(lines) // 30]) + "\n", encoding="utf-8")
    assert all(json.loads(line) for line in few.read_text(encoding="utf-8").splitlines())

    worse = minqing(database_url, "train", "--district", "demo", "--set", str(few))

    assert worse.returncode == 1
    assert "not published" in worse.stderr
    types = [r.event_type for r in await store.read_stream("district-demo")]
    assert types.count("ClassifierTrained") == 1

    again = minqing(database_url, "train", "--district", "demo", "--reproduce", "1")

    assert again.returncode == 0, again.stderr
    assert "version 1 reproduced" in again.stdout
