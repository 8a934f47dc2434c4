"""What each staff role sees of its district's reports.

Pure. A district admin and an auditor see the whole district (the auditor read-only),
a street supervisor the streets whose committee lists them, a liaison officer the
stations that list them, a representative their own archive. Another district is
never seen at all (its reports are "not found").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from eventkit.identity import Principal, Role
from services.reporting.errors import OutOfScope

READERS: Final = frozenset(
    {Role.DISTRICT_ADMIN, Role.AUDITOR, Role.STREET_SUPERVISOR, Role.LIAISON, Role.REPRESENTATIVE}
)
"""Roles that may read reports at all."""

WIDE: Final = frozenset({Role.DISTRICT_ADMIN, Role.AUDITOR, Role.STREET_SUPERVISOR, Role.LIAISON})
"""Roles that see aggregates (every report but an archive of one's own)."""


@dataclass(frozen=True)
class Scope:
    """The part of a district a caller sees."""

    role: Role
    streets: frozenset[str] | None = None
    """Only cases and stations of these streets (None: no limit by street)."""
    stations: frozenset[str] | None = None
    """Only cases and stations of these stations (None: no limit by station)."""
    representative_id: str | None = None
    """A representative: only their own archive."""

    @property
    def whole_district(self) -> bool:
        """Whether nothing of the district is hidden."""
        return self.streets is None and self.stations is None and self.representative_id is None

    def require_wide(self) -> None:
        """Refuse a representative anything but their own archive."""
        if self.role not in WIDE:
            raise OutOfScope("区、街道和联络站的统计", "district, street or station reports")

    def sees_street(self, street_code: str) -> bool:
        """Whether the street's figures are visible."""
        if self.stations is not None or self.representative_id is not None:
            return False
        return self.streets is None or street_code in self.streets

    def sees_station(self, station_code: str, street_code: str | None) -> bool:
        """Whether the station's figures are visible."""
        if self.representative_id is not None:
            return False
        if self.stations is not None and station_code not in self.stations:
            return False
        return self.streets is None or street_code in self.streets

    def sees_representative(
        self, representative_id: str, stations: Mapping[str, str | None]
    ) -> bool:
        """Whether the representative's archive is visible; ``stations`` are the stations
        they belong to, each with its street."""
        if self.representative_id is not None:
            return representative_id == self.representative_id
        if self.whole_district:
            return True
        return any(self.sees_station(code, street) for code, street in stations.items())

    def describe(self) -> dict[str, list[str] | str | None]:
        """The scope for an API answer."""
        return {
            "role": self.role.value,
            "streets": sorted(self.streets) if self.streets is not None else None,
            "stations": sorted(self.stations) if self.stations is not None else None,
            "representative_id": self.representative_id,
        }


def scope_for(
    principal: Principal,
    supervised_streets: Iterable[str],
    liaison_stations: Iterable[str],
) -> Scope:
    """The scope of ``principal`` given the streets whose committee lists them and the
    stations that list them as liaison officer."""
    role = principal.role
    if role in (Role.DISTRICT_ADMIN, Role.AUDITOR):
        return Scope(role)
    if role is Role.STREET_SUPERVISOR:
        return Scope(role, streets=frozenset(supervised_streets))
    if role is Role.LIAISON:
        return Scope(role, stations=frozenset(liaison_stations))
    if role is Role.REPRESENTATIVE:
        return Scope(role, representative_id=principal.subject)
    raise OutOfScope("统计报表", "reports")
