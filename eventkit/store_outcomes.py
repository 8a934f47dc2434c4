"""What an append to the event store answers: where the stream stands, or why the
database refused it (the SQLSTATEs of ``eventstore.append``, MQ001–MQ007)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


class EventStoreError(Exception):
    """Base of the event store's errors."""


class ConcurrencyError(EventStoreError):
    """The stream was not at the expected version: reload, decide again, retry."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class OrderingConflict(EventStoreError):
    """The appending transaction is older than the stream's head: retry in a new one.

    Raised only when the caller's transaction had written before appending; the store
    retries its own transactions by itself.
    """


class DuplicateEventIdError(EventStoreError):
    """An event id is already stored with other content."""


class DistrictMismatchError(EventStoreError):
    """The stream belongs to another district."""


class AuthorshipError(EventStoreError):
    """The database role may not append to this stream category: each service appends
    only to the categories it owns (``eventstore.authors``)."""


class AppendFailed(EventStoreError):
    """An append of a group was refused by the database for a reason of its own (not a
    version, id, district or author refusal): its SQLSTATE and message."""

    def __init__(self, stream_id: str, code: str, message: str) -> None:
        super().__init__(f"append to {stream_id} failed ({code}): {message}")
        self.sqlstate = code


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where the stream stands after an append."""

    stream_version: int
    duplicate: bool
    """True when every event id was already stored with the same content (a retry)."""


def translate(exc: asyncpg.PostgresError, stream_id: str, expected: int) -> Exception:
    code = getattr(exc, "sqlstate", None)
    known = refusal(code, str(exc), getattr(exc, "detail", None), stream_id, expected)
    return known if known is not None else exc


def refusal(
    code: str | None, message: str, detail: str | None, stream_id: str, expected: int
) -> EventStoreError | None:
    """The store's error for a refused append's SQLSTATE (None: not one of the store's)."""
    if code == "MQ001":
        return ConcurrencyError(stream_id, expected, int(detail or "-1"))
    if code == "MQ002":
        return OrderingConflict(message)
    if code == "MQ003":
        return DuplicateEventIdError(message)
    if code == "MQ006":
        return DistrictMismatchError(message)
    if code == "MQ007":
        return AuthorshipError(message)
    if code == "23505" and "event_id" in message:
        # The same id raced into another stream: the same mistake as MQ003.
        return DuplicateEventIdError(message)
    return None
