"""Recompute every routing table from the event store (``minqing routing rebuild``)."""

from __future__ import annotations

from contracts import REGISTRY
from contracts.cases import CaseEvent, CaseLinked
from contracts.intake import FeedbackSubmitted, OpinionSubmitted
from eventkit.db import ALL_DISTRICTS, Conn, scope
from eventkit.sealed_texts import TextKeys, open_case_data, opened_opinion
from eventkit.store import EventStore, RecordedEvent
from services.routing.case_projection import OpinionFacts, add_links, insert_case, record_feedback
from services.routing.case_state import CaseState, evolve
from services.routing.directory_projection import DIRECTORY_CATEGORIES, project_directory

_OPEN_BATCH = 2000
"""Case events opened with one look-up of their keys."""

_TABLES = (
    "whistles",
    "activities",
    "spokespersons",
    "staff_members",
    "departments",
    "case_links",
    "cases",
    "reception_days",
    "memberships",
    "representatives",
    "stations",
    "communities",
    "streets",
    "districts",
)


async def rebuild(conn: Conn, store: EventStore, texts: TextKeys | None = None) -> dict[str, int]:
    """Recompute every routing table from the event store, in one transaction; the
    opinions' and the cases' sealed texts are opened with their keys (``texts``: the
    vault's keys of the environment by default; one look-up per batch of case events),
    erased ones come back as the erased mark.

    Returns how many events of each kind were applied.
    """
    counts = {"directory": 0, "case": 0, "cases": 0, "feedback": 0}
    texts = texts or TextKeys()
    async with conn.transaction():
        # A rebuild recomputes every district's tables from every district's events.
        await scope(conn, ALL_DISTRICTS)
        for table in _TABLES:
            await conn.execute(f"DELETE FROM routing.{table}")
        opinions: dict[str, OpinionSubmitted] = {}
        feedback: dict[str, FeedbackSubmitted] = {}
        states: dict[str, CaseState] = {}
        links: list[CaseEvent] = []
        pending: list[RecordedEvent] = []

        async def fold_cases() -> None:
            opened = await open_case_data(conn, texts, [(r.event_type, r.data) for r in pending])
            for record, data in zip(pending, opened, strict=True):
                event = REGISTRY.parse(record.event_type, record.schema_version, data)
                assert isinstance(event, CaseEvent)
                states[event.case_id] = evolve(states.get(event.case_id), event)
                if isinstance(event, CaseLinked):
                    links.append(event)
            counts["case"] += len(pending)
            pending.clear()

        async for recorded in store.iterate_all(
            categories=(*DIRECTORY_CATEGORIES, "case", "opinion"), conn=conn
        ):
            if recorded.category == "case":
                pending.append(recorded)
                if len(pending) >= _OPEN_BATCH:
                    await fold_cases()
                continue
            event = REGISTRY.parse(recorded.event_type, recorded.schema_version, recorded.data)
            if recorded.category in DIRECTORY_CATEGORIES:
                await project_directory(conn, [event])
                counts["directory"] += 1
            elif isinstance(event, OpinionSubmitted):
                opinions[event.opinion_id] = event
            elif isinstance(event, FeedbackSubmitted):
                feedback[event.case_id] = event
        await fold_cases()
        keys = await texts.found(conn, (o.sealed.key_id for o in opinions.values() if o.sealed))
        for state in states.values():
            opinion = opinions.get(state.opinion_id)
            if opinion is not None:
                opinion = opened_opinion(opinion, keys)
            facts = (
                OpinionFacts.of(opinion)
                if opinion is not None
                else OpinionFacts(None, "（原始意见不可用）", None, None, None)
            )
            await insert_case(conn, state, facts)
            counts["cases"] += 1
        await add_links(conn, links)
        for fb in feedback.values():
            if fb.case_id in states:
                await record_feedback(conn, fb)
                counts["feedback"] += 1
    return counts
