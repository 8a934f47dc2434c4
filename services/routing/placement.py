"""Where a case goes when staff move it: the station's representatives scored with their
current workloads (:func:`services.routing.assignment.assign` does the scoring).

Opening a case asks the same questions in its one round trip (see
:mod:`services.routing.opening`); these are for the staff commands that place a case
again (classify out of triage, transfer to a station, transfer to another district).
"""

from __future__ import annotations

from datetime import datetime

from contracts.cases import Priority
from eventkit.db import Conn
from services.routing.assignment import (
    Assignment,
    Matter,
    Place,
    StationChoice,
    assign,
    community_of,
)
from services.routing.case_projection import opinion_facts, workloads
from services.routing.case_state import CaseState
from services.routing.classification import Classification
from services.routing.directory import Community
from services.routing.district_context import DistrictContext


async def assign_at(
    conn: Conn,
    ctx: DistrictContext,
    choice: StationChoice,
    classification: Classification,
    community: Community | None,
    now: datetime,
) -> Assignment:
    """The assignment at ``choice``'s station, its representatives scored for the matter."""
    loads: dict[str, int] = {}
    if choice.station is not None:
        ids = [r.id for r in ctx.directory.candidates_at(choice.station.code)]
        loads = await workloads(conn, ctx.directory.district_id, ids)
    matter = Matter(
        community=community,
        expertise=ctx.expertise(classification.category_code),
        priority=classification.priority,
        today=ctx.today(now),
    )
    return assign(
        ctx.directory,
        choice,
        matter,
        classified=classification.category_code is not None
        or classification.priority is Priority.URGENT,
        open_cases=loads,
        policy=ctx.policy,
    )


async def community_of_case(conn: Conn, ctx: DistrictContext, state: CaseState) -> Community | None:
    """The community the case's opinion is about, as the directory knows it."""
    facts = await opinion_facts(conn, state.case_id)
    if facts is None:
        return None
    return community_of(ctx.directory, Place(None, facts.community, facts.point))
