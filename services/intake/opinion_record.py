"""An accepted opinion as intake keeps it: no personal data, only the resident's subject
id; its tracking code, a credential, never leaves intake. Pure; ``opinions.py`` stores
it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OpinionRecord:
    """An accepted opinion, with its tracking code and, once withdrawn, when and why."""

    opinion_id: str
    district_id: str
    tracking_code: str
    channel: str
    station_code: str | None
    community: str | None
    address: str | None
    lat: float | None
    long: float | None
    category_hint: str | None
    text: str
    attachments: tuple[str, ...]
    external_ref: str | None
    subject_id: str | None
    submitted_at: datetime
    withdrawn_at: datetime | None = None
    withdraw_reason: str | None = None
