"""``python -m services.routing``: the routing service on port 8002."""

from __future__ import annotations

from eventkit.service import serve
from services.routing.app import create_app
from services.routing.settings import RoutingSettings


def main() -> None:
    """Run the routing service until SIGINT or SIGTERM."""
    settings = RoutingSettings()
    serve(create_app(settings), settings, port=settings.routing_port, host=settings.http_host)


if __name__ == "__main__":
    main()
