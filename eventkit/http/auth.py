"""Who is calling, at the HTTP edge: the staff token of ``Authorization: Bearer``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header

from eventkit.auth import AuthError, verify_token
from eventkit.identity import Principal, Role
from eventkit.refusals import Forbidden, Unauthenticated
from eventkit.settings import Settings


def principal_from_authorization(
    settings: Settings, authorization: str | None, *, required: bool = True
) -> Principal | None:
    """The caller of an ``Authorization: Bearer`` header; :class:`Unauthenticated` when the
    header is malformed or the token invalid; ``None`` without a header unless
    ``required``."""
    if not authorization:
        if not required:
            return None
        raise Unauthenticated(
            "需要工作人员令牌", "A staff token is required",
            "请在 Authorization 头中提供 Bearer 令牌",
            "Send a Bearer token in the Authorization header",
        )  # fmt: skip
    if not authorization.lower().startswith("bearer "):
        raise Unauthenticated(
            "令牌格式不正确", "Malformed Authorization header",
            "请使用 Authorization: Bearer <令牌>", "Use Authorization: Bearer <token>",
        )  # fmt: skip
    try:
        return verify_token(settings, authorization[7:].strip())
    except AuthError as exc:
        raise Unauthenticated(
            "令牌无效或已过期", "Invalid or expired token", str(exc), str(exc)
        ) from exc


def bearer_principal(settings: Settings) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the caller's :class:`Principal` from ``Authorization: Bearer``."""

    async def principal(
        authorization: Annotated[str | None, Header()] = None,
    ) -> Principal:
        caller = principal_from_authorization(settings, authorization)
        assert caller is not None  # required: a missing header raised
        return caller

    return principal


class RoleNotAllowed(Forbidden):
    """The caller's role may not do this."""

    code = "forbidden"

    def __init__(self, roles: tuple[Role, ...]) -> None:
        allowed = ", ".join(r.value for r in roles)
        super().__init__(
            "当前角色无权执行此操作",
            "Your role may not do this",
            f"需要以下角色之一：{allowed}",
            f"One of these roles is required: {allowed}",
        )


def require_roles(
    dependency: Callable[..., Awaitable[Principal]], *roles: Role
) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only ``roles`` through (403 otherwise)."""

    # A default rather than Annotated[...]: with postponed annotations FastAPI could not
    # resolve a closure variable inside the annotation.
    async def check(principal: Principal = Depends(dependency)) -> Principal:  # noqa: B008
        if roles and principal.role not in roles:
            raise RoleNotAllowed(roles)
        return principal

    return check
