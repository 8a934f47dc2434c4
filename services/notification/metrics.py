"""The notification service's Prometheus metrics (with every service's own at /metrics)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from prometheus_client import Counter, Gauge

from services.notification import outbox

OUTCOMES = Counter(
    "minqing_notification_attempts_total",
    "Attempts to deliver, by channel and outcome (delivered, retry, refused)",
    ["channel", "outcome"],
)
PENDING = Gauge("minqing_notification_outbox_pending", "Deliveries waiting to be sent")
HELD = Gauge(
    "minqing_notification_outbox_held",
    "Deliveries held back (quiet hours for residents' SMS, paused subscriptions)",
)
UNKNOWN = Gauge(
    "minqing_notification_unknown",
    "Deliveries whose sender stopped mid-send: outcome unknown, waiting to be reconciled",
)
DELIVERIES = Counter(
    "minqing_notification_deliveries_total",
    "Deliveries ended, by channel and status (sent, failed)",
    ["channel", "status"],
)
OLDEST = Gauge(
    "minqing_notification_oldest_pending_seconds",
    "Age of the oldest delivery waiting to be sent (0 when none waits)",
)


async def export_depth(pool: asyncpg.Pool, now: datetime) -> None:
    """Set the outbox gauges from the table."""
    depth = await outbox.depth(pool)
    PENDING.set(depth.pending)
    HELD.set(depth.held)
    UNKNOWN.set(depth.unknown)
    OLDEST.set((now - depth.oldest_pending).total_seconds() if depth.oldest_pending else 0)
