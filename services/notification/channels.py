"""The channels, each behind one small interface: email (SMTP), SMS through an HTTP
gateway, WeCom and DingTalk group robots, and webhooks (staff endpoints and outside
subscribers).

A channel sends one :class:`Outgoing` and says how it went: :class:`Delivered`,
:class:`Retry` (a passing failure: the network, a 5xx, a 429) or :class:`Refused` (for
good: a 4xx, a bad address, a robot's error code). Every request carries the delivery's
stable id so a receiver can drop a repeat: ``Idempotency-Key`` on HTTP, ``Message-ID`` on
mail.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any, Protocol

import aiohttp
import aiosmtplib

from eventkit import json_bytes
from eventkit.keys import KeyRing
from services.notification.messages import Message
from services.notification.signing import KEY_ID_HEADER, dingtalk_url, signed_headers


@dataclass(frozen=True)
class Delivered:
    """The channel accepted the message."""

    detail: str = ""


@dataclass(frozen=True)
class Retry:
    """It did not go, and may go later."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """It cannot go: trying again would fail the same way."""

    reason: str


Outcome = Delivered | Retry | Refused


@dataclass(frozen=True)
class Outgoing:
    """One message to one address on one channel."""

    delivery_id: uuid.UUID
    message: Message
    at: datetime
    """When it is sent (the service's clock): the signatures' timestamp, the mail's date."""
    address: str
    """An e-mail address, a mobile number, a robot's or an endpoint's URL."""
    mention: str | None = None
    """A robot's user to @-mention."""
    secrets: tuple[str, ...] = ()
    """Signing secrets (webhooks, the DingTalk robot)."""
    document: dict[str, Any] | None = None
    """For a subscriber: the CloudEvent to POST instead of a message."""
    extra: dict[str, str] = field(default_factory=dict)


class Channel(Protocol):
    """Sends one message; never raises for what the receiver did."""

    async def send(self, outgoing: Outgoing) -> Outcome: ...

    async def close(self) -> None: ...


def _http_outcome(status: int, text: str) -> Outcome:
    if 200 <= status < 300:
        return Delivered(f"HTTP {status}")
    reason = f"HTTP {status}: {text[:200]}"
    if status in (408, 425, 429) or status >= 500:
        return Retry(reason)
    return Refused(reason)


class HttpChannel:
    """What the HTTP channels share: one aiohttp session (pooled, kept-alive connections)
    and a timeout. aiohttp rather than httpx here: measured, a request costs a tenth of
    the CPU, which decides how many deliveries a core sends (docs/performance.md)."""

    def __init__(self, timeout: float, connections: int = 64) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._connections),
            )
        return self._session

    async def request(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST ``body``; the status and the answer's text (raises aiohttp's errors)."""
        async with self._client().post(url, data=body, headers=headers) as response:
            return response.status, await response.text(errors="replace")

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            status, text = await self.request(url, body, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Retry(f"{type(exc).__name__}: {exc}"[:300])
        return _http_outcome(status, text)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class SmsGateway(HttpChannel):
    """SMS through the district's gateway: ``POST {"id", "to", "text"}``, signed with the
    gateway key; the gateway answers 2xx once it has taken the message.

    Signed with the current key and, while they are configured, with the previous ones
    (one ``v1=`` value each, the current one first); ``X-Minqing-Key-Id`` names the keys
    in the same order. So the gateway may switch to the new key at any moment of a
    rotation, and a key dropped from the previous ones signs nothing more."""

    def __init__(self, url: str | None, keys: KeyRing | str, timeout: float) -> None:
        super().__init__(timeout)
        self._url = url
        ring = keys if isinstance(keys, KeyRing) else KeyRing("k1", keys)
        self._keys = ring.all()

    async def send(self, outgoing: Outgoing) -> Outcome:
        if not self._url:
            return Refused("no SMS gateway is configured (MINQING_SMS_GATEWAY_URL)")
        body = json_bytes.dumps(
            {"id": str(outgoing.delivery_id), "to": outgoing.address, "text": outgoing.message.text}
        )
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(outgoing.delivery_id),
            **signed_headers([key for _, key in self._keys], int(outgoing.at.timestamp()), body),
            KEY_ID_HEADER: " ".join(kid for kid, _ in self._keys),
        }
        return await self.post(self._url, body, headers)


class WeComRobot(HttpChannel):
    """A WeCom (企业微信) group robot: ``{"msgtype": "text", "text": {"content",
    "mentioned_list"}}``; the robot answers ``errcode`` 0 when it posted."""

    async def send(self, outgoing: Outgoing) -> Outcome:
        text: dict[str, Any] = {"content": outgoing.message.text}
        if outgoing.mention:
            text["mentioned_list"] = [outgoing.mention]
        body = json_bytes.dumps({"msgtype": "text", "text": text})
        return await self._robot(outgoing.address, body, outgoing)

    async def _robot(self, url: str, body: bytes, outgoing: Outgoing) -> Outcome:
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(outgoing.delivery_id)}
        try:
            status, text = await self.request(url, body, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Retry(f"{type(exc).__name__}: {exc}"[:300])
        outcome = _http_outcome(status, text)
        if not isinstance(outcome, Delivered):
            return outcome
        try:
            answer = json.loads(text)
        except ValueError:
            return Refused(f"the robot's answer is not JSON: {text[:200]}")
        code = answer.get("errcode", 0) if isinstance(answer, dict) else 0
        if code == 0:
            return Delivered("errcode 0")
        # 45009 and 130101: the robot's rate limit (20 messages a minute): later.
        reason = f"errcode {code}: {answer.get('errmsg', '')}"[:300]
        return Retry(reason) if code in (45009, 130101) else Refused(reason)


class DingTalkRobot(WeComRobot):
    """A DingTalk (钉钉) group robot: ``{"msgtype": "text", "text": {"content"}, "at":
    {"atUserIds"}}``, the address signed with the robot's secret when it has one."""

    async def send(self, outgoing: Outgoing) -> Outcome:
        payload: dict[str, Any] = {"msgtype": "text", "text": {"content": outgoing.message.text}}
        if outgoing.mention:
            payload["at"] = {"atUserIds": [outgoing.mention]}
        url = dingtalk_url(
            outgoing.address,
            outgoing.secrets[0] if outgoing.secrets else None,
            int(outgoing.at.timestamp() * 1000),
        )
        return await self._robot(url, json_bytes.dumps(payload), outgoing)


