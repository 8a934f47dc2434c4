"""Staff tokens: JWT (HS256) naming a subject, a role and the district it may act in.

One scheme for every service, so a liaison officer's token works at intake and routing
alike. Every query a service answers is scoped to the token's district.

Every token names the key that signed it (``kid`` in its header, the id of
``MINQING_JWT_SECRET``); a service verifies with that key, the current one or one of
``MINQING_JWT_PREVIOUS_SECRETS``, so the signing key rotates without downtime: tokens
signed with the previous key stay valid until they expire. A token without ``kid``
(issued before key ids) is tried against every key.
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
    keys = settings.jwt_keys()
    return jwt.encode(claims, keys.current, algorithm="HS256", headers={"kid": keys.current_id})


def _keys_for(settings: Settings, token: str) -> list[str]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise AuthError("令牌无效 / the token is not valid") from exc
    keys = settings.jwt_keys()
    kid = header.get("kid")
    if kid is None:
        return [key for _, key in keys.all()]
    key = keys.get(str(kid))
    if key is None:
        raise AuthError(
            "令牌的签名密钥未知或已停用 / the token's signing key is unknown or retired"
        )
    return [key]


def verify_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid token; :class:`AuthError` otherwise."""
    keys = _keys_for(settings, token)
    for index, key in enumerate(keys):
        try:
            claims = jwt.decode(
                token,
                key,
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
        except jwt.InvalidSignatureError as exc:
            if index + 1 < len(keys):
                continue
            raise AuthError("令牌无效 / the token is not valid") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise AuthError("令牌无效 / the token is not valid") from exc
    raise AuthError("令牌无效 / the token is not valid")  # pragma: no cover - keys is never empty
