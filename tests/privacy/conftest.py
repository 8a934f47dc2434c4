"""Fixtures of the residents' rights tests: every service on the test's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from eventkit.settings import Settings
from services.routing.classification import JiebaSegmenter
from tests.privacy.privacy_support import System, running_system


@pytest.fixture(scope="session")
def segmenter() -> JiebaSegmenter:
    """jieba, loaded once for the whole run."""
    words = JiebaSegmenter()
    words.load()
    return words


@pytest.fixture
async def system(
    settings: Settings, pool: asyncpg.Pool, segmenter: JiebaSegmenter
) -> AsyncIterator[System]:
    """Intake, routing, notification and reporting, both districts, their admins."""
    async with running_system(settings, pool, segmenter) as running:
        yield running
