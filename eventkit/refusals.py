"""Refusals: the one base of every error a person may read, in zh-CN and in English.

A service's domain raises these (or its own subclasses) without knowing about HTTP; the
edge (``eventkit.http``) maps the class to a status once per service and writes the
problem document. The kinds below carry the usual meaning, so a subclass of
:class:`NotFound` leaves as 404 without anyone mapping it; a service maps its own
classes only where the kind does not say enough.

Pure: no I/O, nothing but the standard library, so domain modules may import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field, for a clerk (zh-CN) and in English."""

    field: str
    code: str
    message: str
    message_en: str

    def as_dict(self) -> dict[str, str]:
        """The field error as it appears in a problem document's ``errors``."""
        return {
            "field": self.field,
            "code": self.code,
            "message": self.message,
            "message_en": self.message_en,
        }


class Refusal(Exception):
    """A request refused, with a title and detail in Simplified Chinese and English.

    ``code`` names the refusal in problem documents (``…/problems/<code>``); a subclass
    sets its own default. ``errors`` lists the fields to correct, ``extra`` adds members
    to the problem document (e.g. the transitions a case allows now).
    """

    code: str = "refused"

    def __init__(
        self,
        title: str,
        title_en: str,
        detail: str | None = None,
        detail_en: str | None = None,
        *,
        code: str | None = None,
        errors: Sequence[FieldError] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail_en or title_en)
        if code is not None:
            self.code = code
        self.title = title
        self.title_en = title_en
        self.detail = detail
        self.detail_en = detail_en
        self.errors = tuple(errors)
        self.extra: dict[str, Any] = dict(extra or {})


class MalformedRequest(Refusal):
    """The request cannot be read at all (malformed JSON, a bad header)."""

    code = "malformed-request"


class InvalidInput(Refusal):
    """The request was read, and what it asks is not acceptable."""

    code = "invalid-input"


class Unauthenticated(Refusal):
    """Who is calling is unknown: no token, or a token that is not valid."""

    code = "unauthenticated"


class Forbidden(Refusal):
    """The caller is known and may not do this."""

    code = "forbidden"


class NotFound(Refusal):
    """No such thing, as far as the caller may know (another district's is "not found")."""

    code = "not-found"


class Conflict(Refusal):
    """The request does not fit the current state of what it addresses."""

    code = "conflict"


class Unavailable(Refusal):
    """The service cannot answer now; the same request may succeed later."""

    code = "unavailable"
