"""``python -m services.intake``: the intake service on its port (8001 by default)."""

from __future__ import annotations

from eventkit.service import serve
from services.intake.app import create_app
from services.intake.settings import IntakeSettings


def main() -> None:
    """Serve intake until SIGINT or SIGTERM."""
    settings = IntakeSettings()
    serve(create_app(settings), settings, port=settings.intake_port)


if __name__ == "__main__":
    main()
