"""The local outbox (``minqing sink``) shows a mail as a person reads it: encoded Chinese
headers decoded, the plain-text part of a multipart mail decoded from its transfer
encoding and charset, and every message kept in ``messages.jsonl`` and, for mail, as
the ``.eml`` that arrived."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import aiosmtplib

from eventkit.local import free_port
from minqing.sink import Sink

SUBJECT = (
    "【民情】案件 c1234 已分派给您：东湖社区代表联络站的路灯问题需要尽快处理，请在截止时间前回复"
)


def _mail() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "民情 <noreply@minqing.example>"
    mail["To"] = "张代表 <rep@example.cn>"
    mail["Subject"] = SUBJECT
    mail["Message-ID"] = "<d-1@minqing>"
    mail.set_content("您好：\n请于 2026-09-30 17:30 前回复。\n", charset="utf-8", cte="base64")
    mail.add_alternative("<p>您好</p>", subtype="html")
    return mail


async def test_a_mail_is_shown_decoded_and_kept_as_it_arrived(tmp_path: Path) -> None:
    sink = Sink(smtp_port=free_port(), http_port=free_port(), folder=tmp_path)
    await sink.start()
    try:
        await aiosmtplib.send(_mail(), hostname="127.0.0.1", port=sink.smtp_port)
        await aiosmtplib.send(_mail(), hostname="127.0.0.1", port=sink.smtp_port)
        received = await sink.wait_for(lambda got: len(got) == 2)
    finally:
        await sink.stop()

    mail = received[0]
    assert mail.kind == "mail"
    assert mail.path == "rep@example.cn"
    assert mail.subject == SUBJECT  # folded across lines and RFC 2047-encoded on the wire
    assert mail.headers["Subject"] == SUBJECT
    assert mail.headers["To"] == "张代表 <rep@example.cn>"
    assert mail.headers["Message-ID"] == "<d-1@minqing>"
    assert mail.body == "您好：\n请于 2026-09-30 17:30 前回复。\n"  # the plain part, not the HTML
    kept, emls = _kept(tmp_path)
    assert [k["subject"] for k in kept] == [SUBJECT, SUBJECT]
    assert emls == 2


def _kept(folder: Path) -> tuple[list[dict[str, object]], int]:
    lines = (folder / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines], len(list(folder.glob("*.eml")))


async def test_a_restarted_sink_shows_what_it_kept(tmp_path: Path) -> None:
    first = Sink(smtp_port=free_port(), http_port=free_port(), folder=tmp_path)
    await first.start()
    try:
        await aiosmtplib.send(_mail(), hostname="127.0.0.1", port=first.smtp_port)
        await first.wait_for(lambda got: len(got) == 1)
    finally:
        await first.stop()

    again = Sink(smtp_port=free_port(), http_port=free_port(), folder=tmp_path)
    await again.start()
    try:
        assert [m.subject for m in again.received] == [SUBJECT]
    finally:
        await again.stop()


async def test_a_mail_from_another_sender_shows_its_subject_and_text_not_its_attachment(
    tmp_path: Path,
) -> None:
    raw = (
        "from: other@example.cn\r\n"
        "to: rep@example.cn\r\n"
        "subject: =?utf-8?b?" + base64.b64encode("路灯已修复".encode()).decode() + "?=\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n'
        "\r\n"
        "--b\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        'Content-Disposition: attachment; filename="log.txt"\r\n'
        "\r\n"
        "attached log\r\n"
        "--b\r\n"
        'Content-Type: text/plain; charset="x-unknown-charset"\r\n'
        "\r\n"
        "the message\r\n"
        "--b--\r\n"
    ).encode()
    sink = Sink(smtp_port=free_port(), http_port=free_port(), folder=tmp_path)
    await sink.start()
    try:
        await aiosmtplib.send(
            raw,
            sender="other@example.cn",
            recipients=["rep@example.cn"],
            hostname="127.0.0.1",
            port=sink.smtp_port,
        )
        (mail,) = await sink.wait_for(lambda got: len(got) == 1)
    finally:
        await sink.stop()

    assert mail.subject == "路灯已修复"
    assert mail.body == "the message"  # the part before the boundary, not the attachment


async def test_the_page_answers_a_browsers_icon_request_without_an_error(tmp_path: Path) -> None:
    sink = Sink(smtp_port=free_port(), http_port=free_port(), folder=tmp_path)
    await sink.start()
    try:
        url = f"http://127.0.0.1:{sink.http_port}/favicon.ico"
        async with aiohttp.ClientSession() as session, session.get(url) as icon:
            status = icon.status
    finally:
        await sink.stop()
    assert status == 204
