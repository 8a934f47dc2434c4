"""Signed-in pages: the session cookie, CSRF tokens on every form, strict page headers.

A service that serves forms to signed-in staff keeps its sessions itself (routing keeps
them in its own table, so that signing out or retiring a person ends them at once); what
every such service shares is here:

- :class:`SessionCookie`: HttpOnly, SameSite=Lax, ``Secure`` when the request came over
  https (or the service is told it sits behind TLS), and then named with the
  ``__Host-`` prefix, which a browser only accepts from a secure origin for path ``/``;
- CSRF: a signed-in form carries the session's own secret (a synchronizer token,
  compared in constant time); a form shown before sign-in (sign-in, first password)
  carries a token signed with the service's key and bound to a random cookie
  (double submit, ``itsdangerous``), valid for an hour;
- :data:`PAGE_HEADERS`: a Content-Security-Policy that allows scripts, styles and images
  only from the service itself (no inline script or style, no other site), no framing,
  no referrer.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from eventkit.http.headers import PAGE_HEADERS as _PAGE_HEADERS
from eventkit.keys import KeyRing
from eventkit.refusals import Forbidden

CSRF_FIELD: Final = "csrf_token"
"""The name of the hidden field every form carries."""

PAGE_HEADERS: Final = _PAGE_HEADERS
"""Headers of every page with personal data or forms (:mod:`eventkit.http.headers`)."""

PRE_SESSION_MAX_AGE: Final = 3600


class CsrfRefused(Forbidden):
    """A form arrived without the token of the page that showed it."""

    code = "csrf"

    def __init__(self) -> None:
        super().__init__(
            "表单已失效，请刷新页面后重新提交",
            "The form expired or did not come from this site: reload it and submit again",
        )


def is_secure(request: Request, always: bool = False) -> bool:
    """Whether cookies for ``request`` must be ``Secure``."""
    return always or request.url.scheme == "https"


@dataclass(frozen=True)
class SessionCookie:
    """One cookie of a service's pages (see the module's note)."""

    name: str
    always_secure: bool = False

    def name_for(self, request: Request) -> str:
        """The cookie's name on this request (``__Host-`` prefixed when secure)."""
        return f"__Host-{self.name}" if is_secure(request, self.always_secure) else self.name

    def read(self, request: Request) -> str | None:
        """The cookie's value, if the browser sent it."""
        return request.cookies.get(self.name_for(request)) or None

    def set(self, request: Request, response: Response, value: str, max_age: int) -> None:
        """Set the cookie on ``response``."""
        response.set_cookie(
            self.name_for(request),
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=is_secure(request, self.always_secure),
        )

    def clear(self, request: Request, response: Response) -> None:
        """Remove the cookie."""
        response.delete_cookie(
            self.name_for(request),
            path="/",
            httponly=True,
            samesite="lax",
            secure=is_secure(request, self.always_secure),
        )


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a form's token with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class PreSessionForms:
    """CSRF tokens for the forms shown before sign-in (double submit, signed).

    A token is ``<key id>:<itsdangerous token>``: signed with the current key of
    ``keys``, checked with the key it names (the current one or a previous one), so the
    key rotates without refusing a form drawn just before. A token naming a key no longer
    configured is refused; one without a key id (drawn before key ids) is tried against
    every configured key.
    """

    def __init__(self, keys: KeyRing | str, cookie: SessionCookie) -> None:
        ring = keys if isinstance(keys, KeyRing) else KeyRing("k1", keys)
        self._current_id = ring.current_id
        self._serializers = {
            kid: URLSafeTimedSerializer(key, salt="minqing-pre-session-form")
            for kid, key in ring.all()
        }
        self._cookie = cookie

    def token(self, request: Request) -> tuple[str, str | None]:
        """A token for a form, and the new cookie value to :meth:`remember` on the page's
        response (None when the browser has one already)."""
        nonce = self._cookie.read(request)
        fresh = None
        if nonce is None:
            nonce = fresh = secrets.token_urlsafe(16)
        signed = str(self._serializers[self._current_id].dumps(nonce))
        return f"{self._current_id}:{signed}", fresh

    def remember(self, request: Request, response: Response, fresh: str | None) -> None:
        """Set the cookie a new token is bound to."""
        if fresh is not None:
            self._cookie.set(request, response, fresh, PRE_SESSION_MAX_AGE)

    def _signed_value(self, token: str) -> str:
        kid, colon, signed = token.partition(":")
        if colon:
            serializer = self._serializers.get(kid)
            candidates = [serializer] if serializer is not None else []
        else:  # drawn before key ids
            candidates, signed = list(self._serializers.values()), token
        for candidate in candidates:
            try:
                return str(candidate.loads(signed, max_age=PRE_SESSION_MAX_AGE))
            except BadSignature:
                continue
        raise CsrfRefused()

    def check(self, request: Request, token: str | None) -> None:
        """Refuse (:class:`CsrfRefused`) a form whose token is missing, stale, forged,
        signed with a retired key or bound to another browser."""
        nonce = self._cookie.read(request)
        if not token or nonce is None:
            raise CsrfRefused()
        signed = self._signed_value(token)
        if not same_secret(signed, nonce):
            raise CsrfRefused()
