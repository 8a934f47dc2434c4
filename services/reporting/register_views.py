"""A station's registers (六簿一表) as the API, the pages, the CSV and the CLI show them:
built from the register queries by the pure builders of :mod:`services.reporting.registers`,
for callers who may see the station (its liaison officers, its street's supervisors, the
district's admins and auditors).
"""

from __future__ import annotations

import csv
import io

from services.reporting.api_models import Label, QrFigures
from services.reporting.errors import OutOfScope, RegisterNotFound, StationNotFound
from services.reporting.periods import Period
from services.reporting.queries import Station
from services.reporting.register_models import (
    RegisterColumn,
    RegisterIndex,
    RegisterLink,
    RegisterView,
)
from services.reporting.register_queries import (
    case_counts,
    held_activities,
    members,
    received,
    scans,
    suggestions,
)
from services.reporting.registers import (
    KIND_OF,
    REGISTERS,
    Cell,
    activity_rows,
    duty_rows,
    feedback_rows,
    representative_rows,
    suggestion_rows,
)
from services.reporting.views import Context, district_view, period_view


def _station(ctx: Context, station_code: str) -> Station:
    ctx.scope.require_wide()
    station = ctx.stations.get(station_code)
    if station is None:
        raise StationNotFound(station_code)
    if not ctx.scope.sees_station(station_code, station.street_code):
        raise OutOfScope(f"联络站 {station.name_zh}", f"station {station_code}")
    return station


async def rows_of(
    ctx: Context, station_code: str, name: str, period: Period, lang: str
) -> list[list[Cell]]:
    """The rows of one register."""
    r, d, tz = ctx.reader, ctx.district.district_id, ctx.tz
    names = {rep.representative_id: rep.name_zh for rep in await r.representatives(d)}
    if name in ("representatives", "duties"):
        people = await members(r, d, station_code, period)
        # What they did anywhere counts in their duty register; activities elsewhere
        # are attended too.
        done = [
            a
            for p in people
            for a in await held_activities(r, d, period, representative_id=p.representative_id)
        ]
        unique = list({a.activity_id: a for a in done}.values())
        if name == "representatives":
            return representative_rows(people, unique, tz, lang)
        return duty_rows(people, unique, await case_counts(r, d, station_code, period))
    if name in KIND_OF:
        held = await held_activities(r, d, period, station_code=station_code)
        return activity_rows(held, KIND_OF[name], names)
    if name == "suggestions":
        return suggestion_rows(await suggestions(r, d, station_code, period), names, tz, lang)
    return feedback_rows(
        await received(r, d, station_code, period), names, ctx.categories, tz, lang
    )


async def register(
    ctx: Context, station_code: str, name: str, period: Period, lang: str = "zh"
) -> RegisterView:
    """One register of a station over ``period``."""
    station = _station(ctx, station_code)
    spec = REGISTERS.get(name)
    if spec is None:
        raise RegisterNotFound(name, list(REGISTERS))
    return RegisterView(
        district=district_view(ctx.district),
        period=period_view(period),
        station_code=station_code,
        station_name=station.name_zh,
        name=name,
        title=Label(zh=spec.zh, en=spec.en),
        columns=[RegisterColumn(key=c.key, label=Label(zh=c.zh, en=c.en)) for c in spec.columns],
        rows=await rows_of(ctx, station_code, name, period, lang),
    )


async def register_index(ctx: Context, station_code: str, period: Period) -> RegisterIndex:
    """The station's registers with how many rows each holds over ``period``."""
    station = _station(ctx, station_code)
    links = [
        RegisterLink(
            name=spec.name,
            title=Label(zh=spec.zh, en=spec.en),
            rows=len(await rows_of(ctx, station_code, spec.name, period, "zh")),
        )
        for spec in REGISTERS.values()
    ]
    return RegisterIndex(
        district=district_view(ctx.district),
        period=period_view(period),
        station_code=station_code,
        station_name=station.name_zh,
        registers=links,
    )


async def qr_figures(ctx: Context, station_code: str, period: Period) -> QrFigures:
    """The station's QR page views against the opinions submitted from it."""
    found = (await scans(ctx.reader, ctx.district.district_id, period, [station_code])).get(
        station_code
    )
    views, opinions = (found.scans, found.opinions) if found else (0, 0)
    return QrFigures(
        scans=views,
        opinions=opinions,
        conversion=round(opinions / views, 4) if views else None,
    )


def register_csv(view: RegisterView) -> str:
    """The register as CSV: UTF-8 with a BOM (for spreadsheets), bilingual headings."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([f"{c.label.zh} / {c.label.en}" for c in view.columns])
    for row in view.rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return out.getvalue()
