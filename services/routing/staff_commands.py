"""Every staff command on a case, in one table: its name, its request body, the roles
that may ask for it, and how the request becomes a domain command.

The table drives both the handler (:meth:`services.routing.casework.CaseWork.run`) and
the HTTP routes (``POST /api/v1/cases/{case_id}/{name}``, one per row, see
:mod:`services.routing.case_routes`), so a new command is one branch of
:func:`~services.routing.domain.decide` plus one row here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, HttpUrl, StringConstraints

from contracts.base import Identifier
from contracts.cases import CaseEvent, Priority
from contracts.directory import Duration
from contracts.envelope import Metadata
from contracts.intake import Channel
from eventkit.db import scope
from services.routing.assignment import Place, StationChoice, choose_station, community_of
from services.routing.case_commands import (
    Accept,
    Classify,
    Close,
    ConvertToSuggestion,
    Escalate,
    LinkCase,
    Merge,
    OpenCase,
    Reopen,
    Reply,
    Resolve,
    Transfer,
    TransferToDistrict,
)
from services.routing.case_projection import opinion_facts
from services.routing.case_state import CaseState, CaseStatus
from services.routing.casework import Planned, Step
from services.routing.classification import Classification, higher
from services.routing.command_rows import ADMINS as ADMINS
from services.routing.command_rows import CASEWORKERS, COORDINATORS, CommandBody, Text, row
from services.routing.command_rows import READERS as READERS
from services.routing.command_rows import NoBody as NoBody
from services.routing.command_rows import StaffCommand as StaffCommand
from services.routing.directory import Representative
from services.routing.district_context import DistrictContext
from services.routing.domain import decide
from services.routing.errors import CaseNotFound, DirectoryNotFound, RoutingError, UnknownDistrict
from services.routing.ids import event_ids, transferred_case_id
from services.routing.liaison_commands import LIAISON_COMMANDS, WHISTLERS
from services.routing.placement import assign_at, community_of_case


class ReplyBody(CommandBody):
    message: Text
    public: bool = Field(
        default=False,
        description="公开：任何人可在 Open311 看到（号码打码）/ public: shown to anyone on Open311 "
        "(numbers masked); otherwise for the resident alone",
    )


class ResolveBody(CommandBody):
    result: Text
    evidence_urls: list[HttpUrl] = Field(default_factory=list, max_length=9)
    public: bool = Field(
        default=False,
        description="公开结果与佐证 / public: the result and its evidence shown to anyone on "
        "Open311; otherwise for the resident alone",
    )


class CloseBody(CommandBody):
    note: Text | None = None


class ReopenBody(CommandBody):
    reason: Text


class TransferBody(CommandBody):
    reason: Text
    to_representative_id: Identifier | None = None
    to_station_code: Identifier | None = None
    to_district_id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = (
        None
    )


class EscalateBody(CommandBody):
    to_level: Literal["department", "station_head", "street", "district"]
    to_name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    """Who is summoned, in words; a registered department's name when omitted."""
    reason: Text
    department_code: Identifier | None = None
    """A registered department (``GET /api/v1/directory/departments``): it gets its own
    deadlines to report in and to feed back. A department named in ``to_name`` only is
    looked up by its name."""
    due: AwareDatetime | None = None
    due_in: Duration | None = None
    """An allowance such as ``3wd``; the department's ``respond_in`` or the policy's
    default when neither is given."""


class ConvertBody(CommandBody):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    representative_id: Identifier | None = None
    reply_due: AwareDatetime | None = None


class ClassifyBody(CommandBody):
    reason: Text
    category_code: Identifier | None = None
    priority: Priority | None = None


class MergeBody(CommandBody):
    into_case_id: Identifier
    reason: Text


class LinkBody(CommandBody):
    related_case_id: Identifier
    relation: Literal["duplicate", "related"] = "related"
    reason: Text


# --------------------------------------------------------------------------- builders


