"""The charts of the dashboards and the monthly report, from the models the API answers.

Pure: :mod:`services.reporting.charts` draws them."""

from __future__ import annotations

from datetime import timedelta

from markupsafe import Markup

from services.reporting.api_models import Overview, StationDetail, Trends
from services.reporting.charts import Line, bar_chart, line_chart
from services.reporting.i18n import TEXT, Lang
from services.reporting.periods import Period

TOP_CATEGORIES = 6
"""Categories drawn in a trend chart (the others are in its table)."""


def rate_trend_chart(overview: Overview, lang: Lang) -> Markup:
    """The three rates month by month."""
    t = TEXT[lang]
    labels = [b.label.zh if lang == "zh" else b.label.en for b in overview.trend]
    rates = [b.figures.rates for b in overview.trend]
    return line_chart(
        t["trend_title"],
        labels,
        [
            Line(t["response_rate"], [r.response.value for r in rates]),
            Line(t["resolution_rate"], [r.resolution.value for r in rates]),
            Line(t["satisfaction_rate"], [r.satisfaction.value for r in rates]),
        ],
        percent=True,
    )


def day_chart(detail: StationDetail, period: Period, lang: Lang) -> Markup:
    """A station's cases assigned and resolved, every day of the period."""
    t = TEXT[lang]
    by_day = {d.day: d for d in detail.days}
    days = [period.first_day + timedelta(days=i) for i in range(period.days)]
    labels = [f"{d.month}/{d.day}" for d in days]
    assigned = [
        float(by_day[d.isoformat()].assigned) if d.isoformat() in by_day else 0.0 for d in days
    ]
    resolved = [
        float(by_day[d.isoformat()].resolved) if d.isoformat() in by_day else 0.0 for d in days
    ]
    return bar_chart(
        t["days_title"], labels, [Line(t["assigned"], assigned), Line(t["resolved"], resolved)]
    )


def trend_chart(trends: Trends, lang: Lang) -> Markup:
    """Cases received per category (the largest ones) per bucket."""
    t = TEXT[lang]
    labels = [b.zh if lang == "zh" else b.en for b in trends.bucket_labels]
    lines = [
        Line(s.category.zh if lang == "zh" else s.category.en, [float(c) for c in s.counts])
        for s in trends.series[:TOP_CATEGORIES]
    ]
    return line_chart(t["trends"], labels, lines, percent=False)
