"""The notification service's deterministic ids: one delivery per (source event,
recipient, channel), whoever plans it and however often."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("2b6f0c1e-5d3a-4e7b-9a8c-6e6f74696679")


def delivery_id(source_event_id: uuid.UUID, kind: str, recipient: str, channel: str) -> uuid.UUID:
    """The one delivery of ``source_event_id`` to ``recipient`` on ``channel``: also the id
    receivers deduplicate by (the webhook's ``Idempotency-Key``, the mail's Message-ID)."""
    return uuid.uuid5(NAMESPACE, f"delivery:{source_event_id}:{kind}:{recipient}:{channel}")


def outcome_event_id(delivery: uuid.UUID, attempt: int) -> uuid.UUID:
    """The id of the event recording a delivery's outcome (one per attempt that ended it)."""
    return uuid.uuid5(NAMESPACE, f"outcome:{delivery}:{attempt}")


def notification_stream(delivery: uuid.UUID) -> str:
    """The stream holding a delivery's outcome: ``notification-<delivery id>``."""
    return f"notification-{delivery.hex}"
