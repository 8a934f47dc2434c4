"""The notification API's bodies and answers, as models: the OpenAPI document shows every
field. Secrets appear only in the answer that creates or rotates them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from services.notification.contact_book import Channel, ContactEntry
from services.notification.rules import RULES

EventType = Annotated[str, StringConstraints(pattern=r"^Case[A-Za-z]+$", max_length=64)]


def _safe_url(url: HttpUrl) -> HttpUrl:
    """HTTPS, except to this machine (a subscriber under test, a local sink)."""
    host = (urlsplit(str(url)).hostname or "").lower()
    if url.scheme != "https" and host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("订阅地址须为 https / a subscriber's address must be https")
    return url


SubscriberUrl = Annotated[HttpUrl, AfterValidator(_safe_url)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactList(Answer):
    contacts: list[ContactEntry]


class ImportResult(Answer):
    district_id: str
    contacts: int
    added: int
    changed: int


class RuleSettingBody(Body):
    enabled: bool = True
    channels: list[Channel] | None = Field(default=None, min_length=1)
    """Narrow the rule's channels (None: the rule's own)."""


class RuleView(Answer):
    name: str
    summary: str
    events: list[str]
    template: str
    channels: list[str]
    enabled: bool
    district_channels: list[str] | None


class RuleList(Answer):
    rules: list[RuleView]


class TemplateBody(Body):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class TemplateView(Answer):
    name: str
    subject: str
    body: str
    overridden: bool


class SubscriptionBody(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    url: SubscriberUrl
    event_types: list[EventType] = Field(default_factory=list, max_length=20)
    """Only these case event types (none: every one)."""


class SubscriptionView(Answer):
    subscription_id: str
    name: str
    url: str
    event_types: list[str]
    status: str
    created_at: datetime


class SubscriptionWithSecret(SubscriptionView):
    secret: str
    """Shown once: keep it to check the signatures (see docs/notification.md)."""


class SubscriptionList(Answer):
    subscriptions: list[SubscriptionView]


class DeliveryView(Answer):
    delivery_id: uuid.UUID
    source_event_id: uuid.UUID
    source_type: str
    case_id: str | None
    status: str
    attempts: int
    last_error: str | None
    held: str | None
    created_at: datetime
    not_before: datetime
    finished_at: datetime | None


class DeliveryLog(Answer):
    deliveries: list[DeliveryView]


class StaffDeliveryView(DeliveryView):
    rule: str
    recipient_kind: str
    recipient: str
    channel: str


class StaffDeliveryLog(Answer):
    deliveries: list[StaffDeliveryView]


class ReconcileBody(Body):
    outcome: Literal["sent", "failed", "resend"]
    """What the operator established: it went, it did not, or send it again (with the same
    id, so a receiver that got it drops the repeat)."""


class ReconcileResult(Answer):
    delivery_id: uuid.UUID
    status: str


RULE_NAMES = [rule.name for rule in RULES]
