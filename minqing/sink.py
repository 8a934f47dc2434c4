"""A local sink for everything the notification service sends: mail over SMTP, and the
SMS gateway's, the WeCom and DingTalk robots' and the webhooks' requests over HTTP.

``minqing up`` runs one (SMTP on 127.0.0.1:1025, HTTP on 127.0.0.1:8025) so a newcomer
can read what the system sent at http://127.0.0.1:8025/, and the demo district's contact
book points there. Tests and the benchmark run their own on free ports and look at
:attr:`Sink.received`; they can make a path fail or answer slowly. Nothing here is for
production: it accepts whatever comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import Header, decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from eventkit.http.headers import SECURITY_HEADERS
from eventkit.loop import run as run_loop

KEEP = 500
"""Messages the page shows (the newest)."""


@dataclass
class Received:
    """One message the sink took."""

    kind: str
    """``mail``, ``sms``, ``wecom``, ``dingtalk`` or ``webhook``."""
    path: str
    """The HTTP path, or the mail's recipients."""
    headers: dict[str, str]
    body: str
    received_at: str
    subject: str = ""


_FIELDS = tuple(f.name for f in fields(Received))


@dataclass
class Behaviour:
    """How the sink answers a path (tests set it): an HTTP status, after a delay."""

    status: int = 200
    delay: float = 0.0
    times: int | None = None
    """Answer so this many times, then normally again (None: always)."""


