"""Intake's commands in ``minqing``: ``intake import-12345`` and ``intake scans``
(``privacy forget`` moved to ``minqing privacy``, which erases every service's copies)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click

from eventkit.local import NoDatabase
from eventkit.loop import run as run_loop
from eventkit.settings import Settings
from services.intake.bootstrap import Intake, bootstrap
from services.intake.hotline import ImportFileError, ImportReport, import_work_orders, read_rows
from services.intake.proof_of_work import MAX_BITS
from services.intake.settings import IntakeSettings
from services.intake.station_guard import GuardState

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[Intake], Awaitable[T]]) -> T:
    """``work`` done on intake (without Kafka), on the database of ``settings`` (and
    intake's own ``MINQING_*`` variables); no database to be found is a CLI message."""

    async def main() -> T:
        own = IntakeSettings(**settings.model_dump())
        async with bootstrap(own, background=False) as intake:
            return await work(intake)

    try:
        return run_loop(main())
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from exc


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
            hash_key=intake.settings.intake_hash_secrets,
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


@intake.command("scans")
@click.pass_obj
def scans(settings: Settings) -> None:
    """记录民情码扫码量 / Record the QR page views' totals as events now (the service does
    it every MINQING_INTAKE_SCAN_RECORD_INTERVAL seconds)."""

    async def work(intake: Intake) -> int:
        return await intake.scans.record()

    click.echo(f"已记录 / recorded: {_run(settings, work)} station-day(s)")


@intake.group("guard")
def guard() -> None:
    """站点防刷 / A station's guard: the QR form's proof-of-work."""


def _guarded(
    settings: Settings, district: str, station: str, work: Callable[[Intake], Awaitable[T]]
) -> T:
    async def checked(intake: Intake) -> T:
        if await intake.directory.station(district, station) is None:
            raise click.ClickException(
                f"区 {district!r} 没有联络站 {station!r} / no station {station!r} in "
                f"district {district!r}"
            )
        return await work(intake)

    return _run(settings, checked)


def _describe(state: GuardState | None, now: datetime) -> str:
    if state is None or not state.active(now):
        return "未开启 / off"
    until = f"至 / until {state.until.isoformat()}" if state.until else "直至关闭 / until off"
    return (
        f"已开启 / on: 难度 / difficulty {state.difficulty}, {until}, "
        f"{state.mode} ({state.set_by}, {state.set_at.isoformat()})"
    )


_DISTRICT = click.option("--district", required=True, help="区编号 / district code")
_STATION = click.option("--station", required=True, help="站点编号 / station code")


@guard.command("on")
@_DISTRICT
@_STATION
@click.option(
    "--difficulty",
    type=click.IntRange(1, MAX_BITS),
    default=16,
    show_default=True,
    help="前导零位数，每加 1 位耗时加倍 / leading zero bits; each one more doubles the work",
)
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--by", "by", default="cli", show_default=True, help="经办人 / who")
@click.pass_obj
def guard_on(
    settings: Settings, district: str, station: str, difficulty: int, hours: float | None, by: str
) -> None:
    """开启 / Ask every submission through the station's QR form for a proof-of-work."""

    async def work(intake: Intake) -> str:
        state = await intake.guard.switch_on(district, station, difficulty, hours, by)
        return _describe(state, intake.clock())

    click.echo(_guarded(settings, district, station, work))


@guard.command("off")
@_DISTRICT
@_STATION
@click.option("--by", "by", default="cli", show_default=True, help="经办人 / who")
@click.pass_obj
def guard_off(settings: Settings, district: str, station: str, by: str) -> None:
    """关闭 / Switch the station's guard off (it switches on again if its limit trips)."""

    async def work(intake: Intake) -> bool:
        return await intake.guard.switch_off(district, station, by)

    was_on = _guarded(settings, district, station, work)
    click.echo("已关闭 / switched off" if was_on else "本来未开启 / was not on")


@guard.command("show")
@_DISTRICT
@_STATION
@click.pass_obj
def guard_show(settings: Settings, district: str, station: str) -> None:
    """查看 / Whether the station's QR form asks for a proof-of-work."""

    async def work(intake: Intake) -> str:
        return _describe(await intake.guard.state(district, station), intake.clock())

    click.echo(_guarded(settings, district, station, work))


COMMANDS = [intake]
