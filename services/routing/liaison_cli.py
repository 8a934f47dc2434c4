"""Commands for the liaison work, added to ``minqing`` by :mod:`services.routing.cli`:

- ``minqing case act NAME CASE_ID --district D --as ROLE:ID [--set k=v]... [--json BODY]``:
  any staff command of the table (``minqing case commands`` lists them), as the API
  would carry it out: the whistle loop's department steps and rating, callbacks, a
  suggestion's answer, handing a case on…;
- ``minqing case show CASE_ID --district D``: a case's status, deadlines and whistles;
- ``minqing liaison activity record …`` / ``minqing liaison activities …``;
- ``minqing liaison reception list|cancel|move|plan …``;
- ``minqing liaison departments|people|roster …``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import time, timedelta
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from contracts.base import Actor, ActorRole
from contracts.directory import ActivityKind
from eventkit.db import district_transaction
from eventkit.local import NoDatabase
from eventkit.loop import run as run_loop
from eventkit.refusals import Refusal
from eventkit.requests import RequestInfo
from services.routing import liaison_views as lv
from services.routing.bootstrap import Routing, bootstrap
from services.routing.case_state import CaseState
from services.routing.district_file import ActivityEntry, DistrictFileError
from services.routing.settings import RoutingSettings
from services.routing.staff_commands import BY_NAME, STAFF_COMMANDS

T = TypeVar("T")


CLI_ACTOR = Actor(id="minqing-cli", role=ActorRole.DISTRICT_ADMIN)


def _run(work: Callable[[Routing], Awaitable[T]]) -> T:
    """``work`` on routing without its background work; no database, refusals and
    invalid input become CLI messages."""

    async def main() -> T:
        async with bootstrap(RoutingSettings(), background=False) as routing:
            return await work(routing)

    try:
        return run_loop(main())
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from exc
    except DistrictFileError as exc:
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise click.ClickException("内容有误 / invalid input") from exc
    except Refusal as exc:
        raise click.ClickException(
            f"{exc.title}：{exc.detail or ''} / {exc.detail_en or exc.title_en}"
        ) from exc


def _actor(text: str) -> Actor:
    role, sep, actor_id = text.partition(":")
    if not sep or not actor_id:
        raise click.BadParameter("ROLE:ID, e.g. liaison:lo_dh_01", param_hint="--as")
    try:
        return Actor(id=actor_id, role=ActorRole(role))
    except ValueError as exc:
        raise click.BadParameter(f"unknown role {role}", param_hint="--as") from exc


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _echo_case(state: CaseState) -> None:
    click.echo(f"{state.case_id}: {state.status.value} (v{state.version})")
    for d in state.deadlines:
        flag = "met" if d.met else ("OVERDUE" if d.overdue else "running")
        subject = f" {d.subject}" if d.subject else ""
        click.echo(f"  deadline {d.kind}{subject} {d.due.isoformat()} {flag} (rung {d.rung})")
    for w in state.whistles:
        click.echo(
            f"  whistle {w.seq} → {w.to_name} ({w.department_code or w.to_level}) "
            f"reported={w.reported_at is not None} responded={w.responded_at is not None} "
            f"rating={w.rating}"
        )
    if state.callback is not None:
        c = state.callback
        click.echo(f"  callback: {c.satisfaction}/5 resolved={c.resolved} by {c.by}")
    if state.suggestion_answer is not None:
        click.echo(f"  suggestion answered by {state.suggestion_answer[1]}")


@click.group("case")
def case() -> None:
    """案件 / Cases: any staff command, as the API would carry it out."""


@case.command("commands")
def case_commands() -> None:
    """列出办理命令 / List the staff commands and their fields."""
    for command in STAFF_COMMANDS:
        fields = ", ".join(command.body.model_fields) or "-"
        roles = ",".join(sorted(r.value for r in command.roles))
        click.echo(f"{command.name:<20} {command.summary}  [{roles}]  fields: {fields}")


@case.command("act")
@click.argument("name", type=click.Choice(sorted(BY_NAME)))
@click.argument("case_id")
@click.option("--district", required=True)
@click.option("--as", "as_", required=True, help="ROLE:ID，例如 liaison:lo_dh_01")
@click.option("--set", "fields", multiple=True, help="字段 key=value（值可为 JSON）")
@click.option("--json", "body_json", default=None, help="请求体 JSON / the whole body")
@click.option("--idempotency-key", default=None)
def case_act(
    name: str,
    case_id: str,
    district: str,
    as_: str,
    fields: tuple[str, ...],
    body_json: str | None,
    idempotency_key: str | None,
) -> None:
    """办理案件 / Carry out a staff command on a case."""
    command = BY_NAME[name]
    data: dict[str, Any] = json.loads(body_json) if body_json else {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: key=value", param_hint="--set")
        data[key] = _value(value)
    try:
        body = command.body.model_validate(data)
    except ValidationError as exc:
        raise click.ClickException(f"请求内容有误 / invalid body: {exc}") from exc
    actor = _actor(as_)
    info = RequestInfo(correlation_id=str(uuid.uuid4()), idempotency_key=idempotency_key)

    async def work(routing: Routing) -> CaseState:
        return await routing.casework.run(command, district, case_id, actor, body, info)

    _echo_case(_run(work))


@case.command("show")
@click.argument("case_id")
@click.option("--district", required=True)
def case_show(case_id: str, district: str) -> None:
    """查看案件 / A case's status, deadlines and whistles."""

    async def work(routing: Routing) -> CaseState | None:
        async with district_transaction(routing.pool, district) as conn:
            return await routing.cases.load(conn, case_id)

    state = _run(work)
    if state is None or state.district_id != district:
        raise click.ClickException(f"案件 {case_id} 不存在 / no case {case_id}")
    _echo_case(state)


