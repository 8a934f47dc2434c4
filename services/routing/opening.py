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

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from contracts.cases import Priority
from contracts.envelope import Envelope, Metadata
from contracts.intake import OpinionSubmitted
from eventkit.clock import Clock
from eventkit.db import Conn, use_generic_plans
from eventkit.logging import get_logger
from eventkit.sealed_texts import TextKeys
from services.routing.assignment import (
    Assignment,
    Matter,
    Place,
    StationChoice,
    assign,
    choose_station,
    community_of,
    responsible_for,
)
from services.routing.case_commands import OpenCase
from services.routing.case_projection import OpinionFacts
from services.routing.case_state import CaseState, Link
from services.routing.case_store import CaseStore, NewCase
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

    def __init__(
        self,
        cases: CaseStore,
        districts: DistrictContexts,
        clock: Clock,
        texts: TextKeys | None = None,
    ) -> None:
        self._cases = cases
        self._districts = districts
        self._clock = clock
        self._texts = texts or TextKeys()

    async def open_case(
        self, opinion: OpinionSubmitted, envelope: Envelope, conn: Conn
    ) -> CaseState | None:
        """Turn an opinion into a classified, assigned case (None if it already is one)."""
        opened = await self.open_cases([(opinion, envelope)], conn)
        return opened[0]

    async def open_cases(
        self, opinions: Sequence[tuple[OpinionSubmitted, Envelope]], conn: Conn
    ) -> list[CaseState | None]:
        """Open the cases of several opinions in ``conn``, in their order: what the
        database must tell comes in one round trip per district, the streams are
        appended in one, the rows written in one. Each case is decided as if the ones
        before it in the list were already open (their workloads and duplicates count).
        One entry per opinion: its case, or None if it already had one."""
        now = self._clock()
        # The opening query's generic plan, made once per connection: left to choose,
        # the server planned it afresh at every batch (5 ms a plan, as long as running it).
        await use_generic_plans(conn)
        # The texts the case is classified and compared by travel sealed: one look-up
        # of the batch's keys opens them all.
        opened = await self._texts.open_opinions(conn, [o for o, _ in opinions])
        opinions = [(o, e) for o, (_, e) in zip(opened, opinions, strict=True)]
        by_district: dict[str, list[int]] = {}
        for index, (opinion, _) in enumerate(opinions):
            by_district.setdefault(opinion.district_id, []).append(index)
        results: list[CaseState | None] = [None] * len(opinions)
        for district_id, indexes in by_district.items():
            batch = [opinions[i] for i in indexes]
            for index, state in zip(
                indexes, await self._open_in(district_id, batch, conn, now), strict=True
            ):
                results[index] = state
        return results

    async def _open_in(
        self,
        district_id: str,
        opinions: Sequence[tuple[OpinionSubmitted, Envelope]],
        conn: Conn,
        now: datetime,
    ) -> list[CaseState | None]:
        case_ids = [case_id_for(district_id, o.opinion_id) for o, _ in opinions]
        # Everything the database must tell comes in one round trip, asked with the
        # cached directory; if that turns out to be stale, ask again.
        ctx = self._districts.cached(district_id)
        while True:
            plans = (
                [
                    _Opening.plan(ctx, o, c, now)
                    for (o, _), c in zip(opinions, case_ids, strict=True)
                ]
                if ctx is not None
                else []
            )
            row = await conn.fetchrow(
                _OPENING_QUERY, district_id, case_ids, *_opening_args(ctx, plans)
            )
            assert row is not None
            if ctx is not None and ctx.version == row["v"]:
                break
            ctx = await self._districts.at(conn, district_id, row["v"])
            if ctx is None:
                raise UnknownDistrict(district_id)
        already = set(row["opened"] or ())
        loads: dict[str, int] = dict(row["loads"] or {})
        found: dict[int, list[CaseFacts]] = {}
        for c in json.loads(row["candidates"] or "[]"):
            found.setdefault(c[0], []).append(
                CaseFacts(
                    c[1],
                    c[2],
                    c[3],
                    (c[4], c[5]) if c[4] is not None and c[5] is not None else None,
                    c[6] or "",
                    datetime.fromtimestamp(c[7], UTC),
                    text_candidate=c[8],
                )
            )
        new: list[NewCase] = []
        made: list[_Made] = []
        earlier = _Earlier()
        for index, ((opinion, envelope), plan) in enumerate(zip(opinions, plans, strict=True)):
            if plan.facts_for_duplicates.case_id in already:
                log.info("the opinion already has its case", case_id=case_ids[index])
                continue
            mine = bands(plan.fingerprint)
            candidates = [
                *found.get(index + 1, ()),
                *earlier.candidates(plan.facts_for_duplicates, mine),
            ]
            case, assignment = self._decide(ctx, opinion, envelope, plan, loads, candidates, now)
            new.append(case)
            made.append(_Made(index, plan.classification, assignment))
            earlier.add(plan.facts_for_duplicates, mine)
            if assignment.representative_id is not None:
                loads[assignment.representative_id] = loads.get(assignment.representative_id, 0) + 1
        states = await self._cases.open_many(conn, new)
        results: list[CaseState | None] = [None] * len(opinions)
        for state, m in zip(states, made, strict=True):
            results[m.index] = state
            c, a = m.classification, m.assignment
            CASES_OPENED.labels(district_id, a.queue, c.priority.value).inc()
            log.info(
                "case opened",
                case_id=state.case_id,
                category=c.category_code,
                priority=c.priority.value,
                queue=a.queue,
                station=a.station_code,
                representative=a.representative_id,
            )
        return results

    def _decide(
        self,
        ctx: DistrictContext,
        opinion: OpinionSubmitted,
        envelope: Envelope,
        plan: _Opening,
        loads: dict[str, int],
        candidates: list[CaseFacts],
        now: datetime,
    ) -> tuple[NewCase, Assignment]:
        """The new case's events: assigned, linked, with its deadlines."""
        assignment = assign(
            ctx.directory,
            plan.choice,
            plan.matter,
            classified=plan.classified,
            open_cases=loads,
            policy=ctx.policy,
        )
        related = find_related(plan.facts_for_duplicates, candidates, ctx.policy, now)
        classification = plan.classification
        response, resolution = ctx.deadlines(
            classification.category_code, classification.priority, opinion.occurred_at
        )
        command = OpenCase(
            actor=SYSTEM,
            now=now,
            case_id=plan.facts_for_duplicates.case_id,
            district_id=opinion.district_id,
            opinion_id=opinion.opinion_id,
            classification=classification,
            response_due=response,
            resolution_due=resolution,
            assignment=assignment,
            related=tuple(Link(r.case_id, r.relation, r.reason) for r in related),
            taxonomy_version=ctx.taxonomy.version if ctx.taxonomy else None,
            channel=opinion.channel,
            community=plan.matter.community,
            collected_by=opinion.on_behalf_of,
            on_the_spot=opinion.on_the_spot,
        )
        events = decide(None, command)
        metadata = Metadata(
            correlation_id=envelope.metadata.correlation_id or str(envelope.event_id),
            causation_id=str(envelope.event_id),
        )
        case = NewCase(
            events,
            event_ids(events, f"{envelope.event_id}"),
            metadata,
            plan.facts,
            plan.fingerprint,
        )
        return case, assignment


