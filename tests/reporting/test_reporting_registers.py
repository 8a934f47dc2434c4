"""The registers (六簿一表), activities in the archive and the station assessment, callbacks
in the satisfaction rate, and QR scans, on the demo district's directory and October's
cases at 东湖街道人大代表之家 (real database, the live consumer's projections)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import pytest_asyncio

from eventkit.identity import Principal, Role
from services.reporting import archive_views, register_views, station_views, views
from services.reporting.assessment import DEFAULT_CRITERIA
from services.reporting.errors import OutOfScope, RegisterNotFound
from services.reporting.periods import Period, zone
from services.reporting.register_files import RegisterFiles
from services.reporting.registers import REGISTERS
from tests.reporting.conftest import Loaded
from tests.reporting.liaison_history import NOW, demo_file, loaded_liaison

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = Principal("admin_demo", Role.DISTRICT_ADMIN, "demo")
AUTUMN = Period(date(2026, 8, 1), date(2026, 11, 30), zone("Asia/Shanghai"))
OCTOBER = Period(date(2026, 10, 1), date(2026, 10, 31), zone("Asia/Shanghai"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def liaison(pg_admin_url: str) -> AsyncIterator[Loaded]:
    async with loaded_liaison(pg_admin_url) as loaded:
        yield loaded


def held(kind: str, station: str = "dh_home", period: Period = AUTUMN) -> int:
    """What the demo file records: activities of ``kind`` at ``station`` in ``period``."""
    return sum(
        a.kind.value == kind
        and a.station == station
        and period.first_day <= a.held_on <= period.last_day
        for a in demo_file().activities
    )


async def test_each_register_of_the_demo_home_is_produced_from_the_events(
    liaison: Loaded,
) -> None:
    async with views.reading(liaison.pool, ADMIN, "demo") as ctx:
        found = {
            name: await register_views.register(ctx, "dh_home", name, AUTUMN) for name in REGISTERS
        }

    assert len(found["theme"].rows) == held("theme") > 0
    assert len(found["training"].rows) == held("training") > 0
    assert len(found["receptions"].rows) == held("reception") > 0
    reception = found["receptions"].rows[0]
    assert reception[0] == "2026-08-06"  # the first Thursday of August (r001's rule)
    assert "王建国" in str(reception[3])
    members = {row[1]: row for row in found["representatives"].rows}
    assert members["r001"][0] == "王建国"
    assert members["r001"][4] == "是"  # a leading cadre
    attended = sum("r001" in a.representatives for a in demo_file().activities)
    assert members["r001"][7] == attended
    duties = {row[1]: row for row in found["duties"].rows}
    receptions_of_r001 = sum(
        "r001" in a.representatives and a.kind.value == "reception" for a in demo_file().activities
    )
    assert duties["r001"][2 + 4] == receptions_of_r001  # the reception column
    assert duties["r001"][-1] == 1  # one suggestion made (L3)
    [suggestion] = found["suggestions"].rows
    assert suggestion[1:4] == ["L3", "王建国", "关于优化东湖路公交站点的建议"]
    assert suggestion[6:] == ["区交通运输局", "是"]
    feedback = {row[1]: row for row in found["feedback"].rows}
    assert set(feedback) == {"L1", "L2", "L3", "L4"}
    assert (feedback["L1"][-2], feedback["L1"][-1]) == (5, "回访")
    assert (feedback["L2"][-2], feedback["L2"][-1]) == (5, "居民评价")
    assert feedback["L4"][-2] is None


async def test_a_callback_changes_the_satisfaction_a_case_counts_with(liaison: Loaded) -> None:
    async with views.reading(liaison.pool, ADMIN, "demo") as ctx:
        stats = (await ctx.reader.case_stats("demo", OCTOBER))[0]

    # L1 was rated 2 by the resident and 5 on the callback a day later: satisfied. L2 5.
    assert (stats.rated, stats.satisfied, stats.satisfaction_sum) == (2, 2, 10)


async def test_activities_count_in_the_archive_and_the_station_assessment(
    liaison: Loaded,
) -> None:
    async with views.reading(liaison.pool, ADMIN, "demo") as ctx:
        archive = await archive_views.archive(ctx, "r001", AUTUMN)
        detail = await station_views.station_detail(ctx, "dh_home", AUTUMN, DEFAULT_CRITERIA)

    attended = [a for a in demo_file().activities if "r001" in a.representatives]
    assert archive.representative.activity.activities == len(attended)
    assert [a.held_on for a in archive.attended] == sorted(a.held_on.isoformat() for a in attended)
    assert archive.activities_recorded is True
    at_home = sum(a.station == "dh_home" for a in demo_file().activities)
    assert detail.activities_held == at_home
    october = next(a for a in detail.assessments if a.month == "2026-10")
    point = next(p for p in october.details if p.metric == "activities")
    expected = sum(a.station == "dh_home" and a.held_on.month == 10 for a in demo_file().activities)
    assert point.value == expected
    assert point.points == (1 if expected >= 4 else 0)
    assert f"{expected} 次" in point.reason.zh


async def test_the_station_shows_its_qr_scans_against_the_opinions_submitted(
    liaison: Loaded,
) -> None:
    async with views.reading(liaison.pool, ADMIN, "demo") as ctx:
        detail = await station_views.station_detail(ctx, "dh_home", OCTOBER, DEFAULT_CRITERIA)
        quiet = await station_views.station_detail(ctx, "dh_hubin", OCTOBER, DEFAULT_CRITERIA)

    # 10 October's later record holds its totals (45, 3); 11 October adds (10, 0).
    assert detail.qr is not None
    assert (detail.qr.scans, detail.qr.opinions, detail.qr.conversion) == (55, 3, 0.0545)
    assert quiet.qr is not None
    assert (quiet.qr.scans, quiet.qr.conversion) == (0, None)


async def test_registers_are_the_station_staff_s_and_their_names_are_checked(
    liaison: Loaded,
) -> None:
    other = Principal("lo_dh_02", Role.LIAISON, "demo")
    rep = Principal("r001", Role.REPRESENTATIVE, "demo")
    async with views.reading(liaison.pool, other, "demo") as ctx:
        with pytest.raises(OutOfScope):
            await register_views.register(ctx, "dh_home", "theme", AUTUMN)
        mine = await register_views.register_index(ctx, "dh_donghu", AUTUMN)
        with pytest.raises(RegisterNotFound):
            await register_views.register(ctx, "dh_donghu", "ledger", AUTUMN)
    async with views.reading(liaison.pool, rep, "demo") as ctx:
        with pytest.raises(OutOfScope):
            await register_views.register_index(ctx, "dh_home", AUTUMN)
    assert [r.name for r in mine.registers] == list(REGISTERS)


async def test_the_registers_are_written_as_printable_html_and_csv(
    liaison: Loaded, tmp_path: Path
) -> None:
    files = RegisterFiles(liaison.pool, lambda: NOW)

    written = await files.write("demo", "dh_home", "2026-08-01", "2026-11-30", tmp_path)

    assert len(written) == 2 * len(REGISTERS)
    theme_csv = tmp_path / "dh_home-theme-2026-08-01-2026-11-30.csv"
    text = theme_csv.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:2] == ["日期 / date", "活动名称 / title"]
    assert len(rows) == 1 + held("theme")
    page = (tmp_path / "dh_home-receptions-2026-08-01-2026-11-30.html").read_text("utf-8")
    assert "接待选民登记簿" in page
    assert "@page" in page  # prints on A4 landscape
    assert "王建国" in page


async def test_a_rebuild_of_the_liaison_history_equals_what_the_consumer_projected(
    liaison: Loaded,
) -> None:
    result = await liaison.service.rebuild.run(dry_run=True)

    tables = {c.table: c for c in result.comparisons}
    assert tables["activities"].live_rows == len(demo_file().activities)
    assert tables["scans"].live_rows == 2
    assert result.equal, [c.differences for c in result.comparisons if not c.equal]
