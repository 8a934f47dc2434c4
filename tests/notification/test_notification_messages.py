"""Messages, quiet hours, backoff and signatures: the pure parts of sending."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from services.notification.errors import InvalidTemplate
from services.notification.messages import TEMPLATES, Template, default_template, render
from services.notification.signing import dingtalk_url, signed_headers, verify
from services.notification.timing import after_quiet_hours, backoff
from tests.notification.notification_support import SHANGHAI

CONTEXT = {
    "case_id": "c1",
    "district_name": "示范区",
    "station_name": "东湖社区代表联络站",
    "representative_name": "李秀英",
    "recipient_name": "李秀英",
    "category_name": "市政设施",
    "category_name_en": "Municipal facilities",
    "priority_zh": "要事",
    "priority_en": "urgent",
    "community": "东湖社区",
    "response_due": "2026-09-30 17:30",
    "resolution_due": "2026-10-16 17:30",
    "reason": "居民不满意",
    "message": "已联系物业处理",
    "result": "路灯已修复",
    "title": "关于老旧小区路灯改造的建议",
    "reply_due": "2026-12-01 17:30",
    "deadline_zh": "响应",
    "deadline_en": "response",
    "due": "2026-09-30 17:30",
    "next_due": "2026-10-08 17:30",
    "escalated_to": "东湖街道人大工委",
    "to_name": "区城市管理局",
    "tracking_code": "ABCD-2345-EFGH",
    "tracking_url": "https://minqing.example/t/ABCD2345EFGH",
    "rating_url": "https://minqing.example/t/ABCD2345EFGH#feedback",
    "report_due": "2026-09-30 12:00",
    "subject": "department_report",
    "answer": "已纳入明年道路改造计划",
    "answered_by": "区交通运输局",
}


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_shipped_template_renders_in_chinese_first_then_english(name: str) -> None:
    message = render(default_template(name), CONTEXT)
    assert message.subject
    assert message.body
    lines = [line for line in message.body.splitlines() if line.strip()]
    chinese = [i for i, line in enumerate(lines) if any("\u4e00" <= c <= "\u9fff" for c in line)]
    english = [
        i for i, line in enumerate(lines) if sum(c.isascii() for c in line) > 0.8 * len(line)
    ]
    assert chinese
    assert english
    assert chinese[0] == 0  # Chinese first
    assert max(english) > chinese[0]  # then English


@pytest.mark.parametrize("name", ["receipt", "resident_replied", "resident_resolved"])
def test_a_residents_message_carries_no_staff_names_and_fits_a_few_sms(name: str) -> None:
    message = render(default_template(name), CONTEXT)
    assert "李秀英" not in message.text  # nobody else's data
    assert len(message.text) <= 3 * 70


def test_a_template_that_names_what_it_is_not_given_is_refused() -> None:
    with pytest.raises(InvalidTemplate):
        render(Template("{{ case_id }}", "{{ phone_number }}"), CONTEXT)


def test_the_sandbox_refuses_a_template_reaching_for_python_internals() -> None:
    evil = Template("x", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(InvalidTemplate):
        render(evil, CONTEXT)


def test_a_template_without_its_subject_line_is_refused() -> None:
    with pytest.raises(InvalidTemplate):
        Template.parse("只有正文")
    broken = Template("{{ case_id", "x")
    with pytest.raises(InvalidTemplate):
        broken.check()


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ("2026-09-29T21:59", None),
        ("2026-09-29T22:00", "2026-09-30T08:00"),
        ("2026-09-30T03:10", "2026-09-30T08:00"),
        ("2026-09-30T08:00", None),
        ("2026-12-31T23:30", "2027-01-01T08:00"),
    ],
)
def test_quiet_hours_hold_a_residents_sms_until_eight_in_the_district(
    local: str, until: str | None
) -> None:
    now = datetime.fromisoformat(local).replace(tzinfo=SHANGHAI)
    held = after_quiet_hours(now, "Asia/Shanghai", 22, 8)
    expected = datetime.fromisoformat(until).replace(tzinfo=SHANGHAI) if until else None
    assert held == expected


def test_quiet_hours_are_the_districts_own_time_zone() -> None:
    # 15:00 UTC is 23:00 in Shanghai and 16:00 in London.
    now = datetime.fromisoformat("2026-09-29T15:00:00+00:00")
    assert after_quiet_hours(now, "Asia/Shanghai", 22, 8) is not None
    assert after_quiet_hours(now, "Europe/London", 22, 8) is None


def test_backoff_doubles_with_jitter_and_stops_at_an_hour() -> None:
    rng = random.Random(7)
    waits = [backoff(n, 2.0, rng) for n in range(1, 8)]
    for n, wait in enumerate(waits, start=1):
        base = 2.0 * 2 ** (n - 1)
        assert timedelta(seconds=base / 2) <= wait <= timedelta(seconds=base)
    assert backoff(40, 2.0, rng) <= timedelta(hours=1)


def test_a_signature_verifies_with_the_secret_and_not_without_it() -> None:
    body = b'{"id":"1"}'
    headers = signed_headers(["whsec_new", "whsec_old"], 1_800_000_000, body)
    assert verify("whsec_new", headers, body, now=1_800_000_010)
    assert verify("whsec_old", headers, body, now=1_800_000_010)  # during the grace period
    assert not verify("whsec_other", headers, body, now=1_800_000_010)
    assert not verify("whsec_new", headers, body + b" ", now=1_800_000_010)
    assert not verify("whsec_new", headers, body, now=1_800_000_000 + 3600)  # replayed late


def test_a_dingtalk_robot_with_a_secret_is_called_with_timestamp_and_sign() -> None:
    url = dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=t", "SECx", 1700000000000)
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == ["t"]
    assert query["timestamp"] == ["1700000000000"]
    assert len(query["sign"][0]) == 44  # base64 of a SHA-256 digest
    assert dingtalk_url("https://x/robot", None, 1) == "https://x/robot"
