"""``python -m services.reporting``: the reporting service on port 8004."""

from __future__ import annotations

from eventkit.service import serve
from services.reporting.app import create_app
from services.reporting.settings import ReportingSettings


def main() -> None:
    """Run the reporting service until SIGINT or SIGTERM."""
    settings = ReportingSettings()
    serve(create_app(settings), settings, port=settings.reporting_port, host=settings.http_host)


if __name__ == "__main__":
    main()
