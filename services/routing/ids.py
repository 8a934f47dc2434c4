"""Routing's deterministic ids: one opinion, one case; one request, one set of events.

Ids derive from what caused them (the opinion's event, the staff request's idempotency
key, the missed deadline), so a retry after an unknown outcome appends nothing new: the
store recognises the ids it already holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from contracts.cases import CaseEvent, CaseOverdue

NAMESPACE = uuid.UUID("6f1d3c2a-9a4e-5b8e-8c1f-6d696e71696e")
"""Namespace of the routing service's deterministic ids (cases, events)."""


def case_id_for(district_id: str, opinion_id: str) -> str:
    """The case of an opinion: one opinion, one case, whoever handles it and how often."""
    return uuid.uuid5(NAMESPACE, f"case:{district_id}:{opinion_id}").hex[:20]


def transferred_case_id(case_id: str, to_district_id: str) -> str:
    """The case that continues ``case_id`` in another district."""
    return uuid.uuid5(NAMESPACE, f"transfer:{case_id}:{to_district_id}").hex[:20]


def overdue_event_id(case_id: str, kind: str, due: datetime, ordinal: int) -> uuid.UUID:
    """One id per missed deadline, whoever notices it: the store keeps one event.

    ``ordinal`` is how many deadlines of the case were missed before this one, so that
    two deadlines of the same kind due at the same moment still get two ids.
    """
    moment = due.astimezone(UTC).isoformat()
    return uuid.uuid5(NAMESPACE, f"overdue:{case_id}:{ordinal}:{kind}:{moment}")


def command_event_id(source: str, index: int) -> uuid.UUID:
    """The id of the ``index``-th event caused by ``source`` (a message or a request)."""
    return uuid.uuid5(NAMESPACE, f"event:{source}:{index}")


def event_ids(events: Sequence[CaseEvent], source: str, overdue_before: int = 0) -> list[uuid.UUID]:
    """Event ids: one per missed deadline for ``CaseOverdue``, else derived from the source
    (the message or request that caused them), so that a retry cannot emit twice.

    ``overdue_before`` is the case's count of missed deadlines before ``events``.
    """
    ids: list[uuid.UUID] = []
    index = 0
    missed = overdue_before
    for event in events:
        if isinstance(event, CaseOverdue):
            ids.append(overdue_event_id(event.case_id, event.deadline, event.due, missed))
            missed += 1
        else:
            ids.append(command_event_id(source, index))
            index += 1
    return ids
