"""The monthly public-opinion analysis report (民情分析报告) of a district: HTML, PDF
(WeasyPrint) and CSV, from the same views as the dashboards.

What goes in: the three rates against the previous month, the counts, the trend week by
week, hot spots, handling by category, rankings of streets, stations and
representatives, and notable cases. A report is passed around beyond the staff who
handle cases, so it carries **no free text at all**: no resident's words or name (the
projections never hold them), and no staff text either (replies and results may quote
a resident, 王女士 and her phone number included). A notable case is shown by its
facts (id, category, community, station, status, dates, counts, rating); whoever needs
more opens the case in the workbench.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from jinja2 import Environment, FileSystemLoader, select_autoescape

from eventkit.clock import Clock
from eventkit.identity import Principal, Role
from services.reporting import archive_views, views
from services.reporting.api_models import (
    Figures,
    Hotspot,
    Label,
    Overview,
    RepresentativeRow,
    StationRow,
    StreetRow,
)
from services.reporting.charts import stars
from services.reporting.i18n import TEXT, Lang
from services.reporting.labels import STATUSES, label
from services.reporting.page_charts import rate_trend_chart
from services.reporting.periods import Period, month
from services.reporting.queries import NotableCase

TEMPLATES = Path(__file__).parent / "templates"
STYLESHEET = Path(__file__).parent / "static" / "reporting.css"
MIN_RANKED = 5
"""Counted cases a unit needs in the month to be ranked."""
REPORTER = "minqing-report"


@dataclass(frozen=True)
class Notable:
    """A notable case as the report shows it: facts only."""

    case_id: str
    category: Label
    community: str
    station: str
    representative: str
    status: Label
    opened: str
    overdue: int
    reopened: int
    escalated: int
    satisfaction: int | None


@dataclass(frozen=True)
class Ranked:
    """A unit in a ranking: its place (None: too few cases), name and figures."""

    rank: int | None
    code: str
    name: str
    figures: Figures
    score: float | None


@dataclass(frozen=True)
class MonthlyReport:
    """Everything one month's report shows."""

    overview: Overview
    month: Period
    hotspots: list[Hotspot]
    categories: list[tuple[Label, Figures]]
    streets: list[Ranked]
    stations: list[Ranked]
    representatives: list[Ranked]
    notable: list[Notable]
    generated_at: datetime


def score(figures: Figures) -> float | None:
    """The ranking score: the mean of the three rates a unit has (docs/metrics.md)."""
    values = [
        r.value
        for r in (figures.rates.response, figures.rates.resolution, figures.rates.satisfaction)
        if r.value is not None
    ]
    return sum(values) / len(values) if values else None


def rank(units: list[tuple[str, str, Figures]]) -> list[Ranked]:
    """Units ranked by score, those with too few counted cases last and unranked."""
    scored = [(code, name, f, score(f)) for code, name, f in units]
    eligible = sorted(
        (u for u in scored if u[2].counts.counted >= MIN_RANKED and u[3] is not None),
        key=lambda u: (-(u[3] or 0), -u[2].counts.counted, u[0]),
    )
    others = sorted(
        (u for u in scored if u not in eligible), key=lambda u: (-u[2].counts.received, u[0])
    )
    return [Ranked(i + 1, *u) for i, u in enumerate(eligible)] + [Ranked(None, *u) for u in others]


