"""The monthly report of March: its figures, rankings and notable cases (facts, no text),
written as HTML, PDF and CSV by ``minqing report monthly``; and ``minqing reporting
rebuild`` from the command line."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from minqing.cli import main
from services.reporting.reports import MonthlyReports
from tests.reporting.conftest import Loaded, fixed_clock


@pytest.mark.asyncio(loop_scope="module")
async def test_the_report_ranks_units_and_names_notable_cases_by_their_facts_only(
    march: Loaded,
) -> None:
    reports = MonthlyReports(march.pool, fixed_clock())
    report = await reports.build("demo", "2026-03")

    assert report.overview.figures.counts.received == 10
    assert report.overview.trend_granularity == "week"
    # Streets with five counted cases or more are ranked: dh (5); xs (1) is not.
    assert [(u.rank, u.code) for u in report.streets] == [(1, "dh"), (None, "xs")]
    assert all(u.rank is None for u in report.stations)  # none has five counted cases
    notable = {n.case_id: n for n in report.notable}
    # C2: two deadlines missed, reopened; C10: two missed; C11: escalated; C5: rated 3 is
    # not low enough; C7 (withdrawn) is not counted.
    assert list(notable) == ["C2", "C10", "C11"]
    assert (notable["C2"].overdue, notable["C2"].reopened, notable["C2"].satisfaction) == (2, 1, 4)
    assert notable["C2"].station == "东湖社区代表联络站"
    assert notable["C2"].representative == "李秀英"
    assert notable["C10"].category.zh == "未分类"

    html = reports.html(report)
    for text in ("示范区民情分析报告", "71.4%", "80.0%", "66.7%", "重点关注案件", "C10"):
        assert text in html
    # No free text: not the resident's comment, not the staff's replies or results.
    for text in ("王女士", "已联系相关部门", "已修复", "居民不满意", "路口信号灯"):
        assert text not in html
    rows = list(csv.reader(io.StringIO(reports.csv(report).lstrip("\ufeff"))))
    assert rows[1][:6] == ["区 district", "demo", "示范区", "", "10", "7"]
    assert rows[1][8] == "0.7143"
    assert {r[1] for r in rows if r[0] == "代表 representative"} == {"r1", "r2", "r3", "r4"}


def test_minqing_report_monthly_writes_html_pdf_and_csv(
    march: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINQING_DATABASE_URL", march.url)
    result = CliRunner().invoke(
        main,
        ["report", "monthly", "--district", "demo", "--month", "2026-03", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "report-demo-2026-03.csv",
        "report-demo-2026-03.html",
        "report-demo-2026-03.pdf",
    ]
    pdf = tmp_path / "report-demo-2026-03.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "示范区民情分析报告" in text
    assert "71.4%" in text


def test_minqing_reporting_rebuild_compares_and_swaps(
    march: Loaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINQING_DATABASE_URL", march.url)
    result = CliRunner().invoke(main, ["reporting", "rebuild", "--projection", "cases"])
    assert result.exit_code == 0, result.output
    assert "= cases" in result.output
    assert "与在线投影一致 / identical to the live projections" in result.output
    wrong = CliRunner().invoke(main, ["reporting", "rebuild", "--projection", "nothing"])
    assert wrong.exit_code == 1
    assert "没有这个投影" in wrong.output
    at = CliRunner().invoke(main, ["reporting", "rebuild", "--at", "2026-03-31T24:00+08:00"])
    assert at.exit_code == 0, at.output
    assert "reporting_asof" in at.output
