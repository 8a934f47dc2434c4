"""Reading requests, once for every service: bodies within a limit, JSON, forms, the
fields a person must correct, and what a request says about itself (correlation,
trace context, ``Idempotency-Key``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, Header, Request
from pydantic import BaseModel, ValidationError

from contracts.envelope import Metadata
from eventkit.http.edge import too_large
from eventkit.http.problems import Problem, field_errors, invalid_input
from eventkit.refusals import InvalidInput, MalformedRequest
from eventkit.requests import RequestInfo, checked_idempotency_key

M = TypeVar("M", bound=BaseModel)

FORM: Final = "application/x-www-form-urlencoded"
MULTIPART: Final = "multipart/form-data"


def request_info(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="重试时原样重发，不会重复办理 / repeat on a retry: nothing happens twice",
        ),
    ] = None,
) -> RequestInfo:
    """Dependency: the :class:`RequestInfo` of ``request`` (it declares the
    ``Idempotency-Key`` header, so the OpenAPI document shows it)."""
    return RequestInfo(
        correlation_id=_correlation_id(request),
        traceparent=request.headers.get("traceparent"),
        idempotency_key=checked_idempotency_key(idempotency_key),
    )


def info_of(request: Request, *, idempotency: bool = True) -> RequestInfo:
    """The :class:`RequestInfo` of ``request`` outside dependency injection (a handler
    that renders its own errors); without ``idempotency`` the key is left out, unchecked."""
    key = request.headers.get("idempotency-key") if idempotency else None
    return RequestInfo(
        correlation_id=_correlation_id(request),
        traceparent=request.headers.get("traceparent"),
        idempotency_key=checked_idempotency_key(key),
    )


def metadata_of(request: Request) -> Metadata:
    """Correlation and trace context for the events a request causes."""
    return info_of(request, idempotency=False).metadata()


def _correlation_id(request: Request) -> str | None:
    return getattr(request.state, "correlation_id", None) or request.headers.get("x-request-id")


RequestInfoDep = Annotated[RequestInfo, Depends(request_info)]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read in chunks: 413 as soon as it passes ``limit`` (a chunked upload has
    no ``Content-Length`` for the edge to check)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    """The request's media type, without parameters, lower case."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def unsupported_media_type(expected: str) -> Problem:
    """415, saying what to send instead."""
    return Problem(
        415,
        "unsupported-media-type",
        "不支持的内容类型",
        "Unsupported media type",
        f"请以 {expected} 提交",
        f"Send {expected}",
        headers={"Accept-Post": expected},
    )


async def read_json(request: Request, limit: int) -> Any:
    """A JSON body: 415 for another content type, 400 for malformed JSON, 413 if too big."""
    kind = media_type(request)
    if kind != "application/json" and not (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        raise unsupported_media_type("application/json")
    body = await read_body(request, limit)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        raise MalformedRequest(
            "JSON 格式错误",
            "Malformed JSON",
            f"第 {line} 行附近无法解析",
            f"Cannot parse near line {line}",
            code="invalid-json",
        ) from exc


async def read_form(
    request: Request, limit: int, *, media_types: tuple[str, ...] = (FORM,)
) -> dict[str, str]:
    """A form's fields (the last value of a repeated one; files are left out): 415 for a
    media type not in ``media_types``, 400 when it is not UTF-8, 413 if too big."""
    kind = media_type(request)
    if kind not in media_types:
        raise unsupported_media_type(" / ".join(media_types))
    body = await read_body(request, limit)
    if kind == MULTIPART:

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        parsed = await Request(request.scope, replay).form()
        return {key: value for key, value in parsed.items() if isinstance(value, str)}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise MalformedRequest(
            "表单编码错误", "The form is not UTF-8", code="invalid-form"
        ) from exc


def invalid_fields(exc: ValidationError) -> InvalidInput:
    """A pydantic validation error as one refusal naming every field to correct."""
    return invalid_input(field_errors(list(exc.errors(include_input=False, include_url=False))))


def parse_model(model: type[M], data: Any) -> M:
    """``data`` validated as ``model``, or the refusal naming the fields to correct."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_fields(exc) from exc