class Webhook(HttpChannel):
    """A webhook: a staff endpoint (the message as JSON) or an outside subscriber (the
    CloudEvent, structured mode), signed with the receiver's secrets."""

    async def send(self, outgoing: Outgoing) -> Outcome:
        if outgoing.document is not None:
            body = json_bytes.dumps(outgoing.document)
            content_type = "application/cloudevents+json; charset=utf-8"
        else:
            body = json_bytes.dumps(
                {
                    "id": str(outgoing.delivery_id),
                    "subject": outgoing.message.subject,
                    "body": outgoing.message.body,
                    **outgoing.extra,
                }
            )
            content_type = "application/json"
        headers = {"Content-Type": content_type, "Idempotency-Key": str(outgoing.delivery_id)}
        if outgoing.secrets:
            headers.update(signed_headers(outgoing.secrets, int(outgoing.at.timestamp()), body))
        return await self.post(outgoing.address, body, headers)


@dataclass
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    sender: str
    timeout: float
    connections: int = 16
    """Connections kept open to the server, one message at a time on each: an SMTP
    message takes three round trips (MAIL, RCPT, DATA), so under load the mail sent per
    second is about the connections over the round trips' time (docs/performance.md)."""


class Email:
    """E-mail over SMTP, on a few connections kept open (one message at a time each)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._from = parseaddr(settings.sender)
        self._from_header = formataddr(self._from, charset="utf-8")
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(settings.connections)
        self._local_hostname: str | None = None
        """The name this client greets the server with (EHLO), looked up once: aiosmtplib
        would look it up (a DNS query, in a thread) at every new connection."""

    async def send(self, outgoing: Outgoing) -> Outcome:
        if "\r" in outgoing.address or "\n" in outgoing.address:
            return Refused("the e-mail address holds a line break")
        mail = self._mail(outgoing)
        async with self._slots:
            smtp = await self._connection()
            if isinstance(smtp, Retry):
                return smtp
            try:
                await smtp.sendmail(self._from[1], [outgoing.address], mail)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await self._release(smtp)
                return Refused(f"recipient refused: {exc}"[:300])
            except aiosmtplib.SMTPResponseException as exc:
                await self._release(smtp)
                reason = f"SMTP {exc.code}: {exc.message}"[:300]
                return Refused(reason) if 500 <= exc.code < 600 else Retry(reason)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await _quietly_close(smtp)
                return Retry(f"{type(exc).__name__}: {exc}"[:300])
            await self._release(smtp)
            return Delivered("SMTP 250")

    def _mail(self, outgoing: Outgoing) -> bytes:
        """The message as sent: a plain UTF-8 text, base64 in the body and RFC 2047 words in
        the headers (the encodings from the standard library's ``email`` package), CRLF
        line ends. Put together here rather than by ``MIMEText(...).as_bytes()``, which
        makes the same message (headers in another order, the subject folded otherwise)
        for four and a half times the CPU (measured: 180 against 40 µs a message)."""
        subject = Header(outgoing.message.subject, "utf-8", header_name="Subject").encode(
            linesep="\r\n"
        )
        head = (
            f"From: {self._from_header}\r\n"
            f"To: {outgoing.address}\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {format_datetime(outgoing.at.astimezone(UTC))}\r\n"
            # The stable id: a receiver (or a mailbox) that sees it twice keeps one.
            f"Message-ID: <{outgoing.delivery_id}@minqing>\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        )
        body = base64.encodebytes(outgoing.message.body.encode("utf-8"))
        return head.encode("utf-8") + body.replace(b"\n", b"\r\n")

    async def _connection(self) -> aiosmtplib.SMTP | Retry:
        while not self._idle.empty():
            smtp = self._idle.get_nowait()
            if smtp.is_connected:
                return smtp
        s = self._settings
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            start_tls=s.starttls,
            local_hostname=self._local_hostname,
        )
        try:
            await smtp.connect()
            if s.username and s.password:
                await smtp.login(s.username, s.password)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _quietly_close(smtp)
            return Retry(f"cannot reach the mail server: {type(exc).__name__}: {exc}"[:300])
        return smtp

    async def _release(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected:
            self._idle.put_nowait(smtp)

    async def close(self) -> None:
        while not self._idle.empty():
            await _quietly_close(self._idle.get_nowait())


async def _quietly_close(smtp: aiosmtplib.SMTP) -> None:
    try:
        if smtp.is_connected:
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        smtp.close()