class _Earlier:
    """The cases opened before in the same batch, found as the opening query finds open
    cases in the table: by a shared SimHash band (their texts compared) or by the same
    category (their places compared)."""

    def __init__(self) -> None:
        self._by_band: dict[tuple[int, int], list[int]] = {}
        self._by_category: dict[str, list[int]] = {}
        self._facts: list[tuple[CaseFacts, CaseFacts]] = []
        """Each case twice: as a text candidate and as a place candidate only."""

    def add(self, facts: CaseFacts, its_bands: tuple[int, ...]) -> None:
        """Count ``facts`` among the cases opened before the next ones."""
        index = len(self._facts)
        self._facts.append(
            (replace(facts, text_candidate=True), replace(facts, text_candidate=False))
        )
        for band in enumerate(its_bands):
            self._by_band.setdefault(band, []).append(index)
        if facts.category_code is not None:
            self._by_category.setdefault(facts.category_code, []).append(index)

    def candidates(self, new: CaseFacts, its_bands: tuple[int, ...]) -> list[CaseFacts]:
        """The earlier cases ``new`` may duplicate or relate to."""
        texts = {i for band in enumerate(its_bands) for i in self._by_band.get(band, ())}
        places = self._by_category.get(new.category_code, []) if new.category_code else []
        return [self._facts[i][0] for i in sorted(texts)] + [
            self._facts[i][1] for i in places if i not in texts
        ]


