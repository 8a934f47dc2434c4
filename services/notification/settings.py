"""The notification service's settings: the shared ones plus its own (prefix ``MINQING_``).

Every field has a default that works with ``minqing up`` (whose local sink takes mail on
127.0.0.1:1025 and the SMS gateway's, robots' and webhooks' requests on 127.0.0.1:8025).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from eventkit.keys import KeyRing
from eventkit.settings import Settings


class NotificationSettings(Settings):
    """What the notification process reads from its environment."""

    database_role: str | None = "minqing_notification"
    """The service's own role: it appends only to ``notification-*`` streams; the database
    refuses the rest (migration ``0003_audit.sql``)."""

    consumer_batch_size: int = Field(default=100, ge=1)
    """Case and opinion events planned in one transaction with one offset commit (a batch
    that fails is planned again record by record); 1 plans them one by one."""
    notification_port: int = Field(default=8003, ge=1, le=65535)
    notification_consume: bool = True
    """Consume case, opinion and directory events (off only in tests of the HTTP side)."""
    notification_send: bool = True
    """Work the outbox and the public feed in this process (off only in tests)."""
    notification_contact_files: list[Path] = Field(default_factory=list)
    """Contact book files imported at start-up, as JSON, e.g.
    ``MINQING_NOTIFICATION_CONTACT_FILES='["/etc/minqing/haidian-contacts.yaml"]'``. None
    by default; the local stack asks for the demo district's."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "民情通知 <notify@minqing.local>"
    smtp_connections: int = Field(default=16, ge=1)
    """Connections to the mail server kept open, one message at a time on each (four were
    measured to cap a burst's mail at about 300 messages/s: docs/performance.md)."""

    sms_gateway_url: str | None = "http://127.0.0.1:8025/sms"
    """The SMS gateway's endpoint (see docs/notification.md for the contract); unset, no SMS
    is sent and each SMS delivery fails saying so."""
    sms_gateway_key: str = "minqing-local-sms-gateway-key"
    """Signs the requests to the SMS gateway (HMAC-SHA256)."""
    sms_gateway_key_id: str = "k1"
    """Id of ``sms_gateway_key``, named in every request (``X-Minqing-Key-Id``)."""
    sms_gateway_previous_keys: dict[str, str] = Field(default_factory=dict)
    """Earlier gateway keys, by id, as JSON: while one is listed every request carries a
    signature with it too, so the gateway can switch keys at any moment."""

    public_feed: bool = True
    """Publish the per-district public topic ``minqing.public.<district>.cases.v1``."""

    delivery_max_attempts: int = Field(default=8, ge=1)
    """Attempts of one delivery before it is recorded as failed."""
    delivery_backoff: float = Field(default=2.0, gt=0)
    """First retry delay in seconds; doubles on each attempt (with jitter), capped at an
    hour."""
    delivery_timeout: float = Field(default=15.0, gt=0)
    """Seconds one send may take; a delivery still claimed after twice this long belongs to
    a sender that died mid-send, and is marked unknown (never resent by itself)."""
    sender_concurrency: int = Field(default=128, ge=1)
    """Sends in flight at once in this process."""
    sender_per_recipient: int = Field(default=32, ge=1)
    """Sends in flight at once to one recipient (a subscriber, a robot): a slow one cannot
    take every slot."""
    sender_poll_interval: float = Field(default=0.05, gt=0)
    """Seconds between two looks at the outbox when it is idle."""
    sender_linger: float = Field(default=0.02, ge=0)
    """Seconds the sender waits, once a send has ended while others are in flight, for
    more to end (until a claim's worth has, ``sender_claim_at_least``), so that their
    outcomes are recorded (and their successors claimed) together: fewer, larger
    transactions under load, at most this much later."""
    sender_claim_at_least: int = Field(default=16, ge=1)
    """While sends are in flight, claim only when this many slots are free (a claim costs
    a statement whatever its size); with nothing in flight, claim whatever is due."""
    quiet_start: int = Field(default=22, ge=0, le=23)
    quiet_end: int = Field(default=8, ge=0, le=23)
    """SMS to residents wait outside these hours (district time)."""
    webhook_rotation_grace_hours: float = Field(default=24, ge=0)
    """After a subscription's secret is rotated, deliveries are signed with the old secret
    too for this long, so a subscriber can switch without losing one."""

    def sms_gateway_keys(self) -> KeyRing:
        """The SMS gateway's keys: the current one and those still signing beside it."""
        return KeyRing(
            self.sms_gateway_key_id, self.sms_gateway_key, dict(self.sms_gateway_previous_keys)
        )