class MonthlyReports:
    """Builds and writes monthly reports."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        self._templates = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
        )
        self._templates.filters["stars"] = stars

    async def build(self, district_id: str, month_text: str) -> MonthlyReport:
        """The report of ``district_id`` for the month ``YYYY-MM`` (its whole district)."""
        who = Principal(REPORTER, Role.DISTRICT_ADMIN, district_id)
        async with views.reading(self._pool, who, district_id) as ctx:
            when = month(month_text, ctx.tz)
            overview = await views.overview(ctx, when)
            hot = await views.hotspots(ctx, when, limit=10)
            by_category = await ctx.reader.case_stats(district_id, when, ("category",))
            streets = await views.streets(ctx, when)
            stations = await views.stations(ctx, when)
            reps = await archive_views.representatives(ctx, when)
            notable = await ctx.reader.notable_cases(district_id, when)
            names = {r.representative_id: r.name for r in reps.representatives}
            return MonthlyReport(
                overview=overview,
                month=when,
                hotspots=hot.hotspots,
                categories=[
                    (ctx.category(s.key[0]), views.figures_view(s))
                    for s in sorted(by_category, key=lambda s: (-s.received, s.key[0] or ""))
                ],
                streets=rank(_streets(streets.streets)),
                stations=rank(_stations(stations.stations)),
                representatives=rank(_representatives(reps.representatives)),
                notable=[_notable(ctx, n, names) for n in notable],
                generated_at=self._clock(),
            )

    def html(self, report: MonthlyReport, lang: Lang = "zh") -> str:
        """The report as one self-contained HTML page (its stylesheet inside)."""
        template = self._templates.get_template("monthly.html")
        return template.render(
            r=report,
            t=TEXT[lang],
            lang=lang,
            css=STYLESHEET.read_text(encoding="utf-8"),
            trend_svg=rate_trend_chart(report.overview, lang),
            statuses=STATUSES,
            min_ranked=MIN_RANKED,
        )

    def csv(self, report: MonthlyReport) -> str:
        """Every unit's figures, one row each (UTF-8 with a BOM, for spreadsheets)."""
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out)
        writer.writerow(
            [
                "层级 level",
                "代码 code",
                "名称 name",
                "名次 rank",
                "受理 received",
                "计入 counted",
                "按时响应 on time",
                "应响应 settled",
                "响应率 response rate",
                "已解决 resolved",
                "应解决 due",
                "解决率 resolution rate",
                "满意 satisfied",
                "参评 rated",
                "满意率 satisfaction rate",
                "超期 overdue",
                "重新办理 reopened",
                "吹哨 escalated",
                "转代表建议 suggestions",
            ]
        )
        district = report.overview.district
        rows: list[tuple[str, Ranked]] = [
            (
                "区 district",
                Ranked(None, district.district_id, district.name.zh, report.overview.figures, None),
            ),
            *(("街道 street", u) for u in report.streets),
            *(("联络站 station", u) for u in report.stations),
            *(("代表 representative", u) for u in report.representatives),
        ]
        for level, unit in rows:
            f, c = unit.figures, unit.figures.counts
            writer.writerow(
                [
                    level,
                    unit.code,
                    unit.name,
                    unit.rank or "",
                    c.received,
                    c.counted,
                    c.response_on_time,
                    c.response_settled,
                    _share(f.rates.response.value),
                    c.resolved,
                    c.resolution_settled,
                    _share(f.rates.resolution.value),
                    c.satisfied,
                    c.rated,
                    _share(f.rates.satisfaction.value),
                    c.overdue,
                    c.reopened,
                    c.escalated,
                    c.suggestions,
                ]
            )
        return out.getvalue()

    async def write(
        self, district_id: str, month_text: str, folder: Path, lang: Lang = "zh"
    ) -> list[Path]:
        """Write the report's HTML, PDF and CSV into ``folder``; their paths."""
        report = await self.build(district_id, month_text)
        stem = f"report-{district_id}-{report.month.first_day:%Y-%m}"
        return await asyncio.to_thread(
            _write, folder, stem, self.html(report, lang), self.csv(report)
        )


def _write(folder: Path, stem: str, html: str, table: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.html", folder / f"{stem}.pdf", folder / f"{stem}.csv"]
    paths[0].write_text(html, encoding="utf-8")
    paths[1].write_bytes(pdf_of(html))
    paths[2].write_text(table, encoding="utf-8")
    return paths


def pdf_of(html: str) -> bytes:
    """The PDF of a report's HTML (WeasyPrint; CJK fonts from the system)."""
    from weasyprint import HTML

    document: bytes = HTML(string=html).write_pdf()
    return document


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _streets(rows: list[StreetRow]) -> list[tuple[str, str, Figures]]:
    return [(r.street_code, r.name.zh, r.figures) for r in rows if r.street_code is not None]


def _stations(rows: list[StationRow]) -> list[tuple[str, str, Figures]]:
    return [(r.station_code, r.name.zh, r.figures) for r in rows]


def _representatives(rows: list[RepresentativeRow]) -> list[tuple[str, str, Figures]]:
    return [(r.representative_id, r.name, r.figures) for r in rows]


def _notable(ctx: views.Context, case: NotableCase, names: dict[str, str]) -> Notable:
    station = ctx.stations.get(case.station_code or "")
    zh, en = label(STATUSES, case.status)
    return Notable(
        case_id=case.case_id,
        category=ctx.category(case.category_code),
        community=case.community or "—",
        station=station.name_zh if station else "—",
        representative=names.get(case.representative_id or "", "—"),
        status=Label(zh=zh, en=en),
        opened=case.opened_at.astimezone(ctx.tz).date().isoformat(),
        overdue=case.overdue_count,
        reopened=case.reopened_count,
        escalated=case.escalated_count,
        satisfaction=case.satisfaction,
    )
