"""Every service's app as production builds it, with every secret set to a value of its
own (so a test can look for it anywhere), on the test's database, without Kafka; and the
data an attacker's requests need to reach past the front door (the demo district, a
district admin known to routing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import asyncpg
from fastapi import FastAPI

from eventkit.auth import issue_token
from eventkit.identity import Role
from eventkit.settings import Settings
from eventkit.store import EventStore
from services.intake.app import create_app as intake_app
from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.intake.settings import IntakeSettings
from services.notification.app import create_app as notification_app
from services.notification.settings import NotificationSettings
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from services.routing.app import create_app as routing_app
from services.routing.bootstrap import bootstrap as routing_bootstrap
from services.routing.district_file import load_district_file
from services.routing.settings import RoutingSettings
from tests.intake.intake_support import API_KEY
from tests.routing.routing_support import ADMIN, DEMO_FILE

SECRETS: Final[dict[str, Any]] = {
    "jwt_secret": "jwt-7d1f0c2a9e5b48c3a6f2d9e01b7c4a58",
    "jwt_previous_secrets": {"k0": "jwt-old-3b9e6c1d0a7f4e2b8c5d1a9f6e3b0c7d"},
    "privacy_key": "vault-5e8a2c7f1b4d9e0a3c6f8b1d4e7a0c2f",
    "privacy_previous_keys": {"k0": "vault-old-9c2e5a8d1f4b7e0c3a6d9f2b5e8c1a4d"},
    "privacy_lookup_key": "index-3f6a9c2e5b8d1f4a7c0e3b6d9f2a5c8e",
    "privacy_lookup_previous_keys": {"k0": "index-old-7b0d3f6a9c2e5b8d1f4a7c0e3b6d9f2a"},
    "intake_hash_key": "hash-1a4d7f0c3e6b9a2d5f8c1e4b7a0d3f6c",
    "intake_hash_previous_keys": {"k0": "hash-old-6d9a2c5f8b1e4a7d0c3f6b9e2a5d8c1f"},
    "routing_form_secret": "form-8f1c4e7a0d3b6f9c2e5a8d1b4f7c0e3a",
    "routing_form_previous_secrets": {"k0": "form-old-0e3b6d9f2c5a8e1b4d7f0a3c6e9b2d5a"},
    "sms_gateway_key": "sms-2b5e8c1f4a7d0b3e6c9f2a5d8b1e4c7f",
    "sms_gateway_previous_keys": {"k0": "sms-old-4c7f0b3e6a9d2c5f8b1e4a7d0c3f6b9e"},
    "open311_api_keys": {"demo": [API_KEY]},
}
"""Every secret a service reads, each a value found nowhere else."""


def secret_values() -> list[str]:
    """The values of :data:`SECRETS` (the Open311 key is a public client's, not ours)."""
    found: list[str] = []
    for name, value in SECRETS.items():
        if name == "open311_api_keys":
            continue
        found.extend(value.values() if isinstance(value, dict) else [str(value)])
    return found


def _own(settings: Settings) -> dict[str, Any]:
    return {**settings.model_dump(), **SECRETS}


def intake_settings(settings: Settings) -> IntakeSettings:
    return IntakeSettings(
        **_own(settings),
        rate_submit_per_minute=100_000,
        rate_submit_burst=100_000,
        rate_read_per_minute=100_000,
        rate_read_burst=100_000,
    )


def routing_settings(settings: Settings) -> RoutingSettings:
    return RoutingSettings(
        **_own(settings),
        routing_consume=False,
        routing_scan_interval=0,
        routing_reception_plan_interval=0,
        routing_district_files=[],
        routing_argon2_time_cost=1,
        routing_argon2_memory_kib=8,
    )


def notification_settings(settings: Settings) -> NotificationSettings:
    return NotificationSettings(
        **_own(settings), notification_consume=False, notification_send=False
    )


def reporting_settings(settings: Settings) -> ReportingSettings:
    return ReportingSettings(**_own(settings), reporting_consume=False)


SERVICES: Final[dict[str, tuple[Callable[[Settings], Settings], Callable[[Settings], FastAPI]]]] = {
    "intake": (intake_settings, lambda s: intake_app(s, background=False)),  # type: ignore[arg-type]
    "routing": (routing_settings, lambda s: routing_app(s, background=False)),
    "notification": (notification_settings, lambda s: notification_app(s, background=False)),
    "reporting": (reporting_settings, lambda s: reporting_app(s, background=False)),
}
"""Each service: its settings from the test's, and its app (no Kafka, nothing in the
background)."""


def build(name: str, settings: Settings) -> tuple[Settings, FastAPI]:
    """The service ``name``'s settings and app."""
    own, create = SERVICES[name]
    service_settings = own(settings)
    return service_settings, create(service_settings)


def admin_headers(settings: Settings) -> dict[str, str]:
    """A district admin of the demo district (known to routing after :func:`prepare`)."""
    token = issue_token(
        settings, role=Role.DISTRICT_ADMIN, district_id="demo", subject="admin_demo"
    )
    return {"Authorization": f"Bearer {token}"}


async def prepare(settings: Settings, pool: asyncpg.Pool) -> None:
    """The demo district as routing imports it (with its district admin's account) and
    intake learns it from routing's events."""
    async with routing_bootstrap(routing_settings(settings), background=False) as routing:
        await routing.directory.change("demo", load_district_file(DEMO_FILE), ADMIN)
        await routing.accounts.invite("demo", "admin_demo", Role.DISTRICT_ADMIN, ADMIN)
    store = EventStore(pool)
    async with intake_bootstrap(intake_settings(settings), pool=pool, background=False) as intake:
        for recorded in await store.read_all(limit=10_000):
            await intake.consumer.apply(recorded.envelope())
