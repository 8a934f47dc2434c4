"""Refusals leave every service as RFC 9457 problem documents, mapped to a status once.

A problem document has ``title`` and ``detail`` in Simplified Chinese and ``title_en``
and ``detail_en`` in English, so a clerk can read it. The status comes from the
refusal's class: the kinds of :mod:`eventkit.refusals` carry the usual ones, and a
service adds its own classes to its :class:`Statuses` where the kind is not enough.
A database that cannot be reached answers 503 with ``Retry-After`` on every route.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from eventkit.db import DATABASE_ERRORS, is_database_unavailable
from eventkit.logging import get_logger
from eventkit.refusals import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    MalformedRequest,
    NotFound,
    Refusal,
    Unauthenticated,
    Unavailable,
)

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://minqing.cn/problems/"

DATABASE_RETRY_AFTER = 5
"""Seconds a client is asked to wait when the database cannot be reached."""

Statuses = Mapping[type[Refusal], int]
"""Refusal classes and the HTTP status each leaves with (the closest class wins)."""

DEFAULT_STATUSES: Statuses = {
    MalformedRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    Unavailable: 503,
    Refusal: 422,
}


class Problem(Refusal):
    """A refusal that only the HTTP edge makes (a body too large, a rate limit): it names
    its status and headers itself. Domain code raises plain refusals instead."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        title_en: str,
        detail: str | None = None,
        detail_en: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        errors: tuple[FieldError, ...] = (),
        **extra: Any,
    ) -> None:
        super().__init__(title, title_en, detail, detail_en, code=code, errors=errors, extra=extra)
        self.status = status
        self.headers = dict(headers or {})


def status_of(refusal: Refusal, statuses: Statuses = DEFAULT_STATUSES) -> int:
    """The status ``refusal`` leaves with: its own for a :class:`Problem`, else that of the
    closest class in ``statuses`` along its inheritance."""
    if isinstance(refusal, Problem):
        return refusal.status
    for cls in type(refusal).__mro__:
        if cls in statuses:
            return statuses[cls]
    return 422


def status_for(request: Request, refusal: Refusal) -> int:
    """The status ``refusal`` leaves with from the app serving ``request`` (its statuses
    as ``create_app`` installed them): for a page that renders a refusal itself."""
    statuses: Statuses = getattr(request.app.state, "problem_statuses", DEFAULT_STATUSES)
    return status_of(refusal, statuses)


def problem_document(refusal: Refusal, status: int, instance: str | None = None) -> dict[str, Any]:
    """The problem document of ``refusal``."""
    doc: dict[str, Any] = {
        "type": PROBLEM_BASE + refusal.code,
        "title": refusal.title,
        "title_en": refusal.title_en,
        "status": status,
    }
    if refusal.detail:
        doc["detail"] = refusal.detail
    if refusal.detail_en:
        doc["detail_en"] = refusal.detail_en
    if instance:
        doc["instance"] = instance
    if refusal.errors:
        doc["errors"] = [e.as_dict() for e in refusal.errors]
    doc.update(refusal.extra)
    return doc


def problem_response(
    refusal: Refusal, instance: str | None = None, statuses: Statuses = DEFAULT_STATUSES
) -> JSONResponse:
    """``refusal`` as an HTTP response."""
    status = status_of(refusal, statuses)
    headers = dict(refusal.headers) if isinstance(refusal, Problem) else {}
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(
        problem_document(refusal, status, instance),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


_STATUS_TEXT: dict[int, tuple[str, str]] = {
    400: ("请求有误", "Bad request"),
    401: ("需要登录", "Authentication required"),
    403: ("无权操作", "Forbidden"),
    404: ("未找到", "Not found"),
    405: ("不支持的请求方法", "Method not allowed"),
    409: ("状态冲突", "Conflict"),
    413: ("请求内容过大", "Request body too large"),
    415: ("不支持的内容类型", "Unsupported media type"),
    422: ("提交的内容有误", "Invalid input"),
    429: ("请求过于频繁", "Too many requests"),
}


def field_errors(errors: list[Any]) -> list[FieldError]:
    """Pydantic's or FastAPI's validation errors as the fields a person should check."""
    found = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        field = ".".join(location) or "body"
        kind = str(error.get("type", "")) or "invalid"
        if kind == "missing":
            zh = f"缺少必填项「{field}」"
        elif kind == "extra_forbidden":
            zh = f"不认识的字段「{field}」"
        else:
            zh = f"「{field}」格式不正确"
        found.append(FieldError(field, kind, zh, f"{field}: {error.get('msg', 'invalid')}"))
    return found


def invalid_input(errors: list[FieldError]) -> InvalidInput:
    """One refusal naming every field to correct."""
    fields = [e.field for e in errors] or ["body"]
    return InvalidInput(
        "提交的内容有误",
        "Invalid input",
        "请检查：" + "、".join(fields),
        "Please check: " + ", ".join(fields),
        errors=errors or [FieldError("body", "invalid", "请求体格式不正确", "Bad body")],
    )


DATABASE_DOWN = Problem(
    503,
    "database-unavailable",
    "服务暂时不可用，请稍后再试",
    "The service is temporarily unavailable, please retry later",
    "数据库暂时无法连接",
    "The database cannot be reached right now",
    headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
)
INTERNAL = Problem(
    500, "internal", "系统内部错误，请稍后再试", "Internal error, please retry later"
)
UNSTORABLE_TEXT = InvalidInput(
    "提交的文字含有无法保存的字符",
    "The text contains characters that cannot be stored",
    "请删除其中不可见的控制字符（如 NUL）或残缺的字符后重试",
    "Remove invisible control characters (such as NUL) or broken characters and retry",
    code="invalid-characters",
)
"""Text PostgreSQL cannot hold (NUL, lone UTF-16 surrogates) reached the database or its
driver: the transaction rolled back, and the sender is told what to fix."""
UNSTORABLE_TEXT_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.UntranslatableCharacterError,
    asyncpg.exceptions.CharacterNotInRepertoireError,
    UnicodeEncodeError,
)


def install_problem_handlers(app: FastAPI, statuses: Statuses | None = None) -> None:
    """Make every error of ``app`` a problem document, statuses taken from ``statuses``
    (the defaults plus the service's own)."""
    table: dict[type[Refusal], int] = {**DEFAULT_STATUSES, **(statuses or {})}
    app.state.problem_statuses = table

    async def on_refusal(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        return problem_response(exc, request.url.path, table)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(invalid_input(field_errors(list(exc.errors()))), request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        zh, en = _STATUS_TEXT.get(exc.status_code, ("请求失败", "Request failed"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != en else None
        problem = Problem(
            exc.status_code,
            f"http-{exc.status_code}",
            zh,
            en,
            detail,
            detail,
            headers=dict(exc.headers or {}),
        )
        return problem_response(problem, request.url.path)

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, UNSTORABLE_TEXT_ERRORS):
            return problem_response(UNSTORABLE_TEXT, request.url.path)
        if is_database_unavailable(exc):
            log.warning("database unavailable", path=request.url.path, error=type(exc).__name__)
            return problem_response(DATABASE_DOWN, request.url.path)
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        return problem_response(INTERNAL, request.url.path)

    app.add_exception_handler(Refusal, on_refusal)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # The database's connection errors are handled here rather than by the catch-all,
    # which re-raises after answering (a traceback per request while the database is
    # down); anything else of these classes is still an internal error.
    for cls in (*DATABASE_ERRORS, *UNSTORABLE_TEXT_ERRORS):
        app.add_exception_handler(cls, on_error)
    app.add_exception_handler(Exception, on_error)
