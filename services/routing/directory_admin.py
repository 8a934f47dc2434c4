"""The directory's administration: a district file or an admin's change becomes the
directory events it implies, appended and projected in one transaction.

One change at a time per district (an advisory lock), so each plan sees the last one's
result. Only the differences are emitted (:mod:`services.routing.directory_plan`), so
importing the same file twice changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from contracts.base import Actor, Event
from contracts.directory import RepresentativeLeftStation, RepresentativeRetired, StationRetired
from contracts.envelope import Envelope, Metadata
from eventkit.clock import Clock
from eventkit.db import Conn, district_transaction
from eventkit.logging import get_logger
from eventkit.store import ANY_VERSION, EventStore
from services.routing.deadlines import WorkCalendar
from services.routing.directory import DistrictConfig
from services.routing.directory_plan import Plan, plan_changes
from services.routing.directory_projection import load_config, project_directory
from services.routing.district_file import DirectoryChanges, load_district_file
from services.routing.errors import DirectoryNotFound
from services.routing.liaison_projection import recorded_activities

log = get_logger(__name__)


class DirectoryAdmin:
    """Changes to districts' directories (see the module's note)."""

    def __init__(self, pool: asyncpg.Pool, store: EventStore, clock: Clock) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def import_files(self, files: Sequence[Path], actor: Actor) -> None:
        """Import each district file (only its differences with the directory are emitted)."""
        for path in files:
            district = load_district_file(path)
            plan = await self.change(district.district.code, district, actor)
            log.info(
                "district file imported",
                file=str(path),
                district=district.district.code,
                events=len(plan.events),
            )

    async def change(
        self,
        district_id: str,
        changes: DirectoryChanges,
        actor: Actor,
        *,
        retire_missing: bool = False,
    ) -> Plan:
        """Apply a description of (part of) a district: emit and project the differences."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            now = self._clock()
            tz = current.directory.timezone if current else "Asia/Shanghai"
            if changes.district is not None:
                tz = changes.district.timezone
            today = WorkCalendar.from_years((), timezone=tz).local(now).date()
            recorded = await recorded_activities(
                conn, district_id, [a.id for a in changes.activities]
            )
            result = plan_changes(
                current,
                changes,
                district_id=district_id,
                actor=actor,
                now=now,
                today=today,
                retire_missing=retire_missing,
                activities=recorded,
            )
            summary.update(result.summary)
            return result.events

        summary: dict[str, int] = {}
        events = await self._directory_transaction(district_id, plan)
        return Plan(list(events), summary)

    async def preview(self, district_id: str, changes: DirectoryChanges, actor: Actor) -> Plan:
        """What :meth:`change` would emit now, without writing anything."""
        async with district_transaction(self._pool, district_id) as conn:
            loaded = await load_config(conn, district_id)
            recorded = await recorded_activities(
                conn, district_id, [a.id for a in changes.activities]
            )
        now = self._clock()
        tz = loaded[1].directory.timezone if loaded else "Asia/Shanghai"
        if changes.district is not None:
            tz = changes.district.timezone
        today = WorkCalendar.from_years((), timezone=tz).local(now).date()
        return plan_changes(
            loaded[1] if loaded else None,
            changes,
            district_id=district_id,
            actor=actor,
            now=now,
            today=today,
            activities=recorded,
        )

    async def retire_station(
        self, district_id: str, station_code: str, reason: str | None, actor: Actor
    ) -> None:
        """Close a station; its history and its cases stay."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            station = current.directory.stations.get(station_code) if current else None
            if station is None:
                raise DirectoryNotFound(
                    f"联络站 {station_code} 不存在", f"no station {station_code}"
                )
            if not station.active:
                return []
            return [
                StationRetired(
                    district_id=district_id,
                    occurred_at=self._clock(),
                    actor=actor,
                    station_code=station_code,
                    reason=reason,
                )
            ]

        await self._directory_transaction(district_id, plan)

    async def retire_representative(
        self, district_id: str, representative_id: str, reason: str | None, actor: Actor
    ) -> None:
        """End a representative's service: they leave their stations, history stays."""

        async def plan(conn: Conn, current: DistrictConfig | None) -> Sequence[Event]:
            rep = current.directory.representatives.get(representative_id) if current else None
            if rep is None:
                raise DirectoryNotFound(
                    f"代表 {representative_id} 不存在", f"no representative {representative_id}"
                )
            if not rep.active:
                return []
            now = self._clock()
            base: dict[str, Any] = {
                "district_id": district_id,
                "occurred_at": now,
                "actor": actor,
                "representative_id": representative_id,
            }
            events: list[Event] = [
                RepresentativeLeftStation(**base, station_code=code)
                for code in sorted(rep.stations)
            ]
            events.append(RepresentativeRetired(**base, reason=reason))
            return events

        await self._directory_transaction(district_id, plan)

    async def transaction(
        self,
        district_id: str,
        plan: Callable[[Conn, DistrictConfig | None], Awaitable[Sequence[Event]]],
    ) -> Sequence[Event]:
        """Plan on the district's directory as it is and append what the plan gives, one
        change at a time per district (for changes planned elsewhere, e.g. the liaison
        work's: :mod:`services.routing.liaison_admin`)."""
        return await self._directory_transaction(district_id, plan)

    async def _directory_transaction(
        self,
        district_id: str,
        plan: Callable[[Conn, DistrictConfig | None], Awaitable[Sequence[Event]]],
    ) -> Sequence[Event]:
        async with district_transaction(self._pool, district_id) as conn:
            # One directory change at a time per district: each plan sees the last one's
            # result, and every append finds its stream's head older than itself.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('routing.directory'), hashtext($1))",
                district_id,
            )
            loaded = await load_config(conn, district_id)
            events = await plan(conn, loaded[1] if loaded else None)
            if not events:
                return events
            metadata = Metadata(correlation_id=str(uuid.uuid4()))
            for stream_id, group in _by_stream(events):
                await self._store.append(
                    stream_id,
                    [Envelope.wrap(e, metadata) for e in group],
                    expected_version=ANY_VERSION,
                    conn=conn,
                )
            await project_directory(conn, events)
        log.info("directory changed", district=district_id, events=len(events))
        return events


def _by_stream(events: Sequence[Event]) -> list[tuple[str, list[Event]]]:
    """Events grouped by stream, each group in order, streams in order of first event."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event.stream_id, []).append(event)
    return list(groups.items())
