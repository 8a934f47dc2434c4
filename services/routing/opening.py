"""Opinions become cases: classified, checked for duplicates, placed and assigned.

``OpinionSubmitted`` arrives through the consumer runtime (its transaction is ``conn``),
so the case's events, its row and the consumer's version gate commit together; the
events' ids derive from the opinion's event id, so even a handler retried after an
unknown outcome cannot open the case twice.

Everything the database must tell about a new case (is it open already, the
directory's version, the candidates' workloads, the open cases it may duplicate) comes
in one round trip, asked with the cached district context; if that context turns out to
be stale, the question is asked again with the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.cases import Priority
from contracts.envelope import Envelope, Metadata
from contracts.intake import OpinionSubmitted
from eventkit.clock import Clock
from eventkit.db import Conn
from eventkit.logging import get_logger
from services.routing.assignment import (
    Matter,
    Place,
    StationChoice,
    assign,
    choose_station,
    community_of,
)
from services.routing.case_commands import OpenCase
from services.routing.case_projection import OpinionFacts
from services.routing.case_state import CaseState, Link
from services.routing.case_store import CaseStore
from services.routing.classification import Classification
from services.routing.district_context import DistrictContext, DistrictContexts
from services.routing.domain import SYSTEM, decide
from services.routing.duplicates import BANDS, CaseFacts, bands, bounding_box, find_related, simhash
from services.routing.errors import UnknownDistrict
from services.routing.ids import case_id_for, event_ids
from services.routing.metrics import CASES_OPENED

log = get_logger(__name__)


class CaseOpening:
    """Turns opinions into cases (see the module's note)."""

    def __init__(self, cases: CaseStore, districts: DistrictContexts, clock: Clock) -> None:
        self._cases = cases
        self._districts = districts
        self._clock = clock

    async def open_case(
        self, opinion: OpinionSubmitted, envelope: Envelope, conn: Conn
    ) -> CaseState | None:
        """Turn an opinion into a classified, assigned case (None if it already is one)."""
        district_id = opinion.district_id
        case_id = case_id_for(district_id, opinion.opinion_id)
        now = self._clock()
        # Everything the database must tell about a new case comes in one round trip,
        # asked with the cached directory; if that turns out to be stale, ask again.
        ctx = self._districts.cached(district_id)
        while True:
            opening = _Opening.plan(ctx, opinion, case_id, now) if ctx is not None else None
            row = await conn.fetchrow(
                _OPENING_QUERY, district_id, case_id, *_opening_args(ctx, opening)
            )
            assert row is not None
            if row["opened"]:
                log.info("the opinion already has its case", case_id=case_id)
                return None
            if ctx is not None and opening is not None and ctx.version == row["v"]:
                break
            ctx = await self._districts.at(conn, district_id, row["v"])
            if ctx is None:
                raise UnknownDistrict(district_id)
        assert ctx is not None
        assert opening is not None
        assignment = assign(
            ctx.directory,
            opening.choice,
            opening.matter,
            classified=opening.classified,
            open_cases=row["loads"] or {},
            policy=ctx.policy,
        )
        candidates = [
            CaseFacts(
                c[0],
                c[1],
                c[2],
                (c[3], c[4]) if c[3] is not None and c[4] is not None else None,
                c[5],
                datetime.fromtimestamp(c[6], UTC),
                text_candidate=c[7],
            )
            for c in row["candidates"] or []
        ]
        related = find_related(opening.facts_for_duplicates, candidates, ctx.policy, now)
        classification = opening.classification
        response, resolution = ctx.deadlines(
            classification.category_code, classification.priority, opinion.occurred_at
        )
        command = OpenCase(
            actor=SYSTEM,
            now=now,
            case_id=case_id,
            district_id=district_id,
            opinion_id=opinion.opinion_id,
            classification=classification,
            response_due=response,
            resolution_due=resolution,
            assignment=assignment,
            related=tuple(Link(r.case_id, r.relation, r.reason) for r in related),
            taxonomy_version=ctx.taxonomy.version if ctx.taxonomy else None,
            channel=opinion.channel,
            community=opening.matter.community,
        )
        events = decide(None, command)
        metadata = Metadata(
            correlation_id=envelope.metadata.correlation_id or str(envelope.event_id),
            causation_id=str(envelope.event_id),
        )
        state = await self._cases.save(
            conn,
            None,
            events,
            event_ids(events, f"{envelope.event_id}"),
            metadata,
            opening.facts,
            opening.fingerprint,
        )
        CASES_OPENED.labels(district_id, assignment.queue, classification.priority.value).inc()
        log.info(
            "case opened",
            case_id=case_id,
            category=classification.category_code,
            priority=classification.priority.value,
            queue=assignment.queue,
            station=assignment.station_code,
            representative=assignment.representative_id,
        )
        return state


@dataclass(frozen=True)
class _Opening:
    """What a new case needs that the cached directory can tell without the database."""

    classification: Classification
    choice: StationChoice
    matter: Matter
    facts: OpinionFacts
    text: str
    fingerprint: int
    facts_for_duplicates: CaseFacts
    candidates: tuple[str, ...]
    """Representatives whose workload scoring needs."""

    @property
    def classified(self) -> bool:
        """Whether the case can go to a representative (a category, or urgent)."""
        c = self.classification
        return c.category_code is not None or c.priority is Priority.URGENT

    @classmethod
    def plan(
        cls, ctx: DistrictContext, opinion: OpinionSubmitted, case_id: str, now: datetime
    ) -> _Opening:
        """Classify and place the opinion with the district's context."""
        classification = ctx.classify(opinion.text, opinion.category_hint)
        facts = OpinionFacts.of(opinion)
        place = Place(opinion.location.station_code, opinion.location.community, facts.point)
        choice = choose_station(ctx.directory, place)
        community = community_of(ctx.directory, place)
        text = facts.normalised
        station = choice.station
        return cls(
            classification=classification,
            choice=choice,
            matter=Matter(
                community=community,
                expertise=ctx.expertise(classification.category_code),
                priority=classification.priority,
                today=ctx.today(now),
            ),
            facts=facts,
            text=text,
            fingerprint=simhash(text),
            facts_for_duplicates=CaseFacts(
                case_id,
                classification.category_code,
                community.name if community else None,
                facts.point,
                text,
                now,
            ),
            candidates=tuple(r.id for r in ctx.directory.candidates_at(station.code))
            if station is not None
            else (),
        )


_OPENING_QUERY = """
WITH recent AS NOT MATERIALIZED (
    SELECT * FROM routing.cases
     WHERE $4 AND district_id = $1 AND is_open AND opened_at >= to_timestamp($13)
       AND case_id <> $20
), by_text AS (
    (SELECT * FROM recent WHERE band0 = $5 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band1 = $6 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band2 = $7 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band3 = $8 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band4 = $9 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band5 = $10 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band6 = $11 ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE band7 = $12 ORDER BY opened_at DESC LIMIT 10)
), by_place AS (
    (SELECT * FROM recent WHERE category_code = $14 AND community = $15
      ORDER BY opened_at DESC LIMIT 10)
    UNION (SELECT * FROM recent WHERE category_code = $14
             AND lat BETWEEN $16 AND $17 AND long BETWEEN $18 AND $19
           ORDER BY opened_at DESC LIMIT 10)
), found AS (
    SELECT case_id, category_code, community, lat, long, text_norm, opened_at,
           bool_or(by_text) AS shares_band
      FROM (SELECT *, true AS by_text FROM by_text
            UNION ALL SELECT *, false FROM by_place) c
     GROUP BY case_id, category_code, community, lat, long, text_norm, opened_at
)
SELECT (SELECT config_version FROM routing.districts WHERE district_id = $1) AS v,
       EXISTS (SELECT 1 FROM routing.cases WHERE case_id = $2) AS opened,
       (SELECT jsonb_object_agg(representative_id, open_cases) FROM routing.representatives
         WHERE district_id = $1 AND representative_id = ANY($3::text[])) AS loads,
       (SELECT jsonb_agg(jsonb_build_array(case_id, category_code, community, lat, long,
                         text_norm, extract(epoch FROM opened_at), shares_band))
          FROM found) AS candidates
"""
"""For a new case: the directory version, whether the case exists, the candidates'
workloads, and the open cases it may duplicate or relate to (see duplicates.py)."""


def _opening_args(ctx: DistrictContext | None, opening: _Opening | None) -> list[Any]:
    if ctx is None or opening is None:
        return [[], False, *([0] * BANDS), 0.0, None, None, None, None, None, None, ""]
    policy = ctx.policy
    new = opening.facts_for_duplicates
    box = bounding_box(new.point, policy.duplicate_radius_m) if new.point else None
    return [
        list(opening.candidates),
        True,
        *bands(opening.fingerprint),
        new.opened_at.timestamp() - policy.duplicate_window_days * 86400,
        new.category_code,
        new.community,
        *(box if box else (None, None, None, None)),
        new.case_id,
    ]
