"""The overdue scanner (督办): every missed deadline recorded once, escalated by the
district's ladder.

The service runs :meth:`OverdueScanner.run` in the background, scanning every
``routing_scan_interval`` seconds; ``minqing routing scan`` runs one scan. Several
instances cannot double-record: a missed deadline has one event id.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import asyncpg

from contracts.envelope import Metadata
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, scope
from eventkit.logging import get_logger
from eventkit.store import retrying
from services.routing.case_projection import cases_due, update_case
from services.routing.case_store import LOST_RACES, CaseStore
from services.routing.district_context import DistrictContexts
from services.routing.domain import overdue_events
from services.routing.ids import event_ids
from services.routing.metrics import DEADLINES_MISSED, SCAN_FAILURES

log = get_logger(__name__)


class OverdueScanner:
    """Records missed deadlines (see the module's note)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cases: CaseStore,
        districts: DistrictContexts,
        clock: Clock,
        *,
        max_attempts: int = 6,
    ) -> None:
        self._pool = pool
        self._cases = cases
        self._districts = districts
        self._clock = clock
        self._max_attempts = max_attempts

    async def run(self, stop: asyncio.Event, *, interval: float, batch: int = 200) -> None:
        """Scan every ``interval`` seconds until ``stop`` is set; a failed scan is logged
        and tried again next time."""
        while not stop.is_set():
            try:
                recorded = await self.scan(batch=batch)
                if recorded:
                    log.info("overdue deadlines recorded", count=recorded)
            except Exception as exc:  # noqa: BLE001 - the next scan tries again
                log.error("overdue scan failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def scan(self, now: datetime | None = None, *, batch: int = 200) -> int:
        """Record every missed deadline up to ``now``; return how many were recorded.

        Safe to run in several processes at once: each missed deadline has one event id.
        """
        moment = now or self._clock()
        recorded = 0
        seen: set[str] = set()
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                # The sweep looks for due cases of every district at once (one indexed
                # query, cheaper than one per district); each case found is then
                # recorded in its own district's scope.
                await scope(conn, ALL_DISTRICTS)
                due = await cases_due(conn, moment, seen, batch)
            for case_id, district_id in due:
                seen.add(case_id)
                try:
                    recorded += await self._record(district_id, case_id, moment)
                except Exception as exc:  # noqa: BLE001 - one case must not stop the others
                    # The next scan tries it again. Only ids and the error's type are
                    # logged: no resident's words.
                    SCAN_FAILURES.labels(district_id).inc()
                    log.error(
                        "overdue scan of a case failed",
                        case_id=case_id,
                        district_id=district_id,
                        error=type(exc).__name__,
                    )
            if len(due) < batch:
                return recorded

    async def _record(self, district_id: str, case_id: str, now: datetime) -> int:
        async def attempt() -> int:
            async with self._pool.acquire() as conn, conn.transaction():
                await scope(conn, district_id)
                state = await self._cases.load(conn, case_id)
                if state is None:
                    return 0
                ctx = await self._districts.require(conn, district_id)
                events = overdue_events(state, now, ctx.rules(state))
                if not events:
                    await update_case(conn, state)
                    return 0
                appended = await self._cases.save(
                    conn,
                    state,
                    list(events),
                    event_ids(events, "scanner", state.overdue_count),
                    Metadata(),
                )
                if appended.version == state.version:
                    return 0  # another scanner recorded the very same events first
                for event in events:
                    DEADLINES_MISSED.labels(
                        district_id, event.deadline, event.escalation_level or ""
                    ).inc()
                    log.warning(
                        "deadline missed",
                        case_id=case_id,
                        deadline=event.deadline,
                        due=event.due.isoformat(),
                        escalated_to=event.escalated_to,
                    )
                return len(events)

        return await retrying(attempt, on=LOST_RACES, attempts=self._max_attempts)