@dataclass
class Sink:
    """The SMTP and HTTP receivers (see the module's note)."""

    host: str = "127.0.0.1"
    smtp_port: int = 1025
    http_port: int = 8025
    folder: Path | None = None
    received: deque[Received] = field(default_factory=lambda: deque(maxlen=100_000))
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    mail_delay: float = 0.0
    """Seconds the SMTP server waits before it accepts a message's data."""
    peak: dict[str, int] = field(default_factory=dict)
    """The most requests to one path in flight at once (tests of the sender's fairness)."""
    _open: dict[str, int] = field(default_factory=dict)
    _smtp: asyncio.AbstractServer | None = None
    _http: web.AppRunner | None = None
    _log: TextIO | None = None
    """``messages.jsonl``, kept open while the sink runs."""
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> None:
        """Listen on both ports."""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._load()
        loop = asyncio.get_running_loop()
        handler = _MailHandler(self)
        self._smtp = await loop.create_server(
            lambda: SMTP(handler, hostname="minqing-sink", enable_SMTPUTF8=True),
            self.host,
            self.smtp_port,
        )
        app = web.Application(middlewares=[_security_headers])
        app.router.add_get("/", self._page)
        app.router.add_get("/outbox.css", self._css)
        app.router.add_get("/messages.json", self._listing)
        app.router.add_get("/favicon.ico", _no_icon)  # browsers ask; nothing to show
        app.router.add_post("/{path:.*}", self._accept)
        self._http = web.AppRunner(app, access_log=None)
        await self._http.setup()
        await web.TCPSite(self._http, self.host, self.http_port).start()

    async def stop(self) -> None:
        """Stop listening."""
        if self._http is not None:
            await self._http.cleanup()
        if self._smtp is not None:
            self._smtp.close()
            await self._smtp.wait_closed()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def wait_for(
        self, condition: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        """The messages, once ``condition`` holds for them (TimeoutError otherwise)."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: condition(list(self.received))), timeout
            )
        return list(self.received)

    async def take(self, item: Received) -> None:
        self.received.append(item)
        if self.folder is not None:
            if self._log is None:
                self._log = (self.folder / "messages.jsonl").open("a", encoding="utf-8")
            record = {f: getattr(item, f) for f in _FIELDS}
            self._log.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._log.flush()  # the page of another process reads the file
        async with self._arrived:
            self._arrived.notify_all()

    def _load(self) -> None:
        assert self.folder is not None
        stored = self.folder / "messages.jsonl"
        if stored.is_file():
            for line in stored.read_text(encoding="utf-8").splitlines()[-KEEP:]:
                with contextlib.suppress(ValueError, TypeError):
                    self.received.append(Received(**json.loads(line)))

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=_page(list(self.received)[-KEEP:]), content_type="text/html", charset="utf-8"
        )

    async def _css(self, request: web.Request) -> web.Response:
        return web.Response(text=_CSS, content_type="text/css", charset="utf-8")

    async def _listing(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in list(self.received)[-KEEP:]])

    async def _accept(self, request: web.Request) -> web.Response:
        path = request.path
        self._open[path] = self._open.get(path, 0) + 1
        self.peak[path] = max(self.peak.get(path, 0), self._open[path])
        try:
            return await self._answer(request, path)
        finally:
            self._open[path] -= 1

    async def _answer(self, request: web.Request, path: str) -> web.Response:
        behaviour = next(
            (b for prefix, b in self.behaviours.items() if path.startswith(prefix)), None
        )
        if behaviour is not None and behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        status = behaviour.status if behaviour is not None else 200
        if behaviour is not None and behaviour.times is not None:
            behaviour.times -= 1
            if behaviour.times <= 0:
                self.behaviours = {p: b for p, b in self.behaviours.items() if b is not behaviour}
        body = (await request.read()).decode("utf-8", "replace")
        if status < 300:
            parts = path.strip("/").split("/")
            kind = parts[1] if parts[0] == "robot" and len(parts) > 1 else parts[0]
            headers = {k.lower(): v for k, v in request.headers.items()}
            await self.take(Received(kind, path, headers, body, _now(), _subject(kind, body)))
        if path.startswith("/robot/"):
            return web.json_response(
                {"errcode": 0 if status < 300 else 1, "errmsg": "ok"}, status=status
            )
        return web.json_response({"ok": status < 300}, status=status)


class _MailHandler:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._sink.mail_delay:
            await asyncio.sleep(self._sink.mail_delay)
        raw = envelope.original_content or b""
        # The compat32 parser keeps headers as their text and decodes only what is shown:
        # the default policy's header objects cost the sink more than everything else
        # it does for a mail (measured under the notification benchmark's burst).
        mail = message_from_bytes(raw)
        headers = {k: _header_text(v) for k, v in mail.items()}
        item = Received(
            "mail",
            ", ".join(envelope.rcpt_tos),
            headers,
            _plain_text(mail),
            _now(),
            _header_text(mail["Subject"] or ""),  # whatever case the sender wrote it in
        )
        await self._sink.take(item)
        if self._sink.folder is not None:
            name = f"{item.received_at.replace(':', '')}-{len(self._sink.received)}.eml"
            (self._sink.folder / name).write_bytes(raw)
        return "250 Message accepted for delivery"


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


def _header_text(value: str | Header) -> str:
    """A header as a person reads it: encoded words (RFC 2047) decoded, lines unfolded."""
    text = str(value)
    if "=?" in text:
        return str(make_header(decode_header(text)))
    return " ".join(text.split())


def _plain_text(mail: Message) -> str:
    """The mail's first ``text/plain`` part that is not an attachment, decoded (transfer
    encoding and charset; UTF-8 for a charset Python does not know)."""
    for part in mail.walk():
        if part.get_content_type() != "text/plain" or part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return ""
        try:
            return payload.decode(part.get_content_charset() or "utf-8", "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    return ""


def _subject(kind: str, body: str) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    if kind == "sms":
        return str(data.get("text", "")).split("\n", 1)[0]
    if kind in ("wecom", "dingtalk"):
        return str(data.get("text", {}).get("content", "")).split("\n", 1)[0]
    return str(data.get("subject") or data.get("type") or "")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_KIND = {
    "mail": "邮件 / mail",
    "sms": "短信 / SMS",
    "wecom": "企业微信 / WeCom",
    "dingtalk": "钉钉 / DingTalk",
    "webhook": "回调 / webhook",
}


def _readable(m: Received) -> tuple[str, str]:
    """Whom a message went to and what it said, as a person reads them."""
    try:
        data: Any = json.loads(m.body) if m.kind != "mail" else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return m.path, m.body
    if m.kind == "sms":
        return str(data.get("to", m.path)), str(data.get("text", m.body))
    if m.kind in ("wecom", "dingtalk"):
        text = data.get("text", {}).get("content", m.body)
        who = data.get("text", {}).get("mentioned_list") or data.get("at", {}).get("atUserIds")
        return f"{m.path}" + (f" @{', '.join(who)}" if who else ""), str(text)
    return m.path, json.dumps(data, ensure_ascii=False, indent=2)


_CSS = """body{font-family:"Noto Sans CJK SC",sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:top}pre{white-space:pre-wrap;margin:.5rem 0}
.muted{color:#666}
"""
"""The page's style, served as a file: the page has no inline style or script."""


@web.middleware
async def _security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The same security headers as every service's edge (eventkit.http.headers)."""
    response = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _page(messages: list[Received]) -> str:
    rows = "\n".join(
        "<tr><td>{time}</td><td>{kind}</td><td>{to}</td><td><details><summary>{subject}"
        "</summary><pre>{body}</pre></details></td></tr>".format(
            time=html.escape(m.received_at[:19].replace("T", " ")),
            kind=html.escape(_KIND.get(m.kind, m.kind)),
            to=html.escape(_readable(m)[0]),
            subject=html.escape(m.subject or "(无主题 / no subject)"),
            body=html.escape(_readable(m)[1]),
        )
        for m in reversed(messages)
    )
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>本地发件箱 / Local outbox</title>
<link rel="stylesheet" href="/outbox.css"></head><body>
<h1>本地发件箱 <span class="muted">/ Local outbox</span></h1>
<p class="muted">民情在本机发出的邮件、短信、机器人消息和回调（仅供开发）。最新的在前。<br>
What Minqing sent on this machine: mail, SMS, robot messages, webhooks (development only).
Newest first.</p>
<table><thead><tr><th>时间 / time (UTC)</th><th>渠道 / channel</th><th>收件 / to</th>
<th>内容 / message</th></tr></thead><tbody>
{rows or '<tr><td colspan="4">尚无消息 / nothing yet</td></tr>'}
</tbody></table></body></html>"""


async def serve(sink: Sink, stop: asyncio.Event) -> None:
    """Run ``sink`` until ``stop`` is set."""
    await sink.start()
    try:
        await stop.wait()
    finally:
        await sink.stop()


def main() -> None:
    """``python -m minqing.sink``: the sink of the local stack, until SIGINT or SIGTERM."""
    folder = Path(os.environ.get("MINQING_DATA_DIR", ".minqing")) / "sink"
    sink = Sink(
        host=os.environ.get("MINQING_SINK_HOST", "127.0.0.1"),
        smtp_port=int(os.environ.get("MINQING_SINK_SMTP_PORT", "1025")),
        http_port=int(os.environ.get("MINQING_SINK_HTTP_PORT", "8025")),
        folder=folder,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(sink, stop)

    run_loop(run())


if __name__ == "__main__":
    main()
