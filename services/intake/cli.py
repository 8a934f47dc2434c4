"""Intake's commands in ``minqing``: ``intake import-12345``, ``intake scans`` and
``privacy forget``."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from eventkit.local import NoDatabase
from eventkit.settings import Settings
from services.intake.bootstrap import Intake, bootstrap
from services.intake.hotline import ImportFileError, ImportReport, import_work_orders, read_rows
from services.intake.settings import IntakeSettings

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[Intake], Awaitable[T]]) -> T:
    """``work`` done on intake (without Kafka), on the database of ``settings`` (and
    intake's own ``MINQING_*`` variables); no database to be found is a CLI message."""

    async def main() -> T:
        own = IntakeSettings(**settings.model_dump())
        async with bootstrap(own, background=False) as intake:
            return await work(intake)

    try:
        return asyncio.run(main())
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from exc


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


@click.group("intake")
def intake() -> None:
    """受理 / Intake: opinions from every channel."""


@intake.command("import-12345")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--district", required=True, help="区编号 / district code, e.g. demo")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default=None,
    help="默认按扩展名 / by default from the file's extension",
)
@click.option("--operator", default="12345-import", show_default=True, help="记为提交者的工号")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="把每行结果写入 CSV / write every row's outcome to this CSV file",
)
@click.pass_obj
def import_12345(
    settings: Settings,
    file: Path,
    district: str,
    fmt: str | None,
    operator: str,
    report: Path | None,
) -> None:
    """导入 12345 派单 / Import 12345 hotline work orders (CSV or JSON).

    The work-order number is the idempotency key: importing the same file again creates
    nothing new. Every rejected row is listed with its reason; the others are imported.
    Exits 1 when some row was rejected.
    """
    try:
        rows = read_rows(file, fmt)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc

    async def work(intake: Intake) -> ImportReport:
        known = await intake.directory.district(district)
        if known is None:
            raise click.ClickException(
                f"区 {district!r} 未登记（intake 尚未从目录事件得知）/ district "
                f"{district!r} is not registered"
            )
        return await import_work_orders(
            intake.submissions,
            rows,
            district_id=district,
            operator=operator,
            tz=known.timezone,
            now=intake.clock(),
            hash_key=intake.settings.intake_hash_secret,
        )

    outcome = _run(settings, work)
    click.echo(
        f"共 {len(rows)} 行：新导入 {len(outcome.created)}，已导入过 {len(outcome.duplicates)}，"
        f"未导入 {len(outcome.rejected)} / {len(rows)} rows: {len(outcome.created)} imported, "
        f"{len(outcome.duplicates)} already imported, {len(outcome.rejected)} rejected"
    )
    for rejection in sorted(outcome.rejected, key=lambda r: r.row):
        click.echo(
            f"  第 {rejection.row} 行 工单 {rejection.number or '-'}：{rejection.reason} / "
            f"row {rejection.row}: {rejection.reason_en}"
        )
    for warning in sorted(outcome.warnings, key=lambda w: w.row):
        click.echo(
            f"  注意：第 {warning.row} 行 工单 {warning.number or '-'}：{warning.reason} / "
            f"warning, row {warning.row}: {warning.reason_en}"
        )
    if report is not None:
        outcome.write_csv(report)
        click.echo(f"结果已写入 / report written to {report}")
    if outcome.rejected:
        sys.exit(1)


@click.group("privacy")
def privacy() -> None:
    """个人信息 / Residents' personal data."""


@privacy.command("forget")
@click.argument("subject_id")
@click.option("--by", "requested_by", default=None, help="经办人 / who asked (default: you)")
@click.option("--reason", default=None, help="原因 / why, e.g. the resident's request number")
@click.pass_obj
def forget(
    settings: Settings, subject_id: str, requested_by: str | None, reason: str | None
) -> None:
    """删除居民密钥 / Forget a resident: delete their key (crypto-shredding).

    Their name and phone number become unreadable everywhere (store, Kafka, copies);
    the events stay, so the record and its hash chain remain intact.
    """

    async def work(intake: Intake) -> tuple[bool, bool]:
        deleted = await intake.vault.forget(
            subject_id, requested_by=requested_by or _operator(), reason=reason
        )
        return deleted, await intake.vault.forgotten(subject_id)

    deleted, forgotten = _run(settings, work)
    if deleted:
        click.echo(f"已删除 {subject_id} 的密钥 / {subject_id} forgotten: key deleted")
    elif forgotten:
        click.echo(f"{subject_id} 此前已删除 / {subject_id} was already forgotten")
    else:
        raise click.ClickException(f"没有这个居民编号 / no subject {subject_id!r}")


@intake.command("scans")
@click.pass_obj
def scans(settings: Settings) -> None:
    """记录民情码扫码量 / Record the QR page views' totals as events now (the service does
    it every MINQING_INTAKE_SCAN_RECORD_INTERVAL seconds)."""

    async def work(intake: Intake) -> int:
        return await intake.scans.record()

    click.echo(f"已记录 / recorded: {_run(settings, work)} station-day(s)")


COMMANDS = [intake, privacy]
