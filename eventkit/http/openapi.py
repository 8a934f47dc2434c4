"""The OpenAPI document of every service says what its errors really are: every 4xx and
5xx answer is an RFC 9457 problem document (``application/problem+json``, titles and
details in Chinese and English), not FastAPI's default validation error. An operation
that documents error answers of another format (Open311's ``<errors>``) keeps them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from eventkit.http.problems import PROBLEM_JSON

PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "Problem",
    "description": "RFC 9457 problem document; 中文 title/detail, English title_en/detail_en.",
    "type": "object",
    "required": ["type", "title", "title_en", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "title_en": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "detail_en": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "code", "message", "message_en"],
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "message_en": {"type": "string"},
                },
            },
        },
    },
}

_PROBLEM_CONTENT: Final = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_RANGES: Final = {
    "4XX": "请求被拒绝 / the request was refused (problem document)",
    "5XX": "服务暂时无法处理 / the service could not answer (problem document)",
}
_FASTAPI_ERRORS: Final = ("HTTPValidationError", "ValidationError")


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with every error answer documented as a problem document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
        )
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name in _FASTAPI_ERRORS:
            schemas.pop(name, None)
        schemas["Problem"] = PROBLEM_SCHEMA
        for item in document.get("paths", {}).values():
            for operation in item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses: dict[str, Any] = operation["responses"]
                validation = responses.get("422")
                if validation is not None and "HTTPValidationError" in str(validation):
                    del responses["422"]
                if any(status[:1] in ("4", "5") for status in responses):
                    continue  # the operation documents errors of its own format (Open311)
                for status, description in _RANGES.items():
                    responses[status] = {"description": description, "content": _PROBLEM_CONTENT}
        app.openapi_schema = document
        return document

    return openapi
