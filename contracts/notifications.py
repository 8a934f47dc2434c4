"""Events of the notification context, in streams ``notification-<notification_id>``."""

from __future__ import annotations

from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, StringConstraints

from contracts.base import Event, Identifier

ChannelName = Annotated[str, StringConstraints(pattern=r"^(email|sms|webhook|wecom|dingtalk)$")]


class NotificationEvent(Event):
    """An event in a notification's stream: proof that someone was told."""

    stream_category: ClassVar[str] = "notification"
    context: ClassVar[str] = "notification"

    notification_id: Identifier
    source_event_id: UUID
    recipient: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    """A reference to the recipient (a staff id, a subscription id, a subject id)."""
    channel: ChannelName
    template: Identifier
    case_id: Identifier | None = None
    """The case the message was about, so that a case's audit shows who was told."""
    opinion_id: Identifier | None = None

    @property
    def stream_key(self) -> str:
        return self.notification_id


class NotificationSent(NotificationEvent):
    """The message was handed to its channel and accepted."""

    event_type: ClassVar[str] = "NotificationSent"

    attempts: int = Field(default=1, ge=1)


class NotificationFailed(NotificationEvent):
    """Every attempt to deliver failed; the reason is kept."""

    event_type: ClassVar[str] = "NotificationFailed"

    attempts: int = Field(ge=1)
    error: Annotated[str, StringConstraints(max_length=1000)]


EVENTS: tuple[type[Event], ...] = (NotificationSent, NotificationFailed)
"""Every event of this context, every version; registered by ``contracts``."""
