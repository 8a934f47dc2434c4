"""Builders shared by the routing tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from contracts import Actor, ActorRole
from contracts.base import Event
from contracts.envelope import Envelope
from eventkit.requests import RequestInfo
from eventkit.store import EventStore
from services.routing.bootstrap import Routing
from services.routing.case_state import CaseState
from services.routing.staff_commands import BY_NAME
from tests.every_district import every_district

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEMO_FILE = Path(__file__).resolve().parents[2] / "deploy" / "districts" / "demo.yaml"
ADMIN = Actor(id="admin_demo", role=ActorRole.DISTRICT_ADMIN)

Submit = Callable[..., Awaitable[Envelope]]
"""``await submit(text, **location)``: an OpinionSubmitted appended as intake would."""


@dataclass
class Clock:
    """A clock the test moves by hand (Monday 28 September 2026, 10:00 in Shanghai)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 9, 28, 10, 0, tzinfo=SHANGHAI))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


async def append_event(store: EventStore, event: Event) -> Envelope:
    """Append ``event`` as its owner would and return it as stored."""
    await store.append(event.stream_id, [Envelope.wrap(event)])
    recorded = await store.read_stream(event.stream_id)
    return recorded[-1].envelope()


async def load_case(routing: Routing, case_id: str) -> CaseState | None:
    """The case as its stream describes it now."""
    async with every_district(routing.pool).acquire() as conn:
        return await routing.cases.load(conn, case_id)


async def act(
    routing: Routing,
    command: str,
    district_id: str,
    case_id: str,
    actor: Actor,
    *,
    info: RequestInfo | None = None,
    **body: Any,
) -> CaseState:
    """Carry out the staff command named ``command`` as the API would, with ``body`` as
    its request body's fields."""
    row = BY_NAME[command]
    return await routing.casework.run(row, district_id, case_id, actor, row.body(**body), info)
