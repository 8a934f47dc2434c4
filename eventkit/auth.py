"""Staff tokens: JWT (HS256) naming a subject, a role and the district it may act in.

One scheme for every service, so a liaison officer's token works at intake and routing
alike. Every query a service answers is scoped to the token's district.
"""

from __future__ import annotations

import time

import jwt

from eventkit.identity import Principal, Role
from eventkit.settings import Settings

ISSUER = "minqing"


class AuthError(Exception):
    """A token that is missing, malformed, expired or signed with another key."""


def issue_token(
    settings: Settings,
    *,
    role: Role,
    district_id: str,
    subject: str,
    ttl_hours: float | None = None,
) -> str:
    """A signed token for ``subject`` acting as ``role`` in ``district_id``."""
    now = int(time.time())
    ttl = ttl_hours if ttl_hours is not None else settings.jwt_ttl_hours
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "role": role.value,
        "district": district_id,
        "iat": now,
        "exp": now + int(ttl * 3600),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid token; :class:`AuthError` otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iss"]},
        )
        return Principal(
            subject=str(claims["sub"]),
            role=Role(claims["role"]),
            district_id=str(claims["district"]),
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("令牌已过期 / the token has expired") from exc
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        raise AuthError("令牌无效 / the token is not valid") from exc
