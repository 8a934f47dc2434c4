"""The shape every Minqing event shares.

Every event names its district (the tenant), the moment it happened and who did it.
Events are frozen: once something has happened, nothing changes it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

DistrictId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
"""A district code such as ``demo``: lower-case ASCII, safe in topic names and URLs."""

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:]{0,63}$")]
"""An id of something in the domain (opinion, case, station, representative)."""


class ActorRole(StrEnum):
    """Who did something, by the role in which they did it."""

    RESIDENT = "resident"
    SPOKESPERSON = "spokesperson"
    LIAISON = "liaison"
    REPRESENTATIVE = "representative"
    STREET_SUPERVISOR = "street_supervisor"
    DISTRICT_ADMIN = "district_admin"
    AUDITOR = "auditor"
    HOTLINE = "hotline"
    DEPARTMENT = "department"
    COMMUNITY_COMMISSIONER = "community_commissioner"
    DISTRICT_OFFICE = "district_office"
    EXTERNAL = "external"
    SYSTEM = "system"


class Actor(BaseModel):
    """The one who caused an event. ``id`` is a staff or system id, never a resident's name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    role: ActorRole


class Event(BaseModel):
    """Base of every domain event.

    Subclasses set the class variables: ``event_type`` (the name on the wire),
    ``schema_version`` (bumped on every incompatible change, with an upcaster from the
    previous one) and ``stream_category`` (the prefix of the stream the event lives in).
    Unknown fields are ignored so that a consumer keeps working when a producer adds an
    optional field.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    stream_category: ClassVar[str]
    context: ClassVar[str]
    """The bounded context that owns the event: intake, routing, directory, notification."""

    district_id: DistrictId
    occurred_at: AwareDatetime
    actor: Actor

    @property
    def stream_key(self) -> str:
        """The part of the stream id after the category."""
        raise NotImplementedError

    @property
    def stream_id(self) -> str:
        """The stream this event is appended to, ``<category>-<key>``."""
        return f"{self.stream_category}-{self.stream_key}"


class LatLong(BaseModel):
    """A point in WGS84."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)
