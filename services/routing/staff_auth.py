"""Who calls routing's API: a bearer token (machines, scripts) of a known, active person.

A valid signature is not enough: the token's subject must be, at the moment of the
request, a person the district knows in the token's role (the directory lists them, or,
for a role the directory does not list, they hold an account in it), and their account,
if they have one, must not be retired. A person who leaves their post or whose account
is closed is refused at their next request, however long their token would have lived.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, Request

from eventkit.db import district_transaction
from eventkit.http import principal_from_authorization
from eventkit.identity import Principal
from eventkit.settings import Settings


def known_staff(settings: Settings) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the caller's :class:`Principal` from ``Authorization: Bearer``,
    refused (401) when the person is not active staff of that role in that district."""

    async def principal(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        caller = principal_from_authorization(settings, authorization)
        assert caller is not None  # required: a missing header raised
        routing = request.app.state.routing
        async with district_transaction(routing.pool, caller.district_id) as conn:
            await routing.accounts.ensure_active(conn, caller)
        return caller

    return principal
