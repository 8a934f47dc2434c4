"""Events of staff accounts, in streams ``staff-<district>.<person_id>`` (owned by routing).

A staff account belongs to a person the district knows (a representative, a liaison
officer, a street supervisor, a district administrator…), keyed by the district and the
person's id. What matters for the audit trail is recorded here: the invitation, the
password being set (never the password or its hash), a lock-out after repeated failures,
the account's retirement, and each opening of a resident's sealed contact details.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from contracts.base import Event, Identifier

StaffRole = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")]
"""A staff role (``eventkit.identity.Role``): liaison, representative, district_admin…"""


def staff_stream_key(district_id: str, person_id: str) -> str:
    """The key of a person's account stream: ``<district>.<person>``."""
    return f"{district_id}.{person_id}"


class StaffEvent(Event):
    """An event of a staff member's account."""

    stream_category: ClassVar[str] = "staff"
    context: ClassVar[str] = "routing"

    person_id: Identifier

    @property
    def stream_key(self) -> str:
        return staff_stream_key(self.district_id, self.person_id)


class StaffInvited(StaffEvent):
    """A person was given a one-time code to set up (or set up again) their account."""

    event_type: ClassVar[str] = "StaffInvited"

    role: StaffRole
    expires_at: AwareDatetime
    """The code works until then, once."""


class StaffPasswordSet(StaffEvent):
    """The person set their password (with an invitation code)."""

    event_type: ClassVar[str] = "StaffPasswordSet"

    role: StaffRole


class StaffLocked(StaffEvent):
    """Too many wrong passwords in a row: sign-in is refused until ``until``."""

    event_type: ClassVar[str] = "StaffLocked"

    failures: int = Field(ge=1)
    until: AwareDatetime


class StaffRetired(StaffEvent):
    """The account was closed: its sessions end and its tokens stop working."""

    event_type: ClassVar[str] = "StaffRetired"

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class ResidentContactOpened(StaffEvent):
    """A staff member opened a resident's sealed contact details for a case (每次查看留痕).

    Names no personal data: the resident is the pseudonymous subject id; the fields say
    what was shown.
    """

    event_type: ClassVar[str] = "ResidentContactOpened"

    case_id: Identifier
    opinion_id: Identifier
    subject_id: Identifier
    fields: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]] = Field(min_length=1)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    purpose: Literal["workbench"] = "workbench"


EVENTS: tuple[type[Event], ...] = (
    StaffInvited,
    StaffPasswordSet,
    StaffLocked,
    StaffRetired,
    ResidentContactOpened,
)
"""Every event of this context, every version; registered by ``contracts``."""
