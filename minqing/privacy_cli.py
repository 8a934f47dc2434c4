"""``minqing privacy``: residents' rights (find, export, forget) and retention.

The commands run with an operator's database credentials (like ``minqing audit``) and on
a district admin's authority: ``--by`` names the admin, who must hold an active district
admin account in the district; every request is recorded (``privacy.rights_requests``).
No command prints a phone number or a name: the export file alone holds them.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from eventkit.db import create_pool
from eventkit.local import NoDatabase, database_url
from eventkit.loop import run as run_loop
from eventkit.privacy import PersonalDataVault, VaultKeyMissing
from eventkit.refusals import Refusal
from eventkit.settings import Settings
from minqing.lookup_key_cli import COMMANDS as LOOKUP_KEY_COMMANDS
from minqing.privacy import Forgotten, Matters, ResidentRights, write_export

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[ResidentRights], Awaitable[T]]) -> T:
    """``work`` on the database of ``settings``; refusals and a missing database are CLI
    messages."""

    async def main() -> T:
        pool = await create_pool(database_url(settings), role=settings.database_role, max_size=2)
        try:
            return await work(
                ResidentRights(
                    pool,
                    PersonalDataVault(
                        pool, settings.privacy_keys(), settings.privacy_lookup_keys()
                    ),
                )
            )
        finally:
            await pool.close()

    try:
        return run_loop(main())
    except Refusal as refusal:
        detail = f"\n{refusal.detail}\n{refusal.detail_en}" if refusal.detail else ""
        raise click.ClickException(f"{refusal.title} / {refusal.title_en}{detail}") from refusal
    except (NoDatabase, VaultKeyMissing) as exc:
        raise click.ClickException(str(exc)) from exc


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _day(value: Any) -> str:
    return value.isoformat(timespec="minutes") if value is not None else "-"


def _no_record(district: str) -> str:
    return f"该号码在区 {district} 无记录 / no record of this phone number in district {district}"


def _describe(matters: Matters) -> list[str]:
    lines = []
    by_opinion: dict[str, list[dict[str, Any]]] = {}
    for case in matters.cases:
        by_opinion.setdefault(case["opinion_id"], []).append(case)
    for subject in matters.subject_ids:
        lines.append(f"居民编号 / subject {subject}")
        for o in (o for o in matters.opinions if o["subject_id"] == subject):
            withdrawn = "，已撤回 / withdrawn" if o["withdrawn_at"] else ""
            lines.append(
                f"  意见 / opinion {o['opinion_id']}  提交 / submitted {_day(o['submitted_at'])}"
                f"  渠道 / channel {o['channel']}{withdrawn}"
            )
            for c in by_opinion.get(o["opinion_id"], []):
                lines.append(
                    f"    案件 / case {c['case_id']}  状态 / status {c['status']}  "
                    f"受理 / opened {_day(c['opened_at'])}  结案 / closed {_day(c['closed_at'])}"
                )
    return lines


def _erased(forgotten: Forgotten) -> str:
    parts = [
        f"{service} {name} {count}"
        for service, counts in forgotten.erased.items()
        for name, count in counts.items()
        if count
    ]
    return "; ".join(parts) or "-"


_BY = click.option(
    "--by",
    "requested_by",
    required=True,
    help="以其名义办理的区管理员工号 / the district admin the request is made for",
)
_DISTRICT = click.option("--district", required=True, help="区编号 / district code, e.g. demo")
_PHONE = click.option("--phone", required=True, help="居民手机号码 / the resident's mobile number")


@click.group("privacy")
def privacy() -> None:
    """个人信息 / Residents' personal data: find, export, forget; retention."""


@privacy.command("find")
@_PHONE
@_DISTRICT
@_BY
@click.option("--reason", default=None, help="原因 / why, e.g. the request's number")
@click.pass_obj
def find(
    settings: Settings, phone: str, district: str, requested_by: str, reason: str | None
) -> None:
    """查询居民 / List the resident a phone number names, their opinions and cases."""
    matters = _run(
        settings,
        lambda rights: rights.find(district, phone, requested_by=requested_by, reason=reason),
    )
    if not matters.subject_ids:
        click.echo(_no_record(district))
        return
    click.echo(
        f"区 {district}：{len(matters.opinions)} 条意见，{len(matters.cases)} 个案件 / district "
        f"{district}: {len(matters.opinions)} opinion(s), {len(matters.cases)} case(s)"
    )
    for line in _describe(matters):
        click.echo(line)


@privacy.command("export")
@_PHONE
@_DISTRICT
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="导出文件（JSON，仅本人可读）/ the file to write (JSON, mode 0600; must not exist)",
)
@_BY
@click.option("--reason", required=True, help="原因 / why, e.g. the request's number")
@click.pass_obj
def export(
    settings: Settings, phone: str, district: str, out: Path, requested_by: str, reason: str
) -> None:
    """导出居民信息 / Export everything held about a resident as a JSON file."""
    if out.exists():
        raise click.ClickException(f"文件已存在 / the file exists already: {out}")
    matters, document = _run(
        settings,
        lambda rights: rights.export(district, phone, requested_by=requested_by, reason=reason),
    )
    if not matters.subject_ids:
        raise click.ClickException(_no_record(district) + "（未写文件 / nothing written）")
    try:
        write_export(out, document)
    except OSError as exc:
        raise click.ClickException(f"无法写入 / cannot write {out}: {exc.strerror}") from exc
    messages = len(document["notification"]["messages"])
    click.echo(
        f"已导出 {len(matters.opinions)} 条意见、{len(matters.cases)} 个案件、{messages} 条消息到 "
        f"{out}（仅本人可读）/ exported {len(matters.opinions)} opinion(s), "
        f"{len(matters.cases)} case(s), {messages} message(s) to {out} (readable by you only)"
    )


