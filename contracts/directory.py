"""Events of the directory: districts, stations, representatives.

Streams: ``district-<district>``, ``station-<district>.<station_code>``,
``representative-<district>.<representative_id>``.
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, StringConstraints

from contracts.base import Event, Identifier, LatLong

ZhName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class StationKind(StrEnum):
    """The four kinds of liaison station."""

    HOME = "home"  # 代表之家
    COMMUNITY = "community"  # 社区联络站
    INDUSTRY = "industry"  # 行业/园区联络站
    CONTACT_POINT = "contact_point"  # 联系点


class RepresentativeLevel(StrEnum):
    """The people's congress a representative sits in."""

    NATIONAL = "national"
    PROVINCIAL = "provincial"
    MUNICIPAL = "municipal"
    DISTRICT = "district"


class DirectoryEvent(Event):
    """An event of the directory context."""

    context: ClassVar[str] = "directory"


class DistrictRegistered(DirectoryEvent):
    """A district (the tenant) joined the deployment."""

    event_type: ClassVar[str] = "DistrictRegistered"
    stream_category: ClassVar[str] = "district"

    name_zh: ZhName
    name_en: Annotated[str, StringConstraints(max_length=100)] | None = None
    timezone: str = "Asia/Shanghai"

    @property
    def stream_key(self) -> str:
        return self.district_id


class StationRegistered(DirectoryEvent):
    """A liaison station opened (or its details were registered again, replacing them)."""

    event_type: ClassVar[str] = "StationRegistered"
    stream_category: ClassVar[str] = "station"

    station_code: Identifier
    name_zh: ZhName
    kind: StationKind
    street_code: Identifier
    street_name_zh: ZhName | None = None
    communities: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list
    )
    address: Annotated[str, StringConstraints(max_length=300)] | None = None
    position: LatLong | None = None
    star_rating: int | None = Field(default=None, ge=1, le=5)

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.{self.station_code}"


class RepresentativeEvent(DirectoryEvent):
    """An event in a representative's stream."""

    stream_category: ClassVar[str] = "representative"

    representative_id: Identifier

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.{self.representative_id}"


class RepresentativeRegistered(RepresentativeEvent):
    """A people's-congress representative was registered. Their name is public office."""

    event_type: ClassVar[str] = "RepresentativeRegistered"

    name_zh: ZhName
    level: RepresentativeLevel
    electoral_district: Annotated[str, StringConstraints(max_length=100)] | None = None
    residence_community: Annotated[str, StringConstraints(max_length=100)] | None = None
    expertise: list[Annotated[str, StringConstraints(max_length=50)]] = Field(default_factory=list)
    contact_point: Identifier | None = None
    leading_cadre: bool = False


class RepresentativeJoinedStation(RepresentativeEvent):
    """The representative was grouped into a station (编组进站)."""

    event_type: ClassVar[str] = "RepresentativeJoinedStation"

    station_code: Identifier


class RepresentativeLeftStation(RepresentativeEvent):
    """The representative left a station."""

    event_type: ClassVar[str] = "RepresentativeLeftStation"

    station_code: Identifier


class ReceptionDayScheduled(RepresentativeEvent):
    """The representative will receive residents at a station on a day."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = "ReceptionDayScheduled"

    station_code: Identifier
    day: date
    starts_at: time | None = None
    ends_at: time | None = None


EVENTS: tuple[type[Event], ...] = (
    DistrictRegistered,
    StationRegistered,
    RepresentativeRegistered,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    ReceptionDayScheduled,
)
"""Every event of this context, every version; registered by ``contracts``."""
