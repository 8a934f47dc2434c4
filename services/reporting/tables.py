"""The projection tables, as the code writes, copies, compares and swaps them.

Pure: names and columns only (``migrations/0001_reporting.sql`` creates them; a test
checks that both agree). Every table has a leading ``slot`` column that is not listed
here: the writer adds it. A *projection* is a group of tables rebuilt and swapped
together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

SCHEMA: Final = "reporting"
"""The live projections."""
ASOF_SCHEMA: Final = "reporting_asof"
"""Projections as they stood at a past moment (``minqing reporting rebuild --at``)."""


@dataclass(frozen=True)
class Table:
    """A projection table: its columns after ``slot``, and the columns of its key."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]

    @cached_property
    def key_positions(self) -> tuple[int, ...]:
        """Where the key's columns are in a row (once per table: a rebuild asks for every
        row it folds)."""
        return tuple(self.columns.index(c) for c in self.key)

    def key_of(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """The key of ``row`` (a tuple in column order)."""
        return tuple([row[i] for i in self.key_positions])

    def partition(self, slot: int) -> str:
        """The partition holding ``slot``."""
        return f"{self.name}_s{slot}"


def _table(name: str, columns: str, key: str) -> Table:
    return Table(name, tuple(columns.split()), tuple(key.split()))


DISTRICTS = _table("districts", "district_id name_zh name_en timezone", "district_id")
STREETS = _table(
    "streets", "district_id street_code name_zh supervisors", "district_id street_code"
)
COMMUNITIES = _table("communities", "district_id community street_code", "district_id community")
STATIONS = _table(
    "stations",
    "district_id station_code name_zh kind street_code star_rating liaison_officers active",
    "district_id station_code",
)
REPRESENTATIVES = _table(
    "representatives",
    "district_id representative_id name_zh level active electoral_district leading_cadre",
    "district_id representative_id",
)
MEMBERSHIPS = _table(
    "memberships",
    "district_id representative_id station_code joined_at left_at",
    "district_id representative_id station_code",
)
CATEGORIES = _table(
    "categories",
    "district_id category_code name_zh name_en taxonomy_version",
    "district_id category_code",
)
CASES = _table(
    "cases",
    """case_id district_id opinion_id channel community street_code category_code priority
    station_code representative_id queue status withdrawn opened_at first_assigned_at
    accepted_at first_response_at response_due response_missed responded_on_time
    resolution_due resolution_missed first_resolved_at resolved_at resolved_on_time
    resolution_seq closed_at reopened_count overdue_count escalated_count transferred_count
    transferred_from_district transferred_to_district merged_into converted_at
    suggestion_reply_due suggestion_answered_at updated_at version callback_seq
    callback_satisfaction callback_resolved callback_at suggestion_answered_by""",
    "case_id",
)
CASE_STEPS = _table(
    "case_steps",
    """case_id version kind district_id recorded_at station_code representative_id
    counterpart on_time resolution_seq note""",
    "case_id version kind",
)
RATINGS = _table(
    "ratings",
    "case_id resolution_seq district_id satisfaction resolved recorded_at",
    "case_id resolution_seq",
)

ACTIVITIES = _table(
    "activities",
    """district_id activity_id station_code kind title held_on starts_at ends_at
    representatives spokespersons residents_met opinions_taken summary recorded_at""",
    "district_id activity_id",
)
SCANS = _table(
    "scans",
    "district_id station_code day scans opinions recorded_at",
    "district_id station_code day",
)

TABLES: Final[dict[str, Table]] = {
    t.name: t
    for t in (
        DISTRICTS,
        STREETS,
        COMMUNITIES,
        STATIONS,
        REPRESENTATIVES,
        MEMBERSHIPS,
        CATEGORIES,
        CASES,
        CASE_STEPS,
        RATINGS,
        ACTIVITIES,
        SCANS,
    )
}

PROJECTIONS: Final[dict[str, tuple[Table, ...]]] = {
    "directory": (
        DISTRICTS,
        STREETS,
        COMMUNITIES,
        STATIONS,
        REPRESENTATIVES,
        MEMBERSHIPS,
        CATEGORIES,
        ACTIVITIES,
    ),
    "cases": (CASES, CASE_STEPS),
    "ratings": (RATINGS,),
    "scans": (SCANS,),
}
"""Each projection and its tables. Every table is the fold of one stream category's own
events (directory streams, case streams, opinion streams, QR scan streams): no table depends on the
order in which different streams are read, so the live consumer (any interleaving of
topics and partitions) and a rebuild (the store's order) write the same rows. What
joins streams (a station's street, a case's latest rating) is joined when read."""

PROJECTION_OF: Final[dict[str, str]] = {
    table.name: name for name, tables in PROJECTIONS.items() for table in tables
}
