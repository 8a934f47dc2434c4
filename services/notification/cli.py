"""Commands the notification service adds to ``minqing``:

- ``minqing notification contacts import FILE --district D``: import a district's contact
  book (only what differs is written, so it is safe to repeat);
- ``minqing notification deliveries --district D [--status unknown] [--case ID]``: what
  was sent, failed, waits, or is unknown;
- ``minqing notification reconcile DELIVERY --district D --as sent|failed|resend``: settle
  a delivery whose sender stopped mid-send.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from eventkit.db import district_transaction
from eventkit.local import NoDatabase
from eventkit.loop import run as run_loop
from services.notification import contacts, outbox
from services.notification.bootstrap import Notification, bootstrap
from services.notification.contact_book import parse_contact_file
from services.notification.errors import InvalidContactFile
from services.notification.settings import NotificationSettings

T = TypeVar("T")

CLI_ACTOR = "minqing-cli"


def _with_service(work: Callable[[Notification], Awaitable[T]]) -> T:
    async def main() -> T:
        async with bootstrap(NotificationSettings(), background=False) as notification:
            return await work(notification)

    try:
        return run_loop(main())
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def notification() -> None:
    """通知 / Notifications: the contact book, deliveries."""


@notification.group("contacts")
def contacts_group() -> None:
    """联系人 / The contact book of staff."""


@contacts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--district", required=True, help="the district the file is for, e.g. demo")
def contacts_import(file: Path, district: str) -> None:
    """导入联系人文件 / Import a contact book (YAML); repeating it changes nothing."""
    try:
        book = parse_contact_file(file.read_text(encoding="utf-8"), source=str(file))
    except InvalidContactFile as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException("联系人文件无效 / invalid contact file") from exc
    if book.district != district:
        raise click.ClickException(
            f"文件属于 {book.district}，不是 {district} / the file is for {book.district}"
        )

    async def work(service: Notification) -> dict[str, int]:
        return await contacts.import_book(service.pool, book, CLI_ACTOR, service.clock())

    counts = _with_service(work)
    click.echo(
        f"{district}: {counts['contacts']} contacts in the file, {counts['added']} added, "
        f"{counts['changed']} written / 已导入"
    )


@notification.command("deliveries")
@click.option("--district", required=True)
@click.option("--status", type=click.Choice(["pending", "sent", "failed", "unknown", "cancelled"]))
@click.option("--case", "case_id", default=None)
@click.option("--limit", type=int, default=50, show_default=True)
def deliveries(district: str, status: str | None, case_id: str | None, limit: int) -> None:
    """投递记录 / List deliveries, newest first."""

    async def work(service: Notification) -> list[dict[str, object]]:
        async with district_transaction(service.pool, district) as conn:
            return await outbox.listing(conn, district, case_id, status, limit, 0)

    rows = _with_service(work)
    if not rows:
        click.echo("没有投递记录 / no deliveries")
    for r in rows:
        click.echo(
            f"{r['delivery_id']} {r['status']:<9} {r['channel']:<8} {r['rule']:<20} "
            f"{r['recipient_kind']}:{r['recipient']} case={r['case_id'] or '-'} "
            f"attempts={r['attempts']}" + (f"\n    {r['last_error']}" if r["last_error"] else "")
        )


@notification.command("reconcile")
@click.argument("delivery_id", type=click.UUID)
@click.option("--district", required=True)
@click.option(
    "--as", "outcome", required=True, type=click.Choice(["sent", "failed", "resend"]),
    help="sent / failed: what you established; resend: send again with the same id",
)  # fmt: skip
def reconcile(delivery_id: uuid.UUID, district: str, outcome: str) -> None:
    """核对结果未知的投递 / Settle a delivery whose sender stopped mid-send."""

    async def work(service: Notification) -> bool:
        return await service.sender.reconcile(district, delivery_id, outcome)

    if not _with_service(work):
        raise click.ClickException(
            "没有结果未知的此投递 / no delivery with an unknown outcome by that id"
        )
    click.echo(f"{delivery_id}: {outcome} / 已核对")


COMMANDS = [notification]
