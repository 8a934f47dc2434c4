"""From events to the deliveries they call for, inside the consumer's transaction.

The consumer hands over a batch's opinions and case events of one district at a time
(:meth:`Planner.plan_batch`): keep what the rules need to know
(:mod:`services.notification.projections`), gather the facts around each event (the
district's setup, kept between batches: :mod:`services.notification.setup`), let
:func:`services.notification.rules.plan` decide, and record the deliveries in the outbox;
for case events, one delivery per outside subscription and a record for the district's
public feed. Nothing is sent here: the sender works the outbox after this transaction
commits, so a crash or a redelivered event never sends twice; and a delivery's id is
derived from its event, recipient and channel, so planning an event again adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from services.notification import projections
from services.notification.ids import delivery_id
from services.notification.outbox import NewDelivery
from services.notification.outbox import plan as plan_deliveries
from services.notification.projections import CaseRow, evolve_case
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
from services.notification.setup import DistrictSetup, Setups
from services.notification.subscriptions import FAR_FUTURE
from services.notification.timing import after_quiet_hours


class Planner:
    """Plans the deliveries of a batch of events (see the module's note)."""

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        setups: Setups,
        *,
        quiet_hours: tuple[int, int] = (22, 8),
        public_feed: bool = True,
    ) -> None:
        self._store = store
        self._clock = clock
        self._setups = setups
        self._quiet = quiet_hours
        self._public_feed = public_feed

    async def on_directory(self, event: Event, conn: Conn) -> None:
        """A directory event: keep what the rules and the messages use (the district's
        stamp moves with it, so the next batch reads the district afresh)."""
        await projections.project_directory(conn, event)

    async def on_opinion(self, opinion: OpinionSubmitted, envelope: Envelope, conn: Conn) -> None:
        """One opinion: as a batch of one."""
        await self.plan_batch(conn, [(opinion, envelope)])

    async def on_case(self, event: CaseEvent, envelope: Envelope, conn: Conn) -> None:
        """One case event: as a batch of one."""
        await self.plan_batch(conn, [(event, envelope)])

    async def plan_batch(self, conn: Conn, batch: Sequence[tuple[Event, Envelope]]) -> None:
        """Opinions and case events of one district, in their order, in ``conn``'s
        transaction (scoped to that district): keep the residents and the cases, record
        the deliveries the rules call for, one per outside subscription, and the public
        feed's records.

        A fixed number of statements whatever the batch's size: the district's stamp
        (its setup is kept between batches), the opinions, the cases, the residents told,
        the deliveries, the cases changed, the feed. The cases are folded in memory in
        the events' order, so each event is planned on the case as it stood before it
        (a ``CaseOpened`` on the case it opens), exactly as one by one.
        """
        if not batch:
            return
        district = batch[0][0].district_id
        if any(event.district_id != district for event, _ in batch):
            raise ValueError("a batch is planned in one district's scope")
        setup = await self._setups.get(conn, district)
        await projections.record_opinions(
            conn, [e for e, _ in batch if isinstance(e, OpinionSubmitted)]
        )
        kept = await projections.cases(
            conn, (e.case_id for e, _ in batch if isinstance(e, CaseEvent))
        )
        states: dict[str, CaseRow | None] = dict(kept)
        changed: dict[str, CaseRow] = {}
        steps: list[_Step] = []
        for event, envelope in batch:
            if isinstance(event, OpinionSubmitted):
                facts = Facts(event=event, resident=projections.resident_of(event))
                steps.append(_Step(envelope, facts, None))
                continue
            assert isinstance(event, CaseEvent)
            before = states.get(event.case_id)
            after = evolve_case(before, event)
            if after is not None and after is not before:
                states[event.case_id] = changed[event.case_id] = after
            seen = after if isinstance(event, CaseOpened) else before
            case = seen.facts() if seen is not None else None
            facts = Facts(event=event, case=case)
            if event.event_type in RULE_EVENTS:
                facts = _around(facts, setup)
            steps.append(_Step(envelope, facts, case))
        residents = await self._residents(conn, steps)
        now = self._clock()
        deliveries: list[NewDelivery] = []
        for step in steps:
            event = step.facts.event
            facts = step.facts
            if step.case is not None and step.case.opinion_id in residents:
                facts = _with(facts, resident=residents[step.case.opinion_id])
            if event.event_type in RULE_EVENTS:
                deliveries += self._planned(step.envelope, facts, step.case, setup, now)
            if isinstance(event, CaseEvent):
                deliveries += self._to_subscribers(event, step.envelope, step.case, setup, now)
        await plan_deliveries(conn, deliveries)
        await projections.save_cases(conn, list(changed.values()))
        if self._public_feed:
            await self._publish(conn, [(e, env) for e, env in batch if isinstance(e, CaseEvent)])

    async def _residents(
        self, conn: Conn, steps: Sequence[_Step]
    ) -> dict[str, ResidentFacts | None]:
        """The residents the batch's events tell, by opinion: kept ones in one query, the
        rest (an opinion whose topic lags, a case transferred from another district) one
        by one from the store."""
        wanted = {
            s.case.opinion_id: s
            for s in steps
            if s.case is not None and s.facts.event.event_type in _RESIDENT_EVENTS
        }
        if not wanted:
            return {}
        found: dict[str, ResidentFacts | None] = dict(await projections.residents(conn, wanted))
        for opinion_id, step in wanted.items():
            if opinion_id not in found:
                assert step.case is not None
                found[opinion_id] = await self._resident(
                    conn, step.facts.event.district_id, step.case.case_id, opinion_id
                )
        return found

    def _planned(
        self,
        envelope: Envelope,
        facts: Facts,
        case: CaseFacts | None,
        setup: DistrictSetup,
        now: datetime,
    ) -> list[NewDelivery]:
        event = facts.event
        needed = staff_needed(event, facts)
        if needed:
            known = setup.contacts
            facts = _with(facts, contacts={s: known[s] for s in needed if s in known})
        planned = plan(facts, setup.rules)
        if not planned:
            return []
        context = template_context(event, case)
        if facts.resident is not None and facts.resident.district_id is not None:
            # The sender opens the resident's contact in the district that holds it.
            context["resident_district"] = facts.resident.district_id
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
        now: datetime,
    ) -> list[NewDelivery]:
        wanting = [s for s in setup.subscriptions if s.wants(event.event_type)]
        if not wanting:
            return []
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

    async def _publish(self, conn: Conn, events: Sequence[tuple[CaseEvent, Envelope]]) -> None:
        """The public feed's records of ``events``, in their order (one statement)."""
        records: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
        for event, envelope in events:
            data = public_data(event.event_type, event.model_dump(mode="json"))
            if data is not None:
                public = envelope.model_copy(update={"data": data})
                records.append(
                    (envelope.district_id, envelope.event_id, public.model_dump(mode="json"))
                )
        if not records:
            return
        await conn.execute(
            """
            INSERT INTO notification.public_feed (district_id, event_id, envelope)
            SELECT d, e, v FROM unnest($1::text[], $2::uuid[], $3::jsonb[])
                   WITH ORDINALITY AS r(d, e, v, n)
             ORDER BY n
            ON CONFLICT (event_id) DO NOTHING
            """,
            [r[0] for r in records],
            [r[1] for r in records],
            [r[2] for r in records],
        )


@dataclass(frozen=True)
class _Step:
    """One event of a batch with what is known around it, before its residents."""

    envelope: Envelope
    facts: Facts
    case: CaseFacts | None


def _around(facts: Facts, setup: DistrictSetup) -> Facts:
    """The station and what some rules need beyond the case, from the district's setup."""
    event, case = facts.event, facts.case
    station_code = event.station_code if isinstance(event, CaseAssigned) else None
    code = station_code or (case.station_code if case is not None else None)
    station = setup.stations.get(code) if code else None
    facts = _with(facts, station=station)
    if isinstance(event, CaseOverdue) and event.escalation_level == "street":
        street = station.street_code if station else None
        facts = _with(facts, street_supervisors=setup.supervisors.get(street or "", ()))
    if _needs_admins(event):
        facts = _with(facts, district_admins=setup.district_admins())
    if event.event_type == "CaseEscalated":
        facts = _with(facts, departments=setup.departments())
    code = getattr(event, "department_code", None)
    if isinstance(event, CaseEscalated | CaseOverdue) and code is not None:
        facts = _with(facts, department_staff=setup.department_staff.get(code, ()))
    return facts


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