def _active_representative(ctx: DistrictContext, representative_id: str) -> Representative:
    rep = ctx.directory.representatives.get(representative_id)
    if rep is None or not rep.active:
        raise DirectoryNotFound(
            f"代表 {representative_id} 不存在或已离任",
            f"no active representative {representative_id}",
        )
    return rep


async def _accept(step: Step, body: NoBody) -> Planned:
    return Planned(Accept(actor=step.actor, now=step.now))


async def _reply(step: Step, body: ReplyBody) -> Planned:
    return Planned(Reply(actor=step.actor, now=step.now, message=body.message, public=body.public))


async def _resolve(step: Step, body: ResolveBody) -> Planned:
    urls = tuple(str(u) for u in body.evidence_urls)
    return Planned(
        Resolve(
            actor=step.actor,
            now=step.now,
            result=body.result,
            evidence_urls=urls,
            public=body.public,
        )
    )


async def _close(step: Step, body: CloseBody) -> Planned:
    return Planned(Close(actor=step.actor, now=step.now, note=body.note))


async def _reopen(step: Step, body: ReopenBody) -> Planned:
    _, resolution = step.ctx.deadlines(step.state.category_code, step.state.priority, step.now)
    return Planned(
        Reopen(actor=step.actor, now=step.now, reason=body.reason, resolution_due=resolution)
    )


async def _escalate(step: Step, body: EscalateBody) -> Planned:
    """吹哨: a registered department gets deadlines to report in and to feed back."""
    ctx = step.ctx
    department = None
    if body.to_level == "department":
        if body.department_code is not None:
            department = ctx.directory.active_department(body.department_code)
            if department is None:
                raise DirectoryNotFound(
                    f"部门 {body.department_code} 未登记或已撤销",
                    f"no active department {body.department_code}",
                )
        elif body.to_name is not None:
            department = ctx.directory.department_named(body.to_name)
    elif body.department_code is not None:
        raise RoutingError("只有向部门吹哨才能指定部门", "only a whistle to a department names one")
    to_name = body.to_name or (department.name_zh if department else None)
    if to_name is None:
        raise RoutingError("请写明被召集的单位", "name whom the whistle summons")
    allowance = body.due_in or (
        department.respond_in if department else ctx.policy.escalation_default
    )
    return Planned(
        Escalate(
            actor=step.actor,
            now=step.now,
            to_level=body.to_level,
            to_name=to_name,
            due=body.due or ctx.after(step.now, allowance),
            reason=body.reason,
            department_code=department.code if department else None,
            report_due=ctx.after(step.now, department.report_in) if department else None,
        )
    )


async def _convert(step: Step, body: ConvertBody) -> Planned:
    if body.representative_id is not None:
        _active_representative(step.ctx, body.representative_id)
    due = body.reply_due or step.ctx.after(step.now, step.ctx.policy.suggestion_reply)
    return Planned(
        ConvertToSuggestion(
            actor=step.actor,
            now=step.now,
            title=body.title,
            representative_id=body.representative_id,
            reply_due=due,
        )
    )


async def _classify(step: Step, body: ClassifyBody) -> Planned:
    """Set the category and/or the priority (staff override); a triaged case is routed."""
    state, ctx = step.state, step.ctx
    category = body.category_code or state.category_code
    if body.category_code is not None and (
        ctx.taxonomy is None or body.category_code not in ctx.taxonomy.categories
    ):
        raise RoutingError(
            f"分类 {body.category_code} 不存在", f"no category {body.category_code} in the taxonomy"
        )
    level = body.priority
    if level is None:
        # A new category may raise the priority (safety is important), never lower it:
        # lowering is a decision staff state explicitly.
        own = ctx.taxonomy.category(category) if ctx.taxonomy else None
        changed = own is not None and category != state.category_code
        level = higher(state.priority, own.priority) if own and changed else state.priority
    response, resolution = ctx.deadlines(category, level, step.now)
    assignment = None
    if state.status is CaseStatus.TRIAGE and state.station_code is not None:
        station = ctx.directory.active_station(state.station_code)
        if station is not None:
            choice = StationChoice(station, "triage", f"分拣后分派：{station.name_zh}")
            assignment = await assign_at(
                step.conn,
                ctx,
                choice,
                Classification(category, (), level, ()),
                await community_of_case(step.conn, ctx, state),
                step.now,
            )
    return Planned(
        Classify(
            actor=step.actor,
            now=step.now,
            category_code=category,
            priority=level,
            reason=body.reason,
            response_due=response,
            resolution_due=resolution,
            assignment=assignment,
        )
    )