@click.group("liaison")
def liaison() -> None:
    """联络站工作 / Liaison work: activities, reception days, departments, rosters."""


@liaison.group("activity")
def activity() -> None:
    """代表活动 / Representatives' activities."""


@activity.command("record")
@click.option("--district", required=True)
@click.option("--station", required=True)
@click.option("--kind", required=True, type=click.Choice([k.value for k in ActivityKind]))
@click.option("--title", required=True)
@click.option("--on", "held_on", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--rep", "reps", multiple=True, help="到场代表 / a representative present")
@click.option("--residents", default=0, type=int, help="接待或走访群众人数")
@click.option("--opinions", default=0, type=int, help="收集意见条数")
@click.option("--summary", default=None)
@click.option("--id", "activity_id", default=None, help="活动编号（再次登记即更正）")
@click.option("--as", "as_", default=None, help="ROLE:ID（默认 district_admin:minqing-cli）")
def activity_record(
    district: str,
    station: str,
    kind: str,
    title: str,
    held_on: Any,
    reps: tuple[str, ...],
    residents: int,
    opinions: int,
    summary: str | None,
    activity_id: str | None,
    as_: str | None,
) -> None:
    """登记代表活动 / Record an activity held at a station."""
    entry = ActivityEntry(
        id=activity_id or f"act_{uuid.uuid4().hex[:12]}",
        station=station,
        kind=ActivityKind(kind),
        title=title,
        held_on=held_on.date(),
        representatives=list(reps),
        residents_met=residents,
        opinions_taken=opinions,
        summary=summary,
    )
    actor = _actor(as_) if as_ else CLI_ACTOR

    async def work(routing: Routing) -> int:
        return len((await routing.liaison.record_activity(district, entry, actor)).events)

    events = _run(work)
    click.echo(f"{entry.id}: {'已登记 / recorded' if events else '无变化 / unchanged'}")


@liaison.command("activities")
@click.option("--district", required=True)
@click.option("--station", default=None)
@click.option("--from", "since", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "until", required=True, type=click.DateTime(["%Y-%m-%d"]))
def activities(district: str, station: str | None, since: Any, until: Any) -> None:
    """代表活动列表 / Activities held in a period."""

    async def work(routing: Routing) -> list[Any]:
        async with district_transaction(routing.pool, district) as conn:
            return await lv.activities(
                conn, district, station_code=station, since=since.date(), until=until.date()
            )

    for a in _run(work):
        click.echo(
            f"{a.held_on} {a.station_code:<14} {a.kind_label.zh:<6} {a.title} "
            f"代表 {len(a.representatives)} 人 群众 {a.residents_met} 人 意见 {a.opinions_taken} 条"
        )


@liaison.group("reception")
def reception() -> None:
    """接待日 / Reception days: planned from the rules, cancelled, moved."""


@reception.command("list")
@click.option("--district", required=True)
@click.option("--station", required=True)
@click.option("--days", default=60, show_default=True, type=int)
def reception_list(district: str, station: str, days: int) -> None:
    """接待日安排 / The station's coming reception days."""

    async def work(routing: Routing) -> list[Any]:
        async with district_transaction(routing.pool, district) as conn:
            ctx = await routing.districts.require(conn, district)
            today = ctx.today(routing.clock())
            return await lv.schedule(
                conn,
                ctx.directory,
                station_code=station,
                since=today,
                until=today + timedelta(days=days),
            )

    for d in _run(work):
        cadre = " 领导干部" if d.leading_cadre else ""
        hours = f" {d.starts_at}-{d.ends_at}" if d.starts_at else ""
        moved = f" → {d.moved_to}" if d.moved_to else ""
        click.echo(
            f"{d.day}{hours} {d.representative_name}{cadre} ({d.representative_id}) "
            f"{d.status_label.zh}{moved}"
        )


@reception.command("cancel")
@click.option("--district", required=True)
@click.option("--representative", required=True)
@click.option("--station", required=True)
@click.option("--day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--reason", default=None)
def reception_cancel(
    district: str, representative: str, station: str, day: Any, reason: str | None
) -> None:
    """取消接待日 / Cancel a reception day."""

    async def work(routing: Routing) -> None:
        await routing.liaison.cancel_reception_day(
            district, representative, station, day.date(), reason, CLI_ACTOR
        )

    _run(work)
    click.echo(f"{day.date()}: 已取消 / cancelled")


@reception.command("move")
@click.option("--district", required=True)
@click.option("--representative", required=True)
@click.option("--station", required=True)
@click.option("--day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "to_day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--starts", default=None, type=click.DateTime(["%H:%M"]))
@click.option("--ends", default=None, type=click.DateTime(["%H:%M"]))
@click.option("--reason", default=None)
def reception_move(
    district: str,
    representative: str,
    station: str,
    day: Any,
    to_day: Any,
    starts: Any,
    ends: Any,
    reason: str | None,
) -> None:
    """接待日改期 / Move a reception day."""
    starts_at: time | None = starts.time() if starts else None
    ends_at: time | None = ends.time() if ends else None

    async def work(routing: Routing) -> None:
        await routing.liaison.move_reception_day(
            district,
            representative,
            station,
            day.date(),
            to_day.date(),
            CLI_ACTOR,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
        )

    _run(work)
    click.echo(f"{day.date()} → {to_day.date()}: 已改期 / moved")


@reception.command("plan")
@click.option("--district", default=None, help="默认全部区 / every district by default")
def reception_plan(district: str | None) -> None:
    """按规则排接待日 / Plan reception days from the rules now (the service does it hourly)."""

    async def work(routing: Routing) -> int:
        if district is None:
            return await routing.liaison.plan_all()
        return await routing.liaison.plan_reception_days(district)

    click.echo(f"新排接待日 / reception days planned: {_run(work)}")


@liaison.command("departments")
@click.option("--district", required=True)
def departments(district: str) -> None:
    """职能部门 / The district's departments."""

    async def work(routing: Routing) -> list[Any]:
        async with district_transaction(routing.pool, district) as conn:
            ctx = await routing.districts.require(conn, district)
        return lv.departments_view(ctx.directory)

    for d in _run(work):
        state = "" if d.active else " （已撤销 / retired）"
        click.echo(
            f"{d.code:<14} {d.name_zh}{state} 报到 {d.report_in} 反馈 {d.respond_in} "
            f"值守 {','.join(d.duty_staff) or '-'}"
        )


@liaison.command("people")
@click.option("--district", required=True)
@click.option("--role", default=None)
def people(district: str, role: str | None) -> None:
    """人员 / People the directory knows, by role."""

    async def work(routing: Routing) -> list[Any]:
        async with district_transaction(routing.pool, district) as conn:
            return await lv.people(conn, district, role)

    for p in _run(work):
        click.echo(
            f"{p.role:<24} {p.person_id:<16} {p.name_zh or ''} {'' if p.active else '(离任)'}"
        )


@liaison.command("roster")
@click.option("--district", required=True)
@click.option("--station", required=True)
def roster(district: str, station: str) -> None:
    """群众代言员名册 / The station's spokespersons and the opinions each collected."""

    async def work(routing: Routing) -> list[Any]:
        async with district_transaction(routing.pool, district) as conn:
            ctx = await routing.districts.require(conn, district)
            return await lv.roster(conn, ctx.directory, station)

    for s in _run(work):
        state = "" if s.active else " (已退出)"
        click.echo(
            f"{s.spokesperson_id:<14} {s.name_zh}{state} {s.community or ''} "
            f"收集意见 {s.opinions_collected} 条"
        )


LIAISON_COMMANDS = [case, liaison]
"""Added to ``minqing`` with routing's other commands."""
