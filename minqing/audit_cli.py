"""``minqing audit …`` and ``minqing replay``: the operators' audit commands.

Thin: each command turns its options into one call of ``eventkit.audit`` and the result
into text (or JSON), errors into click messages. They run as the role that owns the audit
category (``eventkit.audit.settings.AuditSettings``): they read everything, append only
seals and the records of opened personal data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import click

from eventkit.audit.findings import VerificationReport
from eventkit.audit.settings import AuditSettings
from eventkit.audit.timeline import DEFAULT_TIMEZONE, CaseTimeline
from eventkit.db import Conn
from eventkit.loop import run as run_loop

T = TypeVar("T")


class AwareTime(click.ParamType[datetime, "str | datetime"]):
    """An ISO 8601 date or time; without an offset, Beijing time (the districts' own)."""

    name = "time"

    def convert(
        self, value: str | datetime, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(
                f"{value!r} 不是 ISO 8601 时间 / is not an ISO 8601 time (2025-03-01 or "
                "2025-03-01T08:00+08:00)",
                param,
                ctx,
            )
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
        return parsed


TIME = AwareTime()


def _settings() -> AuditSettings:
    return AuditSettings()


@asynccontextmanager
async def _pool(settings: AuditSettings) -> AsyncIterator[asyncpg.Pool]:
    from eventkit.db import create_pool
    from minqing.cli import database_url

    pool = await create_pool(database_url(settings), role=settings.database_role, max_size=3)
    try:
        yield pool
    finally:
        await pool.close()


def _run(work: Callable[[], Awaitable[T]]) -> T:
    return run_loop(_main(work))


async def _main(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


@click.group()
def audit() -> None:
    """审计 / Audit the record: verify, seal, a case's timeline, export."""


@audit.command("verify")
@click.option("--district", help="only this district (default: all)")
@click.option("--since", type=TIME, help="only events recorded since (ISO 8601)")
@click.option(
    "--archive",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="check an exported archive instead of the database (no database needed)",
)
@click.option(
    "--expect-digest",
    "expected",
    multiple=True,
    help="a seal digest kept outside the system: it must be in the record",
)
@click.option("--json", "as_json", is_flag=True, help="the report as JSON")
def audit_verify(
    district: str | None,
    since: datetime | None,
    archive: Path | None,
    expected: tuple[str, ...],
    as_json: bool,
) -> None:
    """核验 / Recompute every hash chain and seal; name the first broken link per stream."""
    if archive is not None:
        from eventkit.audit.archive import verify_archive

        report = verify_archive(archive, expected_digests=expected)
    else:
        from eventkit.audit.verification import verify_store

        settings = _settings()

        async def work() -> VerificationReport:
            async with _pool(settings) as pool, pool.acquire() as conn:
                return await verify_store(
                    conn, district_id=district, since=since, expected_digests=expected
                )

        report = _run(work)
    _print_report(report, as_json=as_json)
    if not report.intact:
        sys.exit(1)


def _print_report(report: VerificationReport, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    scope = (
        f"{report.events} events verified in {report.streams} streams, "
        f"{report.seals} seals of {len(report.districts)} district(s)"
    )
    for district, count in sorted(report.unsealed.items()):
        click.echo(
            f"未封存 / not sealed yet: district {district}: {count} events after its last seal "
            "(only their chains protect them)"
        )
    if report.intact:
        click.echo(f"记录完整 / all chains and seals intact: {scope}")
        return
    click.echo(f"核验 / checked: {scope}")
    click.echo(
        f"记录被改动 / BROKEN: {len(report.findings)} problem(s); first broken link per stream:",
        err=True,
    )
    for finding in report.findings:
        click.echo(f"  {finding.describe()}", err=True)


@audit.command("seal")
@click.option("--district", help="only this district (default: every district)")
def audit_seal(district: str | None) -> None:
    """封存 / Seal every settled event no seal covers yet; print the latest digests."""
    from eventkit.audit.sealing import Sealer, districts, last_seal
    from eventkit.store import EventStore

    settings = _settings()

    async def work() -> list[str]:
        async with _pool(settings) as pool:
            sealer = Sealer(EventStore(pool), max_events=settings.audit_seal_max_events)
            made = await (sealer.seal(district) if district else sealer.seal_all())
            lines = [
                f"封存 / sealed: district {s.district_id} seal {s.seal_seq}: {s.events} events, "
                f"digest {s.digest}"
                for s in made
            ]
            if not made:
                lines.append("无新事件可封存 / nothing new to seal")
            async with pool.acquire() as conn:
                for name in [district] if district else await districts(conn):
                    latest = await last_seal(conn, name)
                    if latest is not None:
                        lines.append(
                            f"最新摘要 / latest digest: district {name} seal {latest.seal_seq} "
                            f"({latest.total_events} events) {latest.digest}"
                        )
            return lines

    for line in _run(work):
        click.echo(line)


@audit.command("case")
@click.argument("case_or_code")
@click.option("--json", "as_json", is_flag=True, help="the timeline as JSON")
@click.option(
    "--reveal-personal-data",
    "reveal",
    is_flag=True,
    help="open residents' names and phones (recorded as PersonalDataOpened)",
)
@click.option("--operator", help="who opens them (required with --reveal-personal-data)")
@click.option("--reason", help="why (required with --reveal-personal-data)")
def audit_case(
    case_or_code: str, as_json: bool, reveal: bool, operator: str | None, reason: str | None
) -> None:
    """案件审计 / A case's whole timeline (case id or the resident's tracking code)."""
    if reveal and not (operator and reason):
        raise click.UsageError(
            "打开个人信息须注明 --operator 与 --reason / --reveal-personal-data needs "
            "--operator and --reason"
        )
    from eventkit.audit.timeline import (
        case_timeline,
        open_personal_data,
        timeline_json,
        timeline_lines,
    )
    from eventkit.clock import utc_now
    from eventkit.store import EventStore
    from services.intake.text import mask_personal_numbers

    settings = _settings()

    async def work() -> list[str]:
        async with _pool(settings) as pool:
            async with pool.acquire() as conn:
                timeline = await case_timeline(conn, _case_id(case_or_code))
                if timeline is None:
                    timeline = await _timeline_by_tracking_code(conn, case_or_code)
            if timeline is None:
                raise click.ClickException(
                    f"找不到案件 / no case or tracking code {case_or_code!r}"
                )
            revealed = None
            if reveal:
                assert operator is not None
                assert reason is not None
                revealed = await open_personal_data(
                    EventStore(pool), timeline, operator=operator, reason=reason, clock=utc_now
                )
            if as_json:
                document = timeline_json(timeline, mask=mask_personal_numbers, revealed=revealed)
                return [json.dumps(document, ensure_ascii=False, indent=2, default=str)]
            return list(timeline_lines(timeline, mask=mask_personal_numbers, revealed=revealed))

    for line in _run(work):
        click.echo(line)


def _case_id(value: str) -> str:
    return value.removeprefix("case-").strip()


async def _timeline_by_tracking_code(conn: Conn, code: str) -> CaseTimeline | None:
    """The timeline of the case opened from the opinion of a resident's tracking code."""
    from eventkit.audit.scoping import audit_scope
    from eventkit.audit.timeline import case_ids_of_opinion, case_timeline
    from services.intake.errors import TrackingNotFound
    from services.intake.opinions import opinion_by_code

    try:
        # The operator does not say which district the code is of: it is looked up in
        # every district (a tracking code is unique across them).
        async with audit_scope(conn, None):
            opinion = await opinion_by_code(conn, code)
    except TrackingNotFound:
        return None
    cases = await case_ids_of_opinion(conn, opinion.opinion_id)
    return await case_timeline(conn, cases[0]) if cases else None


@audit.command("export")
@click.option("--district", required=True, help="district code, e.g. demo")
@click.option("--since", type=TIME, required=True, help="start of the period (ISO 8601)")
@click.option("--until", type=TIME, required=True, help="end of the period, excluded")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def audit_export(district: str, since: datetime, until: datetime, out: Path) -> None:
    """导出归档 / Seal, then write a district's record for a period to a checkable archive."""
    from eventkit.audit.archive import ArchiveSummary, export_archive
    from eventkit.audit.sealing import Sealer
    from eventkit.clock import utc_now
    from eventkit.store import EventStore

    if until <= since:
        raise click.UsageError("--until 须晚于 --since / --until must come after --since")
    settings = _settings()

    async def work() -> ArchiveSummary:
        async with _pool(settings) as pool:
            # Seal first, so that the period's last events are covered by a seal too.
            await Sealer(EventStore(pool), max_events=settings.audit_seal_max_events).seal(district)
            async with pool.acquire() as conn:
                return await export_archive(
                    conn,
                    district_id=district,
                    since=since,
                    until=until,
                    out=out,
                    exported_at=utc_now(),
                )

    summary = _run(work)
    click.echo(
        f"已导出 / exported {out}: {summary.events} events, {summary.seals} seals "
        f"({summary.first_seal}–{summary.last_seal}) of district {district}"
    )
    click.echo(f"最后封存摘要 / last seal digest: {summary.last_digest}")
    click.echo(f"清单 SHA-256 / manifest SHA-256: {summary.manifest_sha256}")


@click.command("replay")
@click.option("--district", required=True, help="district code, e.g. demo")
@click.option("--since", type=TIME, help="events recorded since (ISO 8601)")
@click.option("--until", type=TIME, help="events recorded before (ISO 8601)")
@click.option("--type", "event_types", multiple=True, help="only this event type (repeatable)")
@click.option("--to-topic", required=True, help="the topic to publish to, exactly as named")
@click.option("--dry-run", is_flag=True, help="count what would be sent; send nothing")
def replay(
    district: str,
    since: datetime | None,
    until: datetime | None,
    event_types: tuple[str, ...],
    to_topic: str,
    dry_run: bool,
) -> None:
    """重放 / Re-publish a district's history to a topic, in order, marked ce_replay."""
    from eventkit.audit.replay import ReplayRefused, ReplayRequest, ReplaySummary
    from eventkit.audit.replay import replay as run_replay
    from eventkit.store import EventStore

    settings = _settings()
    request = ReplayRequest(
        district_id=district, to_topic=to_topic, since=since, until=until, event_types=event_types
    )

    async def work() -> ReplaySummary:
        async with _pool(settings) as pool:
            return await run_replay(EventStore(pool), settings, request, dry_run=dry_run)

    try:
        summary = _run(work)
    except ReplayRefused as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "将重放 / would replay" if dry_run else "已重放 / replayed"
    click.echo(
        f"{verb} {summary.events} events of district {district} to {to_topic} "
        f"(replay {summary.replay_id}, positions {summary.first_position}–{summary.last_position})"
    )
    for event_type, count in sorted(summary.by_type.items()):
        click.echo(f"  {event_type}: {count}")


COMMANDS = (audit, replay)
"""What ``minqing`` adds at its top level from this module."""
