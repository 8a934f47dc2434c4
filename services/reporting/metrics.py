"""Reporting's Prometheus metrics (served at ``/metrics`` beside every service's own and
the consumer runtime's ``minqing_consumer_lag_records{consumer,topic}``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_PROJECTED = Counter(
    "minqing_reporting_events_projected_total",
    "Events written to the live projections, by type",
    ["event_type"],
)
LAST_RECORDED = Gauge(
    "minqing_reporting_last_recorded_timestamp_seconds",
    "When the store recorded the last event projected from each topic (Unix time): "
    "time() minus this is how far behind the projections are",
    ["topic"],
)
