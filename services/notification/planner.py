"""From events to the deliveries they call for, inside the consumer's transaction.

For each event: keep what the rules need to know (:mod:`services.notification.projections`),
load the facts around it, let :func:`services.notification.rules.plan` decide, and record
the deliveries in the outbox; for case events, one delivery per outside subscription and
a record for the district's public feed. Nothing is sent here: the sender works the outbox
after this transaction commits, so a crash or a redelivered event never sends twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from contracts import REGISTRY
from contracts.base import Event
from contracts.cases import CaseAssigned, CaseEscalated, CaseEvent, CaseOpened, CaseOverdue
from contracts.envelope import Envelope
from contracts.intake import OpinionSubmitted
from contracts.public import public_data
from eventkit import cloudevents
from eventkit.clock import Clock
from eventkit.db import Conn, scope
from eventkit.store import EventStore
from services.notification import contacts, overrides, projections
from services.notification.ids import delivery_id
from services.notification.outbox import NewDelivery
from services.notification.outbox import plan as plan_deliveries
from services.notification.overrides import DistrictSetup
from services.notification.rules import (
    RULE_EVENTS,
    CaseFacts,
    Facts,
    Planned,
    ResidentFacts,
    plan,
    staff_needed,
    template_context,
)
from services.notification.subscriptions import FAR_FUTURE
from services.notification.timing import after_quiet_hours


class Planner:
    """Plans the deliveries of each event (see the module's note)."""

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        *,
        quiet_hours: tuple[int, int] = (22, 8),
        public_feed: bool = True,
    ) -> None:
        self._store = store
        self._clock = clock
        self._quiet = quiet_hours
        self._public_feed = public_feed

    async def on_directory(self, event: Event, conn: Conn) -> None:
        """A directory event: keep what the rules and the messages use."""
        await projections.project_directory(conn, event)

    async def on_opinion(self, opinion: OpinionSubmitted, envelope: Envelope, conn: Conn) -> None:
        """An opinion: keep its resident (sealed), and send a receipt when staff took it."""
        await projections.record_opinion(conn, opinion)
        facts = Facts(event=opinion, resident=projections.resident_of(opinion))
        setup = await overrides.district_setup(conn, opinion.district_id)
        await plan_deliveries(conn, await self._planned(conn, envelope, facts, None, setup))

    async def on_case(self, event: CaseEvent, envelope: Envelope, conn: Conn) -> None:
        """A case event: tell whom the rules say, the subscribers, and the public feed."""
        district = event.district_id
        if isinstance(event, CaseOpened):
            await projections.record_case(conn, event)
        setup = await overrides.district_setup(conn, district)
        deliveries: list[NewDelivery] = []
        if event.event_type in RULE_EVENTS:
            station_code = event.station_code if isinstance(event, CaseAssigned) else None
            case, station = await projections.case_and_station(
                conn, district, event.case_id, station_code
            )
            facts = await self._around(conn, Facts(event=event, case=case, station=station))
            deliveries += await self._planned(conn, envelope, facts, case, setup)
        else:
            case = await projections.case_facts(conn, event.case_id)
        deliveries += self._to_subscribers(event, envelope, case, setup)
        await plan_deliveries(conn, deliveries)
        if not isinstance(event, CaseOpened):
            await projections.record_case(conn, event)
        if self._public_feed:
            await self._publish(conn, envelope, event)

    async def _around(self, conn: Conn, facts: Facts) -> Facts:
        """What some rules need beyond the case and its station."""
        event, case, station = facts.event, facts.case, facts.station
        district = event.district_id
        if isinstance(event, CaseOverdue) and event.escalation_level == "street":
            supervisors = await projections.street_supervisors(
                conn, district, station.street_code if station else None
            )
            facts = _with(facts, street_supervisors=supervisors)
        if _needs_admins(event):
            admins = await contacts.with_role(conn, district, "district_admin")
            facts = _with(facts, district_admins=admins)
        if event.event_type == "CaseEscalated":
            facts = _with(facts, departments=await contacts.departments(conn, district))
        code = getattr(event, "department_code", None)
        if isinstance(event, CaseEscalated | CaseOverdue) and code is not None:
            staff = await projections.department_staff(conn, district, code)
            facts = _with(facts, department_staff=staff)
        if case is not None and event.event_type in _RESIDENT_EVENTS:
            resident = await self._resident(conn, district, case.case_id, case.opinion_id)
            facts = _with(facts, resident=resident)
        return facts

    async def _planned(
        self,
        conn: Conn,
        envelope: Envelope,
        facts: Facts,
        case: CaseFacts | None,
        setup: DistrictSetup,
    ) -> list[NewDelivery]:
        event = facts.event
        needed = staff_needed(event, facts)
        if needed:
            found = await contacts.load(conn, event.district_id, needed)
            facts = _with(facts, contacts=found)
        planned = plan(facts, setup.rules)
        if not planned:
            return []
        context = template_context(event, case)
        if facts.resident is not None and facts.resident.district_id is not None:
            # The sender opens the resident's contact in the district that holds it.
            context["resident_district"] = facts.resident.district_id
        now = self._clock()
        return [
            self._delivery(p, envelope, event, case, context, now, setup.timezone) for p in planned
        ]

    def _delivery(
        self,
        p: Planned,
        envelope: Envelope,
        event: Event,
        case: CaseFacts | None,
        context: dict[str, Any],
        now: datetime,
        timezone: str,
    ) -> NewDelivery:
        not_before, held = now, None
        if p.recipient_kind == "resident" and p.channel == "sms":
            quiet_end = after_quiet_hours(now, timezone, *self._quiet)
            if quiet_end is not None:
                not_before, held = quiet_end, "quiet_hours"
        opinion_id = case.opinion_id if case else getattr(event, "opinion_id", None)
        return NewDelivery(
            delivery_id=delivery_id(envelope.event_id, p.recipient_kind, p.recipient, p.channel),
            district_id=event.district_id,
            source_event_id=envelope.event_id,
            source_type=event.event_type,
            rule=p.rule,
            recipient_kind=p.recipient_kind,
            recipient=p.recipient,
            channel=p.channel,
            template=p.template,
            case_id=case.case_id if case else None,
            opinion_id=opinion_id,
            context={**context, "opinion_id": opinion_id},
            not_before=not_before,
            held=held,
            created_at=now,
            source_committed=envelope.recorded_at,
        )

    async def _resident(
        self, conn: Conn, district_id: str, case_id: str, opinion_id: str
    ) -> ResidentFacts | None:
        """The resident of the case's opinion, looked for in the district that took the
        opinion down: the case's own, or the one it was transferred from (read in that
        district's row-level security scope, then back to the case's)."""
        found = await self._resident_in_scope(conn, opinion_id)
        if found is not None:
            return found
        opening = await self._store.read_stream(f"case-{case_id}", conn=conn)
        home = opening[0].data.get("transferred_from_district_id") if opening else None
        if not home or home == district_id:
            return None
        await scope(conn, home)
        found = await self._resident_in_scope(conn, opinion_id)
        await scope(conn, district_id)
        return replace(found, district_id=home) if found is not None else None

    async def _resident_in_scope(self, conn: Conn, opinion_id: str) -> ResidentFacts | None:
        """The resident of an opinion: as kept, else from the store (the opinion's topic
        may lag behind the case's: the store has it, since the case came from it)."""
        known = await projections.resident(conn, opinion_id)
        if known is not None:
            return known
        for record in await self._store.read_stream(f"opinion-{opinion_id}", conn=conn):
            if record.event_type == "OpinionSubmitted":
                opinion = record.envelope().event(REGISTRY)
                assert isinstance(opinion, OpinionSubmitted)
                await projections.record_opinion(conn, opinion)
                return projections.resident_of(opinion)
        return None

    def _to_subscribers(
        self,
        event: CaseEvent,
        envelope: Envelope,
        case: CaseFacts | None,
        setup: DistrictSetup,
    ) -> list[NewDelivery]:
        wanting = [s for s in setup.subscriptions if s.wants(event.event_type)]
        if not wanting:
            return []
        now = self._clock()
        document = cloudevents.structured(envelope)
        return [
            NewDelivery(
                delivery_id=delivery_id(
                    envelope.event_id, "subscriber", s.subscription_id, "webhook"
                ),
                district_id=event.district_id,
                source_event_id=envelope.event_id,
                source_type=event.event_type,
                rule="subscription",
                recipient_kind="subscriber",
                recipient=s.subscription_id,
                channel="webhook",
                template="cloudevent",
                case_id=event.case_id,
                opinion_id=case.opinion_id if case else None,
                context={"cloudevent": document},
                not_before=FAR_FUTURE if s.status == "paused" else now,
                held="paused" if s.status == "paused" else None,
                created_at=now,
                source_committed=envelope.recorded_at,
            )
            for s in wanting
        ]

    async def _publish(self, conn: Conn, envelope: Envelope, event: CaseEvent) -> None:
        data = public_data(event.event_type, event.model_dump(mode="json"))
        if data is None:
            return
        public = envelope.model_copy(update={"data": data})
        await conn.execute(
            "INSERT INTO notification.public_feed (district_id, event_id, envelope) "
            "VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
            envelope.district_id,
            envelope.event_id,
            public.model_dump(mode="json"),
        )


_RESIDENT_EVENTS = frozenset(
    {"CaseReplied", "CaseResolved", "CaseConvertedToSuggestion", "SuggestionAnswered"}
)
"""Case events the resident is told of."""


def _needs_admins(event: Event) -> bool:
    if isinstance(event, CaseOverdue):
        return event.escalation_level == "district"
    return isinstance(event, CaseAssigned) and event.station_code is None


def _with(facts: Facts, **changes: Any) -> Facts:
    return replace(facts, **changes)
