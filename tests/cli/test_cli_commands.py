"""The ``minqing`` command against the real database, as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import asyncpg

from eventkit.auth import verify_token
from eventkit.db import connect
from eventkit.identity import Role
from eventkit.settings import Settings
from eventkit.store import EventStore
from tests.helpers import envelope


def minqing(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", *args],
        env={**os.environ, "MINQING_LOG_FORMAT": "json", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_twice_applies_nothing_the_second_time(database_url: str) -> None:
    result = minqing("db", "migrate", env={"MINQING_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


async def test_audit_verify_passes_an_intact_store_and_names_a_tampered_event(
    store: EventStore, database_url: str
) -> None:
    stream = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(stream, [envelope(stream) for _ in range(3)])
    env = {"MINQING_DATABASE_URL": database_url}
    intact = minqing("audit", "verify", env=env)
    assert intact.returncode == 0, intact.stderr
    assert "3 events verified" in intact.stdout

    owner: asyncpg.Connection = await connect(database_url)
    try:
        await owner.execute("ALTER TABLE eventstore.events DISABLE TRIGGER USER")
        await owner.execute(
            "UPDATE eventstore.events SET occurred_at = occurred_at - interval '1 day' "
            "WHERE stream_id = $1 AND stream_version = 3",
            stream,
        )
        await owner.execute("ALTER TABLE eventstore.events ENABLE TRIGGER USER")
    finally:
        await owner.close()
    broken = minqing("audit", "verify", env=env)
    assert broken.returncode == 1
    assert f"stream {stream} version 3" in broken.stderr


def test_token_issue_prints_only_a_token_that_verifies() -> None:
    result = minqing(
        "token",
        "issue",
        "--role",
        "liaison",
        "--district",
        "demo",
        "--subject",
        "lo-001",
        env={"MINQING_JWT_SECRET": "s3cret-for-this-test-only-0123456789"},
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert "\n" not in token
    principal = verify_token(Settings(jwt_secret="s3cret-for-this-test-only-0123456789"), token)
    assert (principal.role, principal.district_id, principal.subject) == (
        Role.LIAISON,
        "demo",
        "lo-001",
    )


def test_without_a_database_the_command_says_what_to_do(tmp_path: object) -> None:
    result = minqing("db", "migrate", env={"MINQING_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "minqing up" in result.stderr
    assert "MINQING_DATABASE_URL" in result.stderr


def test_consumer_logs_are_json_lines_carrying_the_bound_ids() -> None:
    script = (
        "from eventkit.logging import configure_logging, bind, get_logger\n"
        "configure_logging('INFO', 'json')\n"
        "with bind(correlation_id='c-1', stream_id='case-9'):\n"
        "    get_logger('t').info('handled', district='demo')\n"
        "get_logger('t').info('after')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    inside, after = (json.loads(line) for line in result.stderr.strip().splitlines())
    assert inside["correlation_id"] == "c-1"
    assert inside["stream_id"] == "case-9"
    assert inside["event"] == "handled"
    assert "correlation_id" not in after
