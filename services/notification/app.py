"""The notification service's HTTP app: the admin and subscription APIs on the running
service that :func:`services.notification.bootstrap.bootstrap` builds in the app's
lifespan (never at import)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import asyncpg
from fastapi import FastAPI

from contracts.public import PUBLIC_EVENTS
from eventkit.asyncapi import ExtraTopic, asyncapi_document
from eventkit.clock import Clock, utc_now
from eventkit.http import create_app as create_service_app
from eventkit.settings import Settings
from services.notification.admin_routes import MAX_CONTACT_FILE_BYTES, admin_router
from services.notification.bootstrap import bootstrap
from services.notification.channels import Channel
from services.notification.settings import NotificationSettings
from services.notification.subscription_routes import subscription_router

PUBLIC_TOPIC = ExtraTopic(
    topic="minqing.public.{district}.cases.v1",
    description=(
        "每区公开的案件事件，无个人信息、无自由文本 / A district's case events for outside "
        "systems: facts of the handling only, no free text, nothing of the resident. "
        "CloudEvents 1.0 binary mode, ce_id = the original event's id, key = the case's "
        "stream id. Fields: contracts/public.py."
    ),
    schemas=tuple(PUBLIC_EVENTS.values()),
)


def create_app(
    settings: Settings | None = None,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Clock = utc_now,
    channels: Mapping[str, Channel] | None = None,
    background: bool = True,
) -> FastAPI:
    """The notification app (the keywords go to :func:`bootstrap`)."""
    own = (
        settings
        if isinstance(settings, NotificationSettings)
        else NotificationSettings(**(settings.model_dump() if settings else {}))
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(
            own, pool=pool, clock=clock, channels=channels, background=background
        ) as notification:
            app.state.notification = notification
            app.state.asyncapi = asyncapi_document(
                "notification", own, [notification.consumer], extra=(PUBLIC_TOPIC,)
            )
            app.state.readiness.update(notification.ready_checks())
            yield

    app = create_service_app(
        service="notification",
        title="民情 · 通知服务 Minqing notification",
        lifespan=lifespan,
        max_body_bytes=MAX_CONTACT_FILE_BYTES,
        settings=own,
    )
    app.include_router(admin_router(own))
    app.include_router(subscription_router(own))
    return app
