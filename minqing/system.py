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


DEMO_DISTRICT_FILE = Path(__file__).resolve().parents[1] / "deploy" / "districts" / "demo.yaml"
"""The demo district 示范区, which the local stack asks routing to import."""


def local_stack_environment(environ: dict[str, str]) -> dict[str, str]:
    """What the local stack adds to its services' environment: the demo district, unless
    the caller named district files of their own."""
    extra: dict[str, str] = {}
    if "MINQING_ROUTING_DISTRICT_FILES" not in environ and DEMO_DISTRICT_FILE.is_file():
        extra["MINQING_ROUTING_DISTRICT_FILES"] = json.dumps([str(DEMO_DISTRICT_FILE)])
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
