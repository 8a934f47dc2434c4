"""Commands reporting adds to ``minqing``:

- ``minqing reporting rebuild [--projection NAME] [--at TIMESTAMP] [--dry-run]``:
  recompute the projections from the event store into their shadow slots, compare them
  with the live ones and swap (``--at``: as they stood then, into ``reporting_asof``);
- ``minqing report monthly --district D --month YYYY-MM [--out DIR] [--lang zh|en]``:
  write the month's report as HTML, PDF and CSV;
- ``minqing report registers --district D --station S [--from D] [--to D] [--out DIR]``:
  write the station's registers (六簿一表) as printable HTML and CSV.

Both run as the runtime role, like the service: a rebuild needs no owner and no DDL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click

from eventkit.local import NoDatabase
from eventkit.loop import run as run_loop
from eventkit.refusals import Refusal
from services.reporting.bootstrap import Reporting, bootstrap
from services.reporting.rebuild_result import RebuildResult, projections_named
from services.reporting.register_files import RegisterFiles
from services.reporting.settings import ReportingSettings

T = TypeVar("T")


def _with_reporting(work: Callable[[Reporting], Awaitable[T]]) -> T:
    """Run ``work`` on the reporting service, without its consumer."""

    async def main() -> T:
        async with bootstrap(ReportingSettings(), background=False) as reporting:
            return await work(reporting)

    try:
        return run_loop(main())
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from exc
    except Refusal as exc:
        raise click.ClickException(
            f"{exc.title}：{exc.detail or ''} / {exc.detail_en or ''}"
        ) from exc


@click.group()
def reporting() -> None:
    """统计报表 / Reporting: rebuild the projections."""


@reporting.command("rebuild")
@click.option(
    "--projection",
    default=None,
    help="只重建一个投影 / one projection only (directory, cases, ratings, scans)",
)
@click.option(
    "--at",
    "at_text",
    default=None,
    help="重建某一时刻的状态（审计用）/ as at a past moment, e.g. 2026-03-31T24:00+08:00",
)
@click.option("--dry-run", is_flag=True, help="只比较不切换 / compare, do not swap")
def reporting_rebuild(projection: str | None, at_text: str | None, dry_run: bool) -> None:
    """重建统计投影 / Rebuild the projections from the event store, live."""
    at = _moment(at_text) if at_text else None

    async def work(service: Reporting) -> RebuildResult:
        return await service.rebuild.run(projections_named(projection), at=at, dry_run=dry_run)

    result = _with_reporting(work)
    rate = result.events / result.seconds if result.seconds else 0.0
    click.echo(
        f"已重建 / rebuilt {', '.join(result.projections)} into {result.schema}: "
        f"{result.events} events folded ({result.read} read) in {result.seconds:.1f} s "
        f"({rate:,.0f} events/s)"
    )
    if result.as_of is not None:
        click.echo(f"  as at {result.as_of.isoformat()}")
    if result.phases:
        click.echo(
            "  用时 / phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.phases.items())
        )
    for c in result.comparisons:
        mark = "=" if c.equal else "≠"
        click.echo(f"  {mark} {c.table:<16} live {c.live_rows:>9}  rebuilt {c.shadow_rows:>9}")
        for difference in c.differences:
            click.echo(f"      {difference}")
    if result.comparisons and result.equal:
        click.echo("  与在线投影一致 / identical to the live projections")
    click.echo("  已切换 / swapped" if result.swapped else "  未切换 / not swapped (dry run)")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("T24:00", "T23:59:59.999999"))
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO time: {text}") from exc
    if moment.tzinfo is None:
        raise click.BadParameter("--at needs a time zone, e.g. 2026-03-31T23:59:59+08:00")
    return moment


@click.group()
def report() -> None:
    """报告 / Reports."""


@report.command("monthly")
@click.option("--district", required=True, help="区代码 / district code")
@click.option("--month", "month_text", required=True, help="YYYY-MM")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="输出目录 / folder (default MINQING_REPORTING_REPORT_DIR)",
)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh")
def report_monthly(district: str, month_text: str, out: Path | None, lang: str) -> None:
    """月度民情分析报告 / Write a month's report as HTML, PDF and CSV."""

    async def work(service: Reporting) -> list[Path]:
        folder = out or service.settings.reporting_report_dir
        return await service.reports.write(
            district, month_text, folder, "en" if lang == "en" else "zh"
        )

    for path in _with_reporting(work):
        click.echo(str(path))


@report.command("registers")
@click.option("--district", required=True, help="区代码 / district code")
@click.option("--station", required=True, help="联络站代码 / station code")
@click.option("--from", "first", default=None, help="第一天 / first day, YYYY-MM-DD")
@click.option("--to", "last", default=None, help="最后一天 / last day, YYYY-MM-DD")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="输出目录 / folder (default MINQING_REPORTING_REPORT_DIR)",
)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh")
def report_registers(
    district: str, station: str, first: str | None, last: str | None, out: Path | None, lang: str
) -> None:
    """六簿一表 / Write a station's registers for a period as printable HTML and CSV."""

    async def work(service: Reporting) -> list[Path]:
        folder = out or service.settings.reporting_report_dir
        files = RegisterFiles(service.pool, service.clock)
        return await files.write(
            district, station, first, last, folder, "en" if lang == "en" else "zh"
        )

    for path in _with_reporting(work):
        click.echo(str(path))


COMMANDS = [reporting, report]