@dataclass(frozen=True, slots=True)
class _Made:
    """A case opened in a batch: where its opinion was, and what was decided."""

    index: int
    classification: Classification
    assignment: Assignment


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
                responsible=responsible_for(
                    ctx.directory, opinion.channel, opinion.on_behalf_of, opinion.on_the_spot
                ),
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
WITH q AS (
    SELECT * FROM unnest($4::text[], $5::double precision[], $6::text[], $7::text[],
                         $8::double precision[], $9::double precision[],
                         $10::double precision[], $11::double precision[],
                         $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
                         $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[],
                         $20::bigint[])
           WITH ORDINALITY AS q(case_id, since, category_code, community,
                                lat_lo, lat_hi, long_lo, long_hi,
                                b0, b1, b2, b3, b4, b5, b6, b7, fingerprint, n)
), found AS (
    SELECT q.n, f.* FROM q CROSS JOIN LATERAL (
        -- Only the columns the search needs: the unions below remove repeated cases
        -- by comparing and hashing whole rows (the texts, the states: a third of the
        -- query's time when they were all there).
        WITH recent AS NOT MATERIALIZED (
            SELECT case_id, category_code, community, lat, long, text_norm, opened_at,
                   simhash, band0, band1, band2, band3, band4, band5, band6, band7
              FROM routing.cases
             WHERE district_id = $1 AND is_open AND opened_at >= to_timestamp(q.since)
               AND case_id <> q.case_id
        ), by_text AS (
            (SELECT * FROM recent WHERE band0 = q.b0 ORDER BY opened_at DESC LIMIT 10)
            UNION (SELECT * FROM recent WHERE band1 = q.b1 ORDER BY opened_at DESC LIMIT 10)
            UNION (SELECT * FROM recent WHERE band2 = q.b2 ORDER BY opened_at DESC LIMIT 10)
            UNION (SELECT * FROM recent WHERE band3 = q.b3 ORDER BY opened_at DESC LIMIT 10)
            UNION (SELECT * FROM recent WHERE band4 = q.b4 ORDER BY opened_at DESC LIMIT 10)
            UNION (SELECT * FROM recent WHERE band5 = q.b5 ORDER BY opened_at DESC LIMIT 10)
            UNION (SELECT * FROM recent WHERE band6 = q.b6 ORDER BY opened_at DESC LIMIT 10)
            UNION (SELECT * FROM recent WHERE band7 = q.b7 ORDER BY opened_at DESC LIMIT 10)
        ), nearest AS (
            SELECT * FROM by_text
             ORDER BY bit_count((simhash # q.fingerprint)::bit(64)), opened_at DESC
             LIMIT 12
        ), by_place AS (
            (SELECT * FROM recent WHERE category_code = q.category_code
               AND community = q.community ORDER BY opened_at DESC LIMIT 10)
            UNION (SELECT * FROM recent WHERE category_code = q.category_code
                     AND lat BETWEEN q.lat_lo AND q.lat_hi
                     AND long BETWEEN q.long_lo AND q.long_hi
                   ORDER BY opened_at DESC LIMIT 10)
        )
        SELECT case_id, category_code, community, lat, long,
               CASE WHEN bool_or(by_text) THEN text_norm END AS text_norm, opened_at,
               bool_or(by_text) AS shares_band
          FROM (SELECT *, true AS by_text FROM nearest
                UNION ALL SELECT *, false FROM by_place) c
         GROUP BY case_id, category_code, community, lat, long, text_norm, opened_at
    ) f
)
SELECT (SELECT config_version FROM routing.districts WHERE district_id = $1) AS v,
       (SELECT array_agg(case_id) FROM routing.cases WHERE case_id = ANY($2::text[]))
           AS opened,
       (SELECT jsonb_object_agg(representative_id, open_cases) FROM routing.representatives
         WHERE district_id = $1 AND representative_id = ANY($3::text[])) AS loads,
       (SELECT json_agg(json_build_array(n, case_id, category_code, community, lat, long,
                        text_norm, extract(epoch FROM opened_at), shares_band))
          FROM found)::text AS candidates
"""
"""For new cases of one district: the directory version, which cases exist already, the
candidates' workloads, and for each case (numbered from 1) the open cases it may
duplicate or relate to (see duplicates.py): of those sharing a SimHash band, the twelve
whose hashes are nearest (their texts are compared), and those of the same category in
the same community or nearby (their places are compared). Without a context (``$4`` empty) only the
version is of use. The candidates come as JSON text (``json_agg``, cheaper to build than
``jsonb``'s hundreds of rows), read by the caller."""


def _opening_args(ctx: DistrictContext | None, plans: Sequence[_Opening]) -> list[Any]:
    """The query's parameters after the district and the case ids: the candidates whose
    workloads are wanted, then one array per column of the cases' duplicate search."""
    columns: list[list[Any]] = [[] for _ in range(9 + BANDS)]
    representatives: set[str] = set()
    if ctx is not None:
        policy = ctx.policy
        for plan in plans:
            new = plan.facts_for_duplicates
            box = bounding_box(new.point, policy.duplicate_radius_m) if new.point else None
            values = [
                new.case_id,
                new.opened_at.timestamp() - policy.duplicate_window_days * 86400,
                new.category_code,
                new.community,
                *(box if box else (None, None, None, None)),
                *bands(plan.fingerprint),
                plan.fingerprint,
            ]
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            representatives.update(plan.candidates)
    return [sorted(representatives), *columns]
