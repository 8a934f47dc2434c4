"""What intake's HTTP routes share: the service, the caller, the public rate limits."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Request

from contracts.envelope import Metadata
from eventkit.http import metadata_of, principal_from_authorization
from eventkit.identity import Principal
from services.intake.bootstrap import Intake
from services.intake.consumers import ROSTER
from services.intake.ratelimit import SharedRateLimiter, client_address, rate_limited

MAX_BODY_BYTES: Final = 64 * 1024
"""The largest request body intake reads (the issue's 64 KB)."""


def get_intake(request: Request) -> Intake:
    """The service of the app serving ``request``."""
    intake: Intake = request.app.state.intake
    return intake


IntakeDep = Annotated[Intake, Depends(get_intake)]


async def optional_principal(intake: Intake, request: Request) -> Principal | None:
    """The staff member calling, if a Bearer token is sent (401 when it is not valid, or
    when its person is not known, active staff of that role in that district)."""
    principal = principal_from_authorization(
        intake.settings, request.headers.get("authorization"), required=False
    )
    return None if principal is None else await ROSTER.check(intake.pool, principal)


async def staff_principal(intake: IntakeDep, request: Request) -> Principal:
    """Dependency: a staff member (any role), from the Bearer token (401 without one, or
    when its person is not known, active staff of that role in that district: the
    roster intake folds from the directory's events, :mod:`eventkit.staff_roster`)."""
    principal = principal_from_authorization(intake.settings, request.headers.get("authorization"))
    assert principal is not None  # required: a missing header raised
    return await ROSTER.check(intake.pool, principal)


StaffDep = Annotated[Principal, Depends(staff_principal)]


def event_metadata(request: Request) -> Metadata:
    """Dependency: correlation and trace context for the events of a route that keeps no
    ``Idempotency-Key``: what it records happens once by itself (one rating per
    resolution, one withdrawal), or, on the QR form, the key is a field of the form."""
    return metadata_of(request)


MetadataDep = Annotated[Metadata, Depends(event_metadata)]


def caller_address(intake: Intake, request: Request) -> str:
    """The client's address, seen through trusted proxies: every ``X-Forwarded-For``
    line counts (a proxy that adds a line of its own leaves the client's first)."""
    return client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        intake.settings.trusted_proxy_networks,
    )


async def rate_limit(limiter: SharedRateLimiter, intake: Intake, request: Request) -> None:
    """Take a token for the caller from the limit shared by every replica; 429 with
    Retry-After when there is none left."""
    wait = await limiter.take(caller_address(intake, request))
    if wait > 0:
        raise rate_limited(wait)


async def limit_reads(intake: IntakeDep, request: Request) -> None:
    """Dependency: the public read budget."""
    await rate_limit(intake.read_limiter, intake, request)


async def limit_submissions(intake: IntakeDep, request: Request) -> None:
    """Dependency: the public submission budget."""
    await rate_limit(intake.submit_limiter, intake, request)
