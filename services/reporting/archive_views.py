"""Representatives: the list with what each did, and one representative's archive
(代表履职档案): every case, reply, resolution and suggestion with its date.

Representatives' activities (主题活动, 学习培训, 调研视察, 述职评议, 接待选民) come from
their own table (``activities``, folded from ``ActivityRecorded``), read here beside the
case steps: counted in ``activities``, listed in the archive's ``attended``.
"""

from __future__ import annotations

from services.reporting.api_models import (
    ActivityView,
    Archive,
    AttendedView,
    EntryView,
    Label,
    RepresentativeList,
    RepresentativeRow,
)
from services.reporting.errors import OutOfScope, RepresentativeNotFound
from services.reporting.labels import (
    DEADLINES,
    ESCALATION_LEVELS,
    LEVELS,
    STEP_LABELS,
    label,
)
from services.reporting.periods import Period
from services.reporting.queries import Entry, Filter, Representative
from services.reporting.register_queries import held_activities
from services.reporting.registers import ACTIVITY_KINDS
from services.reporting.stats import Activity, CaseStats
from services.reporting.views import (
    Context,
    by_key,
    district_view,
    figures_view,
    period_view,
    scope_view,
)


def activity_view(activity: Activity) -> ActivityView:
    average = activity.average_satisfaction
    return ActivityView(
        assigned=activity.assigned,
        accepted=activity.accepted,
        accepted_on_time=activity.accepted_on_time,
        replies=activity.replies,
        replied_cases=activity.replied_cases,
        resolved=activity.resolved,
        resolved_on_time=activity.resolved_on_time,
        reopened=activity.reopened,
        escalated=activity.escalated,
        transferred_away=activity.transferred_away,
        overdue=activity.overdue,
        suggestions_made=activity.suggestions_made,
        suggestions_answered=activity.suggestions_answered,
        ratings=activity.ratings,
        satisfied_ratings=activity.satisfied_ratings,
        average_satisfaction=round(average, 2) if average is not None else None,
        activities=activity.activities,
    )


def representative_row(
    ctx: Context, rep: Representative, activity: Activity, stats: CaseStats
) -> RepresentativeRow:
    zh, en = label(LEVELS, rep.level)
    codes = sorted(rep.stations)
    return RepresentativeRow(
        representative_id=rep.representative_id,
        name=rep.name_zh,
        level=rep.level,
        level_label=Label(zh=zh, en=en),
        active=rep.active,
        stations=codes,
        station_names=[ctx.stations[c].name_zh if c in ctx.stations else c for c in codes],
        activity=activity_view(activity),
        figures=figures_view(stats),
    )


def _visible(ctx: Context, rep: Representative) -> bool:
    return ctx.scope.sees_representative(rep.representative_id, rep.stations)


async def representatives(ctx: Context, period: Period) -> RepresentativeList:
    """Every representative the caller sees, with what they did in ``period``."""
    ctx.scope.require_wide()
    r, d = ctx.reader, ctx.district.district_id
    reps = [rep for rep in await r.representatives(d) if _visible(ctx, rep)]
    ids = None if ctx.scope.whole_district else [rep.representative_id for rep in reps]
    activity = await r.activity(d, period, ids)
    held = by_key(await r.case_stats(d, period, ("representative",)))
    return RepresentativeList(
        district=district_view(ctx.district),
        period=period_view(period),
        scope=scope_view(ctx.scope),
        representatives=[
            representative_row(
                ctx,
                rep,
                activity.get(rep.representative_id, Activity(rep.representative_id)),
                held.get(rep.representative_id, CaseStats()),
            )
            for rep in reps
        ],
    )


async def archive(
    ctx: Context, representative_id: str, period: Period, *, limit: int = 200, offset: int = 0
) -> Archive:
    """One representative's archive over ``period``, newest first."""
    r, d = ctx.reader, ctx.district.district_id
    rep = next(
        (x for x in await r.representatives(d) if x.representative_id == representative_id), None
    )
    if rep is None:
        if ctx.scope.representative_id not in (None, representative_id):
            raise OutOfScope("其他代表的履职档案", "another representative's archive")
        raise RepresentativeNotFound(representative_id)
    if not _visible(ctx, rep):
        raise OutOfScope(f"{rep.name_zh}代表的履职档案", f"{representative_id}'s archive")
    activity = (await r.activity(d, period, [representative_id])).get(
        representative_id, Activity(representative_id)
    )
    only = Filter(representatives=frozenset({representative_id}))
    held = by_key(await r.case_stats(d, period, ("representative",), only=only))
    total, entries = await r.archive(d, representative_id, period, limit=limit, offset=offset)
    return Archive(
        district=district_view(ctx.district),
        period=period_view(period),
        representative=representative_row(
            ctx, rep, activity, held.get(representative_id, CaseStats())
        ),
        total=total,
        limit=limit,
        offset=offset,
        entries=[
            EntryView(
                recorded_at=e.recorded_at.astimezone(ctx.tz).isoformat(),
                kind=e.kind,
                label=Label(zh=label(STEP_LABELS, e.kind)[0], en=label(STEP_LABELS, e.kind)[1]),
                case_id=e.case_id,
                station_code=e.station_code,
                station_name=(
                    ctx.stations[e.station_code].name_zh if e.station_code in ctx.stations else None
                ),
                counterpart=e.counterpart,
                on_time=e.on_time,
                note=e.note,
                detail=entry_detail(e),
            )
            for e in entries
        ],
        activities_recorded=True,
        attended=[
            AttendedView(
                held_on=a.held_on.isoformat(),
                kind=a.kind,
                kind_label=Label(
                    zh=label(ACTIVITY_KINDS, a.kind)[0], en=label(ACTIVITY_KINDS, a.kind)[1]
                ),
                title=a.title,
                station_code=a.station_code,
                station_name=(
                    ctx.stations[a.station_code].name_zh if a.station_code in ctx.stations else None
                ),
                residents_met=a.residents_met,
            )
            for a in await held_activities(r, d, period, representative_id=representative_id)
        ],
    )


def entry_detail(e: Entry) -> Label | None:
    """An archive line in words: staff's own text, or what the codes of the step say."""
    if e.kind == "overdue":
        deadline = label(DEADLINES, e.counterpart)
        if e.note is None:
            return Label(zh=f"{deadline[0]}已过", en=f"{deadline[1]} missed")
        level = label(ESCALATION_LEVELS, e.note)
        return Label(
            zh=f"{deadline[0]}已过，已督办至{level[0]}",
            en=f"{deadline[1]} missed; the {level[1]} was told",
        )
    if e.kind == "transferred" and e.counterpart:
        return Label(zh=f"转给 {e.counterpart}", en=f"to {e.counterpart}")
    if e.kind == "escalated":
        level = label(ESCALATION_LEVELS, e.counterpart)
        return Label(zh=f"{level[0]}：{e.note or ''}", en=f"{level[1]}: {e.note or ''}")
    if e.note:
        return Label(zh=e.note, en=e.note)
    return None
