"""What every service's HTTP side shares: the app and its edge, problems mapped from
refusals, request reading, staff tokens.

Errors are raised as :class:`eventkit.refusals.Refusal` (or, for what only the edge
decides, :class:`Problem`) anywhere in a request and leave as
``application/problem+json`` with a title and detail in Simplified Chinese (``title``,
``detail``) and in English (``title_en``, ``detail_en``), so a clerk can read them.
"""

from eventkit.http.app import Readiness, ReadyCheck, create_app
from eventkit.http.auth import (
    RoleNotAllowed,
    bearer_principal,
    principal_from_authorization,
    require_roles,
)
from eventkit.http.headers import PAGE_HEADERS, SECURITY_HEADERS
from eventkit.http.problems import (
    PROBLEM_JSON,
    Problem,
    Statuses,
    install_problem_handlers,
    problem_response,
    status_for,
    status_of,
)
from eventkit.http.requests import (
    FORM,
    MULTIPART,
    RequestInfoDep,
    info_of,
    invalid_fields,
    media_type,
    metadata_of,
    parse_model,
    read_body,
    read_form,
    read_json,
    request_info,
)
from eventkit.requests import InvalidIdempotencyKey, RequestInfo, checked_idempotency_key

__all__ = [
    "FORM",
    "MULTIPART",
    "PAGE_HEADERS",
    "PROBLEM_JSON",
    "SECURITY_HEADERS",
    "InvalidIdempotencyKey",
    "Problem",
    "Readiness",
    "ReadyCheck",
    "RequestInfo",
    "RequestInfoDep",
    "RoleNotAllowed",
    "Statuses",
    "bearer_principal",
    "checked_idempotency_key",
    "create_app",
    "info_of",
    "install_problem_handlers",
    "invalid_fields",
    "media_type",
    "metadata_of",
    "parse_model",
    "principal_from_authorization",
    "problem_response",
    "read_body",
    "read_form",
    "read_json",
    "request_info",
    "require_roles",
    "status_for",
    "status_of",
]