@privacy.command("forget")
@click.argument("subject_id", required=False)
@click.option("--phone", default=None, help="居民手机号码（须同时给出 --district）/ mobile number")
@click.option("--district", default=None, help="区编号 / district code (with --phone)")
@click.option(
    "--by",
    "requested_by",
    default=None,
    help="区管理员工号（按号码办理时必填）/ the district admin (required with --phone)",
)
@click.option("--reason", default=None, help="原因 / why, e.g. the resident's request number")
@click.pass_obj
def forget(
    settings: Settings,
    subject_id: str | None,
    phone: str | None,
    district: str | None,
    requested_by: str | None,
    reason: str | None,
) -> None:
    """删除居民 / Forget a resident, by subject id or by phone number and district.

    Their key is deleted (crypto-shredding: their name and phone become unreadable
    everywhere, the store, Kafka, copies) and every service's clear copies are erased:
    their opinions' texts, places and tracking codes, the case texts, the contact and
    the messages kept for them. The events stay, so the record and its hash chains remain
    intact (docs/privacy.md).
    """
    if (subject_id is None) == (phone is None):
        raise click.UsageError(
            "给出居民编号或 --phone 之一 / give a SUBJECT_ID or --phone, not both"
        )
    if phone is not None:
        if district is None or requested_by is None:
            raise click.UsageError(
                "--phone 须同时给出 --district 和 --by / --phone needs --district and --by"
            )
        by = requested_by
        forgotten = _run(
            settings,
            lambda rights: rights.forget_phone(district, phone, requested_by=by, reason=reason),
        )
        if not forgotten.matters.subject_ids:
            raise click.ClickException(_no_record(district) + "（未删除任何内容 / nothing erased）")
    else:
        assert subject_id is not None
        checked = requested_by is not None
        by = requested_by or _operator()
        forgotten = _run(
            settings,
            lambda rights: rights.forget_subject(
                subject_id, requested_by=by, reason=reason, check=checked
            ),
        )
    for subject in forgotten.matters.subject_ids:
        if forgotten.keys_deleted:
            click.echo(f"已删除 {subject} 的密钥 / {subject} forgotten: key deleted")
        else:
            click.echo(f"{subject} 此前已删除 / {subject} was already forgotten")
    click.echo(f"已清除 / erased: {_erased(forgotten)}（记录 / request {forgotten.request_id}）")


@privacy.group("retention")
def retention() -> None:
    """保存期限 / How long the texts of closed cases are kept, per district."""


@retention.command("run")
@click.option("--district", default=None, help="只处理此区 / only this district (default: all)")
@click.option(
    "--every",
    type=click.FloatRange(min=0.0001),
    default=None,
    metavar="HOURS",
    help="每隔若干小时再执行一次，不退出（无定时任务的部署用）/ "
    "run again every HOURS and keep running (for deployments without a scheduler)",
)
@click.pass_obj
def retention_run(settings: Settings, district: str | None, every: float | None) -> None:
    """执行保存期限 / Erase the texts of cases closed before each district's period.

    Safe to repeat; run it daily (and after any rebuild of the services' tables). With
    ``--every`` the command stays up and runs again at that interval: a run that fails
    is reported and tried again at the next one (Docker Compose has no scheduler)."""
    if every is None:
        _retention_once(settings, district)
        return
    while True:
        try:
            _retention_once(settings, district)
        except Exception as exc:  # noqa: BLE001 - a scheduled run outlives one failure
            reason = (
                exc.format_message()
                if isinstance(exc, click.ClickException)
                else f"{type(exc).__name__}: {exc}"
            )
            click.echo(
                f"保存期限执行失败，{every:g} 小时后重试 / retention run failed, "
                f"next try in {every:g} h: {reason}",
                err=True,
            )
        time.sleep(every * 3600)


def _retention_once(settings: Settings, district: str | None) -> None:
    runs = _run(settings, lambda rights: rights.retention_run(district))
    if not runs:
        click.echo("没有区 / no district")
    for run in runs:
        erased = "; ".join(
            f"{service} {name} {count}"
            for service, counts in run.erased.items()
            for name, count in counts.items()
            if count
        )
        click.echo(
            f"区 {run.district_id}：保存 {run.retention_days} 天，{run.cutoff.date()} 前结案的案件 "
            f"{run.cases} 个 / district {run.district_id}: {run.retention_days} days, "
            f"{run.cases} case(s) closed before {run.cutoff.date()}; "
            f"erased now: {erased or 'nothing new'}"
        )


@retention.command("set")
@_DISTRICT
@click.option("--days", required=True, type=int, help="天数 / days, e.g. 1095 (three years)")
@_BY
@click.pass_obj
def retention_set(settings: Settings, district: str, days: int, requested_by: str) -> None:
    """设置保存期限 / Set a district's retention period for closed cases' texts."""
    _run(settings, lambda rights: rights.set_retention(district, days, requested_by=requested_by))
    click.echo(f"区 {district} 保存期限：{days} 天 / district {district}: {days} days")


@retention.command("show")
@_DISTRICT
@click.pass_obj
def retention_show(settings: Settings, district: str) -> None:
    """查看保存期限 / Show a district's retention period."""
    days = _run(settings, lambda rights: rights.retention_of(district))
    click.echo(f"区 {district} 保存期限：{days} 天 / district {district}: {days} days")


for _command in LOOKUP_KEY_COMMANDS:  # the blind index's key: reindex, lookup-key
    privacy.add_command(_command)

COMMANDS = [privacy]
