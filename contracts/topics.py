"""Kafka topic names: part of the public language, like the events themselves."""

from __future__ import annotations

OPINIONS = "minqing.opinions.v1"
CASES = "minqing.cases.v1"
DIRECTORY = "minqing.directory.v1"
NOTIFICATIONS = "minqing.notifications.v1"
AUDIT = "minqing.audit.v1"

DLQ_SUFFIX = ".dlq"

TOPIC_BY_CATEGORY: dict[str, str] = {
    "opinion": OPINIONS,
    "qrscans": OPINIONS,
    "case": CASES,
    "district": DIRECTORY,
    "station": DIRECTORY,
    "representative": DIRECTORY,
    "staff": DIRECTORY,
    "notification": NOTIFICATIONS,
    "audit": AUDIT,
}
"""Each stream category is published to one topic."""

SERVICE_BY_CATEGORY: dict[str, str] = {
    "opinion": "intake",
    "qrscans": "intake",
    "case": "routing",
    "district": "routing",
    "station": "routing",
    "representative": "routing",
    "staff": "routing",
    "notification": "notification",
    "audit": "audit",
}
"""The service that owns (is alone allowed to append to) each stream category; the
database enforces it (``eventstore.authors``, role ``minqing_<service>``). ``audit`` is the
sealer's (it runs beside the relay) and the operators' audit commands'."""

ALL_TOPICS: tuple[str, ...] = (OPINIONS, CASES, DIRECTORY, NOTIFICATIONS, AUDIT)


def category_of(stream_id: str) -> str:
    """The category of a stream id: the part before the first ``-``."""
    category, sep, rest = stream_id.partition("-")
    if not sep or not category or not rest:
        raise ValueError(f"stream id {stream_id!r} is not of the form <category>-<id>")
    return category


def topic_for(stream_id: str) -> str:
    """The topic a stream's events are published to."""
    category = category_of(stream_id)
    try:
        return TOPIC_BY_CATEGORY[category]
    except KeyError:
        raise ValueError(f"no topic for stream category {category!r}") from None


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return topic + DLQ_SUFFIX


def public_cases_topic(district_id: str) -> str:
    """The per-district public feed for outside subscribers (no personal data)."""
    return f"minqing.public.{district_id}.cases.v1"
