"""Routing's Prometheus metrics (served at ``/metrics`` with every service's own)."""

from __future__ import annotations

from prometheus_client import Counter

CASES_OPENED = Counter(
    "minqing_routing_cases_opened_total",
    "Cases opened from opinions",
    ["district", "queue", "priority"],
)
DEADLINES_MISSED = Counter(
    "minqing_routing_deadlines_missed_total",
    "Missed deadlines recorded (CaseOverdue)",
    ["district", "deadline", "level"],
)
SCAN_FAILURES = Counter(
    "minqing_routing_overdue_scan_failures_total",
    "Cases the overdue scanner could not handle (tried again on the next scan)",
    ["district"],
)
