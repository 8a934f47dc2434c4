"""The mail as the e-mail channel puts it together, read back by the standard library."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy

from services.notification.channels import Email, Outgoing, Refused, SmtpSettings
from services.notification.messages import Message

SUBJECT = "【民情】新案件已分派给您：市政设施 · 东湖社区 · 请在一个工作日内回应（案件 3f2a1b）"
BODY = (
    "王代表您好：\n\n有一件群众反映已分派给您。\n类别：市政设施\n"
    "查看：http://127.0.0.1:8000/staff/cases/abc\n"
) * 3


def email() -> Email:
    return Email(
        SmtpSettings(
            host="127.0.0.1",
            port=1025,
            username=None,
            password=None,
            starttls=False,
            sender="民情通知 <notify@minqing.local>",
            timeout=5,
        )
    )


def outgoing(address: str = "rep@example.org") -> Outgoing:
    return Outgoing(
        uuid.UUID("00000000-0000-4000-8000-000000000001"),
        Message(SUBJECT, BODY),
        datetime(2026, 12, 2, 6, 30, tzinfo=UTC),
        address,
    )


def test_a_mail_reads_back_as_the_subject_text_and_headers_it_was_made_of() -> None:
    raw = email()._mail(outgoing())
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"] == SUBJECT
    assert mail["From"].addresses[0].display_name == "民情通知"
    assert mail["From"].addresses[0].addr_spec == "notify@minqing.local"
    assert mail["To"] == "rep@example.org"
    assert mail["Message-ID"] == "<00000000-0000-4000-8000-000000000001@minqing>"
    assert mail["Date"].datetime == datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    assert mail.get_content() == BODY


async def test_an_address_with_a_line_break_is_refused_not_sent() -> None:
    outcome = await email().send(outgoing("rep@example.org\r\nBcc: someone@example.org"))
    assert isinstance(outcome, Refused)
