"""What the system is made of: the packages whose migrations run, the services to start."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceSpec:
    """A service process of the local stack."""

    name: str
    module: str
    """The module that ``python -m`` runs."""
    port: int | None
    """The default HTTP port; ``MINQING_<NAME>_PORT`` overrides it (the service reads the
    same variable through its settings)."""

    @property
    def port_variable(self) -> str:
        """The environment variable that moves the service to another port."""
        return f"MINQING_{self.name.upper()}_PORT"

    def effective_port(self) -> int | None:
        """The port the service will listen on, given the environment."""
        value = os.environ.get(self.port_variable)
        return int(value) if value and value.isdigit() else self.port


DISTRICTS = Path(__file__).resolve().parents[1] / "deploy" / "districts"
DEMO_DISTRICT_FILE = DISTRICTS / "demo.yaml"
"""The demo district 示范区, which the local stack asks routing to import."""
DEMO_CONTACTS_FILE = DISTRICTS / "demo-contacts.yaml"
"""The demo district's contact book, which the local stack asks notification to import."""

SINK_SMTP_PORT = 1025
SINK_HTTP_PORT = 8025


def sink_ports(environ: dict[str, str]) -> tuple[int, int]:
    """The local sink's SMTP and HTTP ports (``MINQING_SINK_SMTP_PORT``/``_HTTP_PORT``)."""
    smtp = environ.get("MINQING_SINK_SMTP_PORT", "")
    http = environ.get("MINQING_SINK_HTTP_PORT", "")
    return (
        int(smtp) if smtp.isdigit() else SINK_SMTP_PORT,
        int(http) if http.isdigit() else SINK_HTTP_PORT,
    )


def local_stack_environment(environ: dict[str, str]) -> dict[str, str]:
    """What the local stack adds to its services' environment: the demo district (with its
    first classifier trained from its labelled opinions) and its contact book (unless the
    caller named files of their own), and the local sink as the mail server and SMS
    gateway."""
    # Its children are given the stack's own database (MINQING_DATABASE_URL): they say
    # they are the local stack, so the development secrets stay allowed on loopback.
    extra: dict[str, str] = {"MINQING_LOCAL_STACK": "1"}
    if "MINQING_ROUTING_DISTRICT_FILES" not in environ and DEMO_DISTRICT_FILE.is_file():
        extra["MINQING_ROUTING_DISTRICT_FILES"] = json.dumps([str(DEMO_DISTRICT_FILE)])
        extra.setdefault("MINQING_ROUTING_TRAIN_DISTRICTS", json.dumps(["demo"]))
    if "MINQING_NOTIFICATION_CONTACT_FILES" not in environ and DEMO_CONTACTS_FILE.is_file():
        extra["MINQING_NOTIFICATION_CONTACT_FILES"] = json.dumps([str(DEMO_CONTACTS_FILE)])
    smtp, http = sink_ports(environ)
    extra.setdefault("MINQING_SINK_SMTP_PORT", str(smtp))
    extra.setdefault("MINQING_SINK_HTTP_PORT", str(http))
    if "MINQING_SMTP_HOST" not in environ:
        extra["MINQING_SMTP_HOST"] = "127.0.0.1"
        extra["MINQING_SMTP_PORT"] = str(smtp)
    if "MINQING_SMS_GATEWAY_URL" not in environ:
        extra["MINQING_SMS_GATEWAY_URL"] = f"http://127.0.0.1:{http}/sms"
    return extra


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("intake", "services.intake", 8001),
    ServiceSpec("routing", "services.routing", 8002),
    ServiceSpec("notification", "services.notification", 8003),
    ServiceSpec("reporting", "services.reporting", 8004),
)


def existing_services() -> list[ServiceSpec]:
    """The services whose code is present (each arrives with its own issue)."""
    return [s for s in SERVICES if _exists(s.module + ".__main__")]


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is absent
        return False


def migration_packages() -> list[str]:
    """The shared library first, then every present service with migrations of its own."""
    return ["eventkit", *(s.module for s in existing_services())]
