"""The liaison work's changes to the directory: reception days cancelled, moved and
planned ahead, departments, staff and spokespersons retired, activities recorded.

Each change goes through :meth:`DirectoryAdmin.transaction` (one change at a time per
district, events appended and projected in one transaction). The reception planner
(:meth:`LiaisonAdmin.run_planner`) plans every district's reception days from the
representatives' rules every ``routing_reception_plan_interval`` seconds, so that a
service running for months never runs out of days; several instances plan the same days
once (the per-district lock, and each plan sees the days already known).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import date, time
from typing import Any

import asyncpg

from contracts.base import Actor, ActorRole, Event
from contracts.directory import (
    DepartmentRetired,
    ReceptionDayCancelled,
    ReceptionDayMoved,
    SpokespersonRetired,
    StaffMemberRetired,
)
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, Conn, scope
from eventkit.logging import get_logger
from services.routing.deadlines import WorkCalendar
from services.routing.directory import DistrictConfig
from services.routing.directory_admin import DirectoryAdmin
from services.routing.directory_plan import Plan
from services.routing.district_file import ActivityEntry, DirectoryChanges
from services.routing.errors import DirectoryNotFound, RoutingError
from services.routing.liaison_plan import reception_plan

log = get_logger(__name__)

PLANNER = Actor(id="reception-planner", role=ActorRole.SYSTEM)
"""Who plans reception days from the published rules."""


class LiaisonAdmin:
    """See the module's note."""

    def __init__(self, pool: asyncpg.Pool, directory: DirectoryAdmin, clock: Clock) -> None:
        self._pool = pool
        self._directory = directory
        self._clock = clock

    def _base(self, district_id: str, actor: Actor) -> dict[str, Any]:
        return {"district_id": district_id, "occurred_at": self._clock(), "actor": actor}

    def _today(self, config: DistrictConfig | None) -> date:
        tz = config.directory.timezone if config else "Asia/Shanghai"
        return WorkCalendar.from_years((), timezone=tz).local(self._clock()).date()

    # ------------------------------------------------------------------ reception days

    async def cancel_reception_day(
        self,
        district_id: str,
        representative_id: str,
        station_code: str,
        day: date,
        reason: str | None,
        actor: Actor,
    ) -> None:
        """A scheduled reception day will not take place."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            _scheduled(current, representative_id, station_code, day)
            return [
                ReceptionDayCancelled(
                    **self._base(district_id, actor),
                    representative_id=representative_id,
                    station_code=station_code,
                    day=day,
                    reason=reason,
                )
            ]

        await self._directory.transaction(district_id, plan)

    async def move_reception_day(
        self,
        district_id: str,
        representative_id: str,
        station_code: str,
        day: date,
        to_day: date,
        actor: Actor,
        *,
        starts_at: time | None = None,
        ends_at: time | None = None,
        reason: str | None = None,
    ) -> None:
        """A scheduled reception day moves to ``to_day`` (and the given hours)."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            _scheduled(current, representative_id, station_code, day)
            assert current is not None
            if to_day < self._today(current):
                raise RoutingError(
                    "不能改到已过去的日期", "a reception day cannot move to the past"
                )
            taken = any(
                (d.representative_id, d.station_code, d.day)
                == (representative_id, station_code, to_day)
                for d in current.directory.reception_days
            )
            if taken:
                raise RoutingError(
                    f"{to_day} 已有接待安排", f"there is a reception day on {to_day} already"
                )
            return [
                ReceptionDayMoved(
                    **self._base(district_id, actor),
                    representative_id=representative_id,
                    station_code=station_code,
                    day=day,
                    to_day=to_day,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    reason=reason,
                )
            ]

        await self._directory.transaction(district_id, plan)

    async def plan_reception_days(self, district_id: str, actor: Actor = PLANNER) -> int:
        """Plan the district's reception days up to the horizon; how many were added."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            if current is None:
                return []
            return reception_plan(current, self._base(district_id, actor), self._today(current))

        return len(await self._directory.transaction(district_id, plan))

    async def plan_all(self) -> int:
        """Plan every district's reception days; how many were added."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Which districts there are is a question about all of them; each is then
            # planned in its own scope.
            await scope(conn, ALL_DISTRICTS)
            districts = [r["district_id"] for r in await conn.fetch(_DISTRICTS)]
        return sum([await self.plan_reception_days(d) for d in districts])

    async def run_planner(self, stop: asyncio.Event, *, interval: float) -> None:
        """Plan every ``interval`` seconds until ``stop`` is set (a failed round is
        logged and tried again next time)."""
        while not stop.is_set():
            try:
                added = await self.plan_all()
                if added:
                    log.info("reception days planned", count=added)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.error("reception planning failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    # ------------------------------------------------------------------ people, activities

    async def record_activity(self, district_id: str, entry: ActivityEntry, actor: Actor) -> Plan:
        """Record (or correct) an activity held at a station."""
        return await self._directory.change(
            district_id, DirectoryChanges(activities=[entry]), actor
        )

    async def retire(
        self, district_id: str, kind: str, key: str, reason: str | None, actor: Actor
    ) -> None:
        """Retire a department, a staff member or a spokesperson (``kind``); their
        history stays. Retiring one already retired changes nothing."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            d = current.directory if current else None
            base = self._base(district_id, actor)
            if kind == "department":
                department = d.departments.get(key) if d else None
                if department is None:
                    raise DirectoryNotFound(f"部门 {key} 不存在", f"no department {key}")
                active = department.active
                event: Event = DepartmentRetired(**base, department_code=key, reason=reason)
            elif kind == "staff":
                member = d.staff.get(key) if d else None
                if member is None:
                    raise DirectoryNotFound(f"人员 {key} 不存在", f"no staff member {key}")
                active = member.active
                event = StaffMemberRetired(**base, staff_id=key, reason=reason)
            else:
                sp = d.spokespersons.get(key) if d else None
                if sp is None:
                    raise DirectoryNotFound(f"群众代言员 {key} 不存在", f"no spokesperson {key}")
                active = sp.active
                event = SpokespersonRetired(
                    **base, spokesperson_id=key, station_code=sp.station_code, reason=reason
                )
            return [event] if active else []

        await self._directory.transaction(district_id, plan)


_DISTRICTS = "SELECT district_id FROM routing.districts ORDER BY district_id"


def _scheduled(
    current: DistrictConfig | None, representative_id: str, station_code: str, day: date
) -> None:
    """Refuse a day that is not scheduled (unknown, cancelled or moved already)."""
    days = current.directory.reception_days if current else ()
    if not any(
        d.representative_id == representative_id and d.station_code == station_code and d.day == day
        for d in days
    ):
        raise DirectoryNotFound(
            f"代表 {representative_id} 在 {station_code} 没有 {day} 的接待安排",
            f"no reception day of {representative_id} at {station_code} on {day}",
        )