async def _transfer(step: Step, body: TransferBody) -> Planned:
    """转办: to a representative, a station, or another district (a case of its own)."""
    if body.to_district_id is not None and body.to_district_id != step.state.district_id:
        return await _transfer_out(step, body, body.to_district_id)
    ctx, state = step.ctx, step.state
    station_code = body.to_station_code
    assignment = None
    if station_code is not None and ctx.directory.active_station(station_code) is None:
        raise DirectoryNotFound(
            f"联络站 {station_code} 不存在或已撤销", f"no active station {station_code}"
        )
    if body.to_representative_id is not None:
        rep = _active_representative(ctx, body.to_representative_id)
        if station_code is None:
            here = state.station_code
            if here is None or (here not in rep.stations and rep.contact_point != here):
                station_code = min(rep.stations) if rep.stations else rep.contact_point
    elif station_code is not None:
        station = ctx.directory.active_station(station_code)
        assert station is not None
        choice = StationChoice(station, "transfer", f"转办至{station.name_zh}")
        assignment = await assign_at(
            step.conn,
            ctx,
            choice,
            Classification(state.category_code, (), state.priority, ()),
            await community_of_case(step.conn, ctx, state),
            step.now,
        )
    return Planned(
        Transfer(
            actor=step.actor,
            now=step.now,
            to_station_code=station_code,
            to_representative_id=body.to_representative_id,
            reason=body.reason,
            assignment=assignment,
        )
    )


async def _transfer_out(step: Step, body: TransferBody, to_district_id: str) -> Planned:
    """The case ends here and continues in ``to_district_id`` as a case of its own (a
    stream never changes district), classified and placed by that district's rules."""
    case_id = step.state.case_id
    new_case_id = transferred_case_id(case_id, to_district_id)
    # The one command that works in two districts in one transaction: what is read of
    # the target and written there is in the target's row-level security scope, and
    # the scope goes back to the case's own district before the case is saved.
    await scope(step.conn, to_district_id)
    target = await step.districts.get(step.conn, to_district_id)
    if target is None:
        raise UnknownDistrict(to_district_id)
    to_station = body.to_station_code
    if to_station is not None and target.directory.active_station(to_station) is None:
        raise DirectoryNotFound(
            f"{to_district_id} 没有联络站 {to_station}",
            f"no active station {to_station} in {to_district_id}",
        )
    if await step.cases.exists(step.conn, new_case_id):
        raise RoutingError(
            f"案件已转至 {to_district_id}", f"already transferred to {to_district_id}"
        )
    await scope(step.conn, step.state.district_id)

    async def open_there(after: Step, saved: CaseState, events: list[CaseEvent]) -> None:
        facts = await opinion_facts(after.conn, case_id)
        assert facts is not None
        await scope(after.conn, to_district_id)
        target = await after.districts.require(after.conn, to_district_id)
        classification = target.classify(facts.text, None)
        place = Place(to_station, facts.community, facts.point)
        community = community_of(target.directory, place)
        assignment = await assign_at(
            after.conn,
            target,
            choose_station(target.directory, place),
            classification,
            community,
            after.now,
        )
        response, resolution = target.deadlines(
            classification.category_code, classification.priority, after.now
        )
        opened = decide(
            None,
            OpenCase(
                actor=after.actor,
                now=after.now,
                case_id=new_case_id,
                district_id=to_district_id,
                opinion_id=saved.opinion_id,
                classification=classification,
                response_due=response,
                resolution_due=resolution,
                assignment=assignment,
                taxonomy_version=target.taxonomy.version if target.taxonomy else None,
                transferred_from=(saved.district_id, case_id),
                channel=Channel(facts.channel) if facts.channel else None,
                community=community,
            ),
        )
        await after.cases.save(
            after.conn,
            None,
            opened,
            event_ids(opened, f"transfer:{case_id}:{to_district_id}"),
            Metadata(causation_id=case_id),
            facts,
        )
        await scope(after.conn, saved.district_id)

    command = TransferToDistrict(
        actor=step.actor,
        now=step.now,
        to_district_id=to_district_id,
        to_case_id=new_case_id,
        reason=body.reason,
    )
    return Planned(command, after=open_there)


