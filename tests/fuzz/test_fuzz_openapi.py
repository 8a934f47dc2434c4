"""Every service's OpenAPI document, fuzzed (schemathesis, on Hypothesis) through the
ASGI app in-process, on the real database with the demo district and a district admin's
token: no answer is a server error, and every answer matches the schema the document
declares for it (errors: ``application/problem+json``).

Bounded: ``MINQING_FUZZ_EXAMPLES`` examples per operation and mode (valid and invalid
data), and at most ``MINQING_FUZZ_SECONDS`` per service; the whole file takes about a
minute on two cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.strategies import SearchStrategy
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from eventkit.settings import Settings
from tests.security.service_apps import SERVICES, admin_headers, build, prepare

EXAMPLES = int(os.environ.get("MINQING_FUZZ_EXAMPLES", "6"))
SECONDS = float(os.environ.get("MINQING_FUZZ_SECONDS", "20"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
async def prepared(settings: Settings, pool: asyncpg.Pool) -> Settings:
    await prepare(settings, pool)
    return settings


@pytest.fixture
def lifespans() -> Iterator[None]:
    yield
    asgi.shutdown_lifespans()


def fuzz(strategy: SearchStrategy[Case[Any]], headers: dict[str, str]) -> None:
    """Send ``EXAMPLES`` requests drawn from ``strategy``; fail on any broken check."""

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case: Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_request_makes_a_service_fail_or_answer_off_its_schema(
    service: str, prepared: Settings, lifespans: None
) -> None:
    service_settings, app = build(service, prepared)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = admin_headers(service_settings)
    deadline = time.monotonic() + SECONDS
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert operations, f"{service} documents no operation"
    tried = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() > deadline:
                break
            strategy = operation.as_strategy(generation_mode=mode)
            try:
                fuzz(strategy, headers)
            except hypothesis.errors.Unsatisfiable:
                # Nothing to make invalid (no parameter, no body): only valid requests.
                assert mode is GenerationMode.NEGATIVE
                continue
            tried += 1
    print(f"{service}: {tried} operation×mode runs of {len(operations)} operations")
