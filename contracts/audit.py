"""Events of the audit context, in streams ``audit-<district>`` (the seals) and
``audit-<district>.openings`` (who opened residents' sealed personal data, and why).

A **seal** fixes the district's record up to a point in the store's order: a digest over
the hash of every event of the district since the previous seal, chained to that seal's
digest. Whoever keeps a seal's digest outside the system (a subscriber of the audit
topic, a printed daily digest) can later show that nothing before it was changed, taken
out or slipped in (``docs/audit.md``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.base import Event, Identifier

HexDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest in lower-case hexadecimal."""

SEAL_STREAM_PREFIX = "audit-"


def seal_stream(district_id: str) -> str:
    """The stream of a district's seals: ``audit-<district>``."""
    return f"{SEAL_STREAM_PREFIX}{district_id}"


def openings_stream(district_id: str) -> str:
    """The stream recording each opening of a district's sealed personal data."""
    return f"{SEAL_STREAM_PREFIX}{district_id}.openings"


class AuditEvent(Event):
    """An event of the audit context."""

    stream_category: ClassVar[str] = "audit"
    context: ClassVar[str] = "audit"


class SealedStream(BaseModel):
    """One stream's part of a seal: the versions the seal covers and the hash of the last."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stream_id: Annotated[str, StringConstraints(min_length=3, max_length=200)]
    first_version: int = Field(ge=1)
    last_version: int = Field(ge=1)
    head_hash: HexDigest
    """The stored hash of ``last_version``: it binds every earlier link of the chain."""


class AuditSealed(AuditEvent):
    """The district's record was sealed up to a point of the store's order.

    The seal covers every event of the district, the seals themselves excepted, whose
    ``(transaction_id, global_position)`` lies after ``after_*`` and up to ``through_*``.
    ``digest = sha256(previous_digest || hash_1 || … || hash_n)`` over the stored hashes
    of those events, in the store's order (raw bytes, 32 each).
    """

    event_type: ClassVar[str] = "AuditSealed"

    seal_seq: int = Field(ge=1)
    """1, 2, …: equal to the seal's version in its stream."""
    after_transaction_id: int = Field(ge=0)
    after_position: int = Field(ge=0)
    """Where the previous seal ended (0 and 0 for the first seal)."""
    through_transaction_id: int = Field(ge=1)
    through_position: int = Field(ge=1)
    """The last event covered, in the store's order."""
    events: int = Field(ge=1)
    """How many events this seal covers."""
    total_events: int = Field(ge=1)
    """How many events the district's seals cover so far, this one included."""
    previous_digest: HexDigest
    """The previous seal's digest (64 zeros for the first seal)."""
    digest: HexDigest
    streams: list[SealedStream]
    """Each stream with events in this seal, by stream id: what lets a verifier name a
    deleted tail, a deleted stream or an inserted event, not only see that one exists."""

    @property
    def stream_key(self) -> str:
        return self.district_id


class PersonalDataOpened(AuditEvent):
    """An operator opened residents' sealed names and phone numbers (in an audit)."""

    event_type: ClassVar[str] = "PersonalDataOpened"

    case_id: Identifier | None = None
    opinion_ids: list[Identifier] = Field(default_factory=list)
    subject_ids: list[Identifier] = Field(min_length=1)
    """The residents whose data was opened (pseudonymous ids, never their data)."""
    fields: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]] = Field(min_length=1)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    purpose: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] = "audit_case"
    """The command that opened them."""

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.openings"


EVENTS: tuple[type[Event], ...] = (AuditSealed, PersonalDataOpened)
"""Every event of this context, every version; registered by ``contracts``."""
