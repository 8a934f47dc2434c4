"""The liaison work through ``minqing`` (in process, on the session's real database):
staff commands on a case, activities, reception days cancelled, the roster."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner, Result

from contracts import Actor, ActorRole, Location, OpinionSubmitted
from eventkit.db import create_pool
from eventkit.loop import run as run_loop
from eventkit.store import EventStore
from minqing.cli import main
from services.routing.bootstrap import bootstrap
from services.routing.ids import case_id_for
from services.routing.settings import RoutingSettings
from tests.routing.routing_support import DEMO_FILE, append_event


@pytest.fixture
def minqing(database_url: str) -> CliRunner:
    return CliRunner(env={"MINQING_DATABASE_URL": database_url, "MINQING_LOG_LEVEL": "WARNING"})


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args), catch_exceptions=False)


def open_case(database_url: str, text: str) -> str:
    """An opinion appended as intake would, and its case opened as the consumer would."""

    async def work() -> str:
        settings = RoutingSettings(database_url=database_url, database_role=None)
        pool = await create_pool(database_url)
        try:
            opinion = OpinionSubmitted(
                district_id="demo",
                occurred_at=datetime.now(UTC),
                actor=Actor(id="subj_" + uuid.uuid4().hex[:8], role=ActorRole.RESIDENT),
                opinion_id="op_" + uuid.uuid4().hex[:12],
                channel="walk_in",
                text=text,
                location=Location(station_code="dh_home", community="东湖社区"),
            )
            envelope = await append_event(EventStore(pool), opinion)
            async with bootstrap(settings, pool=pool, background=False) as routing:
                await routing.consumer.apply(envelope)
            return case_id_for("demo", opinion.opinion_id)
        finally:
            await pool.close()

    return run_loop(work())


def test_the_liaison_work_is_done_from_the_command_line(
    minqing: CliRunner, database_url: str
) -> None:
    assert run(minqing, "directory", "import", str(DEMO_FILE)).exit_code == 0

    listed = run(
        minqing, "liaison", "reception", "list", "--district", "demo", "--station", "dh_home"
    )
    assert listed.exit_code == 0, listed.output
    day = re.search(
        r"^(\d{4}-\d{2}-\d{2}) \S+ 王建国 领导干部 \(r001\) 按计划", listed.output, re.M
    )
    assert day is not None, listed.output
    cancelled = run(
        minqing,
        *("liaison", "reception", "cancel", "--district", "demo", "--representative", "r001"),
        *("--station", "dh_home", "--day", day.group(1), "--reason", "代表外出"),
    )
    assert cancelled.exit_code == 0, cancelled.output
    after = run(
        minqing, "liaison", "reception", "list", "--district", "demo", "--station", "dh_home"
    )
    assert f"{day.group(1)}" in after.output
    assert "已取消" in after.output
    again = run(
        minqing,
        *("liaison", "reception", "cancel", "--district", "demo", "--representative", "r001"),
        *("--station", "dh_home", "--day", day.group(1)),
    )
    assert again.exit_code != 0
    assert "没有" in again.output

    recorded = run(
        minqing,
        *("liaison", "activity", "record", "--district", "demo", "--station", "dh_home"),
        *("--kind", "inspection", "--title", "社区养老服务站视察", "--on", "2026-11-20"),
        *("--rep", "r001", "--rep", "r014", "--residents", "12", "--opinions", "4"),
    )
    assert recorded.exit_code == 0, recorded.output
    shown = run(
        minqing,
        *("liaison", "activities", "--district", "demo", "--station", "dh_home"),
        *("--from", "2026-11-01", "--to", "2026-11-30"),
    )
    assert "社区养老服务站视察" in shown.output
    assert "调研视察" in shown.output

    case_id = open_case(database_url, "小区门口路灯不亮，晚上很黑")
    callback = run(
        minqing,
        *("case", "act", "accept", case_id, "--district", "demo", "--as", "liaison:lo_dh_01"),
    )
    assert callback.exit_code == 0, callback.output
    resolved = run(
        minqing,
        *("case", "act", "resolve", case_id, "--district", "demo", "--as", "liaison:lo_dh_01"),
        *("--set", "result=已更换路灯"),
    )
    assert resolved.exit_code == 0, resolved.output
    called = run(
        minqing,
        *("case", "act", "callback", case_id, "--district", "demo", "--as", "liaison:lo_dh_01"),
        *("--set", "satisfaction=5", "--set", "resolved=true"),
    )
    assert called.exit_code == 0, called.output
    assert "callback: 5/5 resolved=True by lo_dh_01" in called.output
    refused = run(
        minqing,
        *("case", "act", "answer_suggestion", case_id, "--district", "demo"),
        *("--as", "liaison:lo_dh_01", "--set", "answer=x", "--set", "answered_by=y"),
    )
    assert refused.exit_code != 0
    assert "当前状态不允许此操作" in refused.output

    roster = run(minqing, "liaison", "roster", "--district", "demo", "--station", "dh_home")
    assert "sp_dh_01" in roster.output
    departments = run(minqing, "liaison", "departments", "--district", "demo")
    assert "区城市管理局" in departments.output