async def _merge(step: Step, body: MergeBody) -> Planned:
    """并案: this case duplicates another; the other case records the merge."""
    case_id, into = step.state.case_id, body.into_case_id
    target = await step.cases.load(step.conn, into)
    if target is None or target.district_id != step.state.district_id:
        raise CaseNotFound(into)
    if target.status in (CaseStatus.MERGED, CaseStatus.TRANSFERRED_OUT):
        raise RoutingError(f"案件 {into} 已并案或转出", f"case {into} is no longer here")

    async def record_there(after: Step, saved: CaseState, events: list[CaseEvent]) -> None:
        other = await after.cases.load(after.conn, into)
        assert other is not None
        link = LinkCase(
            actor=after.actor,
            now=after.now,
            related_case_id=case_id,
            relation="merged",
            reason=body.reason,
        )
        linked = decide(other, link)
        if linked:
            await after.cases.save(
                after.conn, other, linked, event_ids(linked, f"merge:{case_id}"), Metadata()
            )

    merge = Merge(actor=step.actor, now=step.now, into_case_id=into, reason=body.reason)
    return Planned(merge, after=record_there)


async def _link(step: Step, body: LinkBody) -> Planned:
    other = await step.cases.load(step.conn, body.related_case_id)
    if other is None or other.district_id != step.state.district_id:
        raise CaseNotFound(body.related_case_id)
    return Planned(
        LinkCase(
            actor=step.actor,
            now=step.now,
            related_case_id=body.related_case_id,
            relation=body.relation,
            reason=body.reason,
        )
    )


# --------------------------------------------------------------------------- the table


STAFF_COMMANDS: tuple[StaffCommand[Any], ...] = (
    row("accept", "报到 / accept", NoBody, CASEWORKERS, _accept),
    row("reply", "答复居民 / reply to the resident", ReplyBody, CASEWORKERS, _reply),
    row("resolve", "办结 / resolve", ResolveBody, CASEWORKERS, _resolve),
    row("escalate", "吹哨 / escalate", EscalateBody, WHISTLERS, _escalate),
    row("convert", "转代表建议 / convert to a suggestion", ConvertBody, CASEWORKERS, _convert),
    row("transfer", "转办 / transfer", TransferBody, COORDINATORS, _transfer),
    row("classify", "分类定级 / classify, set the priority", ClassifyBody, COORDINATORS, _classify),
    row("close", "核实结项 / close after verification", CloseBody, COORDINATORS, _close),
    row("reopen", "重新办理 / reopen", ReopenBody, COORDINATORS, _reopen),
    row("merge", "并案 / merge into another case", MergeBody, COORDINATORS, _merge),
    row("link", "关联 / link to another case", LinkBody, COORDINATORS, _link),
    *LIAISON_COMMANDS,
)
"""Every staff command on a case, in the order the API documents them."""

BY_NAME: dict[str, StaffCommand[Any]] = {command.name: command for command in STAFF_COMMANDS}
