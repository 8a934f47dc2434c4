"""The overdue scanner (督办): a background task of the service process.

Every ``routing_scan_interval`` seconds it records each deadline that passed
(``CaseOverdue``, escalated by the district's ladder). Every instance of the service
runs one; they cannot double-record, since a missed deadline has one event id.
"""

from __future__ import annotations

import asyncio
import contextlib

from eventkit.logging import get_logger
from services.routing.service import RoutingService

log = get_logger(__name__)


async def run_scanner(
    service: RoutingService, interval: float, stop: asyncio.Event, *, batch: int = 200
) -> None:
    """Scan until ``stop`` is set; a failed scan is logged and tried again next time."""
    while not stop.is_set():
        try:
            recorded = await service.scan_overdue(batch=batch)
            if recorded:
                log.info("overdue deadlines recorded", count=recorded)
        except Exception as exc:
            log.error("overdue scan failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
