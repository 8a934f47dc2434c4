"""Commands the routing service adds to ``minqing``:

- ``minqing directory import FILE.yaml``: emit the directory events a district file
  implies (only the differences, so it is safe to repeat);
- ``minqing directory check FILE.yaml``: validate a file and show what importing it
  would emit, without writing;
- ``minqing routing scan``: record the missed deadlines now (what the service's scanner
  does every ``MINQING_ROUTING_SCAN_INTERVAL`` seconds);
- ``minqing routing rebuild``: recompute the routing read models from the event store.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click

from contracts.base import Actor, ActorRole
from eventkit.local import NoDatabase
from services.routing.bootstrap import Routing, bootstrap
from services.routing.district_file import DistrictFile, DistrictFileError, load_district_file
from services.routing.rebuild import rebuild
from services.routing.settings import RoutingSettings

T = TypeVar("T")

CLI_ACTOR = Actor(id="minqing-cli", role=ActorRole.DISTRICT_ADMIN)


def _with_routing(work: Callable[[Routing], Awaitable[T]]) -> T:
    """Run ``work`` on the routing service, without its background work."""

    async def main() -> T:
        async with bootstrap(RoutingSettings(), background=False) as routing:
            return await work(routing)

    try:
        return asyncio.run(main())
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from exc


def load_district_file_or_exit(path: Path) -> DistrictFile:
    """The district file, or a readable list of what is wrong with it."""
    try:
        return load_district_file(path)
    except DistrictFileError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException(
            f"区目录文件无效 / invalid district file: {len(exc.problems)} problem(s)"
        ) from exc


@click.group()
def directory() -> None:
    """区目录 / The directory: districts, streets, stations, representatives."""


@directory.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--retire-missing",
    is_flag=True,
    help="撤销文件中没有的联络站和代表 / retire stations and representatives not in the file",
)
def directory_import(file: Path, retire_missing: bool) -> None:
    """导入区目录文件 / Import a district file (YAML); repeating it changes nothing."""
    district = load_district_file_or_exit(file)

    async def work(routing: Routing) -> dict[str, int]:
        plan = await routing.directory.change(
            district.district.code, district, CLI_ACTOR, retire_missing=retire_missing
        )
        return plan.summary

    try:
        summary = _with_routing(work)
    except DistrictFileError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException("区目录文件无效 / invalid district file") from exc
    if not summary:
        click.echo(f"{district.district.code}: 目录已是最新 / the directory is up to date")
        return
    click.echo(f"{district.district.code}: 已导入 / imported")
    for event_type, count in sorted(summary.items()):
        click.echo(f"  {event_type:<30} {count}")


@directory.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def directory_check(file: Path) -> None:
    """检查区目录文件 / Validate a district file and show what importing it would emit."""
    district = load_district_file_or_exit(file)
    code = district.district.code

    async def work(routing: Routing) -> dict[str, int]:
        return (await routing.directory.preview(code, district, CLI_ACTOR)).summary

    try:
        summary = _with_routing(work)
    except DistrictFileError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException("区目录文件无效 / invalid district file") from exc
    click.echo(f"{code}: 文件有效 / the file is valid")
    if not summary:
        click.echo("  导入不会产生变化 / importing it would change nothing")
    for event_type, count in sorted(summary.items()):
        click.echo(f"  would emit {event_type:<30} {count}")


@click.group()
def routing() -> None:
    """分办 / Routing: overdue scan, read-model rebuild."""


@routing.command("scan")
@click.option("--now", "now_text", default=None, help="ISO time to scan at (default: now)")
def routing_scan(now_text: str | None) -> None:
    """督办扫描 / Record every deadline missed up to now."""
    moment = datetime.fromisoformat(now_text) if now_text else None
    if moment is not None and moment.tzinfo is None:
        raise click.BadParameter("--now needs a time zone, e.g. 2026-10-09T09:00:00+08:00")

    async def work(routing: Routing) -> int:
        return await routing.overdue.scan(moment)

    recorded = _with_routing(work)
    click.echo(f"超期记录 / overdue deadlines recorded: {recorded}")


@routing.command("rebuild")
def routing_rebuild() -> None:
    """重建读模型 / Recompute the routing tables from the event store."""

    async def work(routing: Routing) -> dict[str, int]:
        async with routing.pool.acquire() as conn:
            return await rebuild(conn, routing.store)

    counts = _with_routing(work)
    click.echo(
        f"已重建 / rebuilt: {counts['cases']} cases from {counts['case']} case events, "
        f"{counts['directory']} directory events, {counts['feedback']} ratings"
    )
    sys.stdout.flush()


COMMANDS = [directory, routing]
