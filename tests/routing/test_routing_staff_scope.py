"""Scope follows the person, for the roles the liaison work added: a community
commissioner sees the stations serving their communities, the district office the whole
district, a department's staff no case through the case routes (their whistles have
routes of their own)."""

from __future__ import annotations

import asyncpg

from eventkit.identity import Principal, Role
from eventkit.staff_rule import Listing
from services.routing.bootstrap import Routing
from services.routing.staff_scope import listing, scope_of
from tests.every_district import every_district


async def test_new_roles_get_the_scope_of_their_post(demo: Routing, pool: asyncpg.Pool) -> None:
    async with every_district(pool).acquire() as conn:
        ctx = await demo.districts.require(conn, "demo")
    directory = ctx.directory

    commissioner = scope_of(Principal("cm_dh_01", Role.COMMUNITY_COMMISSIONER, "demo"), directory)
    serving = {
        code
        for code, station in directory.stations.items()
        if {"东湖社区", "湖滨社区"} & set(station.communities)
    }
    assert serving
    assert commissioner.stations == frozenset(serving)
    assert commissioner.may_act
    outside = next(c for c in directory.stations if c not in serving)
    assert not commissioner.covers(outside, None)

    office = scope_of(Principal("off_demo_01", Role.DISTRICT_OFFICE, "demo"), directory)
    assert office.whole_district
    assert office.may_act

    department = scope_of(Principal("cg_01", Role.DEPARTMENT, "demo"), directory)
    assert not department.readable

    # Only people the directory lists in that role hold it.
    assert listing(directory, "cm_dh_01", Role.COMMUNITY_COMMISSIONER) is Listing.HOLDS
    assert listing(directory, "cm_dh_01", Role.DISTRICT_OFFICE) is Listing.NOT_LISTED
    assert listing(directory, "nobody", Role.COMMUNITY_COMMISSIONER) is Listing.NOT_LISTED
    stranger = scope_of(Principal("nobody", Role.COMMUNITY_COMMISSIONER, "demo"), directory)
    assert not stranger.readable
