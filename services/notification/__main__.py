"""``python -m services.notification``: the notification service on port 8003."""

from __future__ import annotations

from eventkit.service import serve
from services.notification.app import create_app
from services.notification.settings import NotificationSettings


def main() -> None:
    """Run the notification service until SIGINT or SIGTERM."""
    settings = NotificationSettings()
    serve(create_app(settings), settings, port=settings.notification_port, host=settings.http_host)


if __name__ == "__main__":
    main()
