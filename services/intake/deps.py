"""What intake's HTTP routes share: the service, the caller, rate limits, bodies, problems."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import Depends, Request
from pydantic import ValidationError

from contracts.envelope import Metadata
from eventkit.auth import Principal
from eventkit.http import Problem, principal_from_authorization
from eventkit.privacy import PersonalDataVault
from eventkit.store import EventStore
from services.intake.directory import Directory
from services.intake.domain import FieldError, IntakeError, InvalidSubmission
from services.intake.ratelimit import RateLimiter, client_address, retry_after_header
from services.intake.settings import IntakeSettings
from services.intake.submission import Submissions
from services.intake.taxonomy import TaxonomySource
from services.intake.tracking import TrackingService

MAX_BODY_BYTES = 64 * 1024
"""The largest request body intake reads (the issue's 64 KB)."""


@dataclass
class Intake:
    """The running service: everything a route needs, built in the app's lifespan."""

    settings: IntakeSettings
    pool: asyncpg.Pool
    store: EventStore
    vault: PersonalDataVault
    directory: Directory
    taxonomy: TaxonomySource
    submissions: Submissions
    tracking: TrackingService
    submit_limiter: RateLimiter
    read_limiter: RateLimiter


def get_intake(request: Request) -> Intake:
    """The service of the app serving ``request``."""
    intake: Intake = request.app.state.intake
    return intake


IntakeDep = Annotated[Intake, Depends(get_intake)]


def problem(error: IntakeError) -> Problem:
    """An intake refusal as an RFC 9457 problem."""
    extra: dict[str, Any] = {}
    if error.errors:
        extra["errors"] = [
            {
                "field": e.field,
                "code": e.code,
                "message": e.message,
                "message_en": e.message_en,
            }
            for e in error.errors
        ]
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return Problem(
        error.status,
        error.code,
        error.title,
        error.title_en,
        error.detail,
        error.detail_en,
        headers=headers,
        **extra,
    )


def optional_principal(intake: Intake, request: Request) -> Principal | None:
    """The staff member calling, if a Bearer token is sent (401 when it is not valid)."""
    return principal_from_authorization(
        intake.settings, request.headers.get("authorization"), required=False
    )


def staff_principal(intake: IntakeDep, request: Request) -> Principal:
    """Dependency: a staff member (any role), from the Bearer token (401 without one)."""
    principal = principal_from_authorization(intake.settings, request.headers.get("authorization"))
    assert principal is not None  # required: a missing header raised
    return principal


StaffDep = Annotated[Principal, Depends(staff_principal)]


def caller_address(intake: Intake, request: Request) -> str:
    """The client's address, seen through trusted proxies."""
    return client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        intake.settings.trusted_proxy_networks,
    )


def rate_limit(limiter: RateLimiter, intake: Intake, request: Request) -> None:
    """Take a token for the caller; 429 with Retry-After when there is none left."""
    wait = limiter.take(caller_address(intake, request))
    if wait > 0:
        seconds = retry_after_header(wait)
        raise Problem(
            429,
            "rate-limited",
            "请求过于频繁，请稍后再试",
            "Too many requests, please retry later",
            f"请在 {seconds} 秒后重试",
            f"Retry in {seconds} s",
            headers={"Retry-After": seconds},
        )


def limit_reads(intake: IntakeDep, request: Request) -> None:
    """Dependency: the public read budget."""
    rate_limit(intake.read_limiter, intake, request)


def limit_submissions(intake: IntakeDep, request: Request) -> None:
    """Dependency: the public submission budget."""
    rate_limit(intake.submit_limiter, intake, request)


def request_metadata(request: Request) -> Metadata:
    """Correlation (the request id) and trace context for the events a request causes."""
    correlation = structlog.contextvars.get_contextvars().get("correlation_id")
    return Metadata(
        correlation_id=correlation or request.headers.get("x-request-id"),
        causation_id=correlation,
        traceparent=request.headers.get("traceparent"),
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read in chunks: 413 as soon as it passes ``limit`` (chunked uploads
    have no Content-Length for the middleware to check)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(
                413,
                "too-large",
                "请求内容过大",
                "Request body too large",
                f"请求体不能超过 {limit // 1024} KB",
                f"The body may not exceed {limit // 1024} KB",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    """The request's media type, without parameters, lower case."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """A JSON body: 415 for another content type, 400 for malformed JSON, 413 if too big."""
    kind = media_type(request)
    if kind != "application/json" and not (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        raise Problem(
            415,
            "unsupported-media-type",
            "不支持的内容类型",
            "Unsupported media type",
            "请以 JSON 提交，Content-Type: application/json",
            "Send JSON with Content-Type: application/json",
            headers={"Accept-Post": "application/json"},
        )
    body = await read_body(request, limit)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(
            400,
            "invalid-json",
            "JSON 格式错误",
            "Malformed JSON",
            f"第 {getattr(exc, 'lineno', 1)} 行附近无法解析",
            f"Cannot parse near line {getattr(exc, 'lineno', 1)}",
        ) from exc


def invalid_fields(exc: ValidationError) -> InvalidSubmission:
    """A pydantic validation error as the fields a clerk should check."""
    errors = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error.get("loc", ()))
        kind = error.get("type", "")
        if kind == "missing":
            zh = f"缺少必填项「{field}」"
        elif kind == "extra_forbidden":
            zh = f"不认识的字段「{field}」"
        else:
            zh = f"「{field}」格式不正确"
        errors.append(
            FieldError(field or "body", kind or "invalid", zh, f"{field}: {error['msg']}")
        )
    return InvalidSubmission(
        errors or [FieldError("body", "invalid", "请求体格式不正确", "Bad body")]
    )
