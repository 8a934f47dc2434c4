"""The contact book's entries: how to reach a staff member, and on which channels.

A district's contacts come from a file (``minqing notification contacts import``, the demo
district's in ``deploy/districts/demo-contacts.yaml``) or the admin API; both use
:class:`ContactEntry`. Pure: parsing and choosing channels, no storage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from contracts.base import DistrictId, Identifier
from eventkit.documents import parse_yaml
from services.notification.errors import InvalidContactFile

Channel = Literal["email", "sms", "wecom", "dingtalk", "webhook"]
"""A channel a staff member can be reached on (residents: SMS only)."""

CHANNELS: tuple[Channel, ...] = ("email", "sms", "wecom", "dingtalk", "webhook")

StaffRole = Literal[
    "representative",
    "liaison",
    "station_head",
    "street_supervisor",
    "district_admin",
    "department",
    "community_commissioner",
    "district_office",
    "auditor",
]

Mobile = Annotated[str, StringConstraints(pattern=r"^1[3-9]\d{9}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$", max_length=254)]
Handle = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _email_first() -> list[Channel]:
    return ["email"]


class ContactEntry(BaseModel):
    """One staff member's contact details."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    staff_id: Identifier
    name: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    role: StaffRole
    email: Email | None = None
    mobile: Mobile | None = None
    wecom_user: Handle | None = None
    """Their WeCom user id, @-mentioned in the group robot's message."""
    wecom_robot: HttpUrl | None = None
    """The WeCom group robot's webhook address (with its key) of a group they read."""
    dingtalk_user: Handle | None = None
    dingtalk_robot: HttpUrl | None = None
    dingtalk_secret: Annotated[str, StringConstraints(max_length=128)] | None = None
    """The DingTalk robot's signing secret (加签), when the robot requires one."""
    webhook_url: HttpUrl | None = None
    """A generic endpoint of their own (a department's work-order system)."""
    preferred: list[Channel] = Field(default_factory=_email_first, min_length=1)
    """The channels they want to be told on, in order."""
    active: bool = True

    def reachable(self) -> tuple[Channel, ...]:
        """The channels this contact has an address for."""
        addresses: dict[Channel, object] = {
            "email": self.email,
            "sms": self.mobile,
            "wecom": self.wecom_robot,
            "dingtalk": self.dingtalk_robot,
            "webhook": self.webhook_url,
        }
        return tuple(c for c in CHANNELS if addresses[c])


class ContactFile(BaseModel):
    """A district's contact book as a file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    district: DistrictId
    contacts: list[ContactEntry] = Field(default_factory=list)


def parse_contact_file(text: str, *, source: str = "<text>") -> ContactFile:
    """A contact book from YAML text; :class:`InvalidContactFile` listing every problem."""
    book = parse_yaml(text, ContactFile, source=source, refuse=InvalidContactFile)
    counts = Counter(c.staff_id for c in book.contacts)
    twice = sorted(staff for staff, n in counts.items() if n > 1)
    if twice:
        raise InvalidContactFile([f"{source}: 重复的 staff_id / listed twice: {', '.join(twice)}"])
    return book


def channels_for(
    contact: ContactEntry | None, allowed: Sequence[Channel], *, every: bool = False
) -> tuple[Channel, ...]:
    """The channels to tell ``contact`` on under a rule allowing ``allowed``.

    Their preferred channels the rule allows and they have an address for, in their order;
    with ``every`` (urgent matters), every allowed channel they have an address for. When
    none fits, the first allowed channel they can be reached on; when they cannot be
    reached at all (no contact, or no address), the rule's first channel: that delivery
    fails and says why, so a gap in the contact book shows.
    """
    if contact is None or not contact.active:
        return (allowed[0],)
    reachable = contact.reachable()
    if every:
        found = tuple(c for c in allowed if c in reachable)
    else:
        found = tuple(c for c in contact.preferred if c in allowed and c in reachable)
        if not found:
            found = tuple(c for c in allowed if c in reachable)[:1]
    return found or (allowed[0],)
