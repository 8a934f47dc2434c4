"""``minqing intake import-12345``: work orders from the 12345 hotline, as an operator runs it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from contracts import Channel
from eventkit.store import EventStore
from services.intake.hotline import RowRejected, parse_time, parse_work_order
from tests.every_district import every_district
from tests.intake.intake_support import DISTRICT, PHONE, STATION
from tests.sealed_support import opened

EXAMPLES = Path(__file__).resolve().parents[2] / "services" / "intake" / "examples"
HEADER = "工单编号,来电时间,诉求类别,诉求内容,诉求地址,所属社区,联系人,联系电话,承办站点,附件"


def import_12345(
    database_url: str, path: Path, *extra: str, district: str = DISTRICT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "minqing.cli",
            "intake",
            "import-12345",
            str(path),
            "--district",
            district,
            *extra,
        ],
        env={**os.environ, "MINQING_DATABASE_URL": database_url, "MINQING_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def opinions(pool: asyncpg.Pool) -> list[dict[str, object]]:
    rows = await every_district(pool).fetch(
        "SELECT data FROM eventstore.events WHERE event_type = 'OpinionSubmitted' "
        "ORDER BY global_position"
    )
    return [await opened(pool, r["data"]) for r in rows]


async def test_the_shipped_examples_import_and_a_second_import_creates_nothing(
    directory: None, database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    report = tmp_path / "report.csv"
    first = import_12345(database_url, EXAMPLES / "12345_workorders.csv", "--report", str(report))

    assert first.returncode == 0, first.stdout + first.stderr
    assert "4 imported, 0 already imported, 0 rejected" in first.stdout
    imported = await opinions(pool)
    assert [o["external_ref"] for o in imported] == [
        "2025031400731",
        "2025031400802",
        "2025031400915",
        "2025031401033",
    ]
    assert {o["channel"] for o in imported} == {"hotline_12345"}
    assert imported[0]["occurred_at"] == "2025-03-14T09:30:12+08:00"  # when the call came
    assert imported[0]["actor"] == {"id": "12345-import", "role": "hotline"}
    assert imported[1]["attachments"] == ["https://files.example.cn/12345/2025031400802/1.jpg"]
    assert imported[2]["submitter"] is None  # an anonymous caller
    with report.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [r["结果"] for r in rows] == ["已导入"] * 4
    assert all(len(r["查询码"]) == 14 for r in rows)

    again = import_12345(database_url, EXAMPLES / "12345_workorders.csv")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 imported, 4 already imported, 0 rejected" in again.stdout
    assert len(await opinions(pool)) == 4

    as_json = import_12345(database_url, EXAMPLES / "12345_workorders.json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    assert "2 imported" in as_json.stdout
    assert [o["external_ref"] for o in await opinions(pool)][4:] == [
        "2025031501107",
        "2025031501188",
    ]


async def test_bad_rows_are_reported_with_their_reason_and_never_stop_the_good_ones(
    directory: None, database_url: str, store: EventStore, tmp_path: Path
) -> None:
    def row(number: str, text: str, *, at: str = "2025-03-16 08:00:00", **extra: str) -> str:
        name, phone = extra.get("name", ""), extra.get("phone", "")
        station, attachment = extra.get("station", ""), extra.get("attachment", "")
        return f"{number},{at},市政设施,{text},东门,科育社区,{name},{phone},{station},{attachment}"

    good = row("2025031600001", "楼下路灯坏了一个多月没人修", name="王女士", phone=PHONE)
    lines = [
        HEADER,
        good,  # row 2
        row("", "没有工单编号的一行记录"),  # row 3
        row("2025031600003", "来电时间写错的一行记录", at="昨天上午"),  # row 4
        row("2025031600004", "太短"),  # row 5
        row("2025031600005", "电话号码是座机的一行记录", name="赵先生", phone="1380000"),  # 6
        row("2025031600006", "承办站点不存在的一行记录", station="no_such_station"),  # row 7
        row("2025031600007", "附件不是https的一行", attachment="http://files.example.cn/a.jpg"),
        row("2025031600008", "指定承办站点的一行记录", station=STATION),  # row 9
        good,  # row 10: the same work order twice in the file
        good.replace("楼下路灯", "楼上路灯"),  # row 11: the same number, another text
    ]
    path = tmp_path / "派单.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))  # as Excel saves it
    report = tmp_path / "report.csv"

    result = import_12345(database_url, path, "--report", str(report))

    assert result.returncode == 1
    assert "10 rows: 3 imported, 1 already imported, 6 rejected" in result.stdout
    out = result.stdout
    assert "第 3 行 工单 -：缺少工单编号" in out
    assert "第 4 行 工单 2025031600003：来电时间格式不正确" in out
    assert "第 5 行" in out
    assert "text is too short" in out
    assert "注意：第 6 行 工单 2025031600005" in out  # imported, with a warning
    assert "not a mobile number" in out
    assert "第 7 行" in out
    assert "Unknown station" in out
    assert "第 8 行" in out
    assert "https:// URL" in out
    assert "第 11 行" in out
    assert "imported before with other content" in out
    assert "1380000" not in out + result.stderr
    events = [e.data for e in await store.read_all() if e.event_type == "OpinionSubmitted"]
    assert [(e["external_ref"], e["location"]["station_code"]) for e in events] == [
        ("2025031600001", None),
        ("2025031600005", None),
        ("2025031600008", STATION),
    ]
    with report.open(encoding="utf-8-sig") as f:
        outcomes = {int(r["行号"]): r["结果"] for r in csv.DictReader(f)}
    assert outcomes == {
        2: "已导入",
        3: "未导入",
        4: "未导入",
        5: "未导入",
        6: "已导入",
        7: "未导入",
        8: "未导入",
        9: "已导入",
        10: "已导入（重复）",
        11: "未导入",
    }


async def test_a_file_that_cannot_be_read_is_refused_whole(
    directory: None, database_url: str, tmp_path: Path
) -> None:
    no_columns = tmp_path / "wrong.csv"
    no_columns.write_text("编号,内容\n1,路灯坏了\n", encoding="utf-8")
    result = import_12345(database_url, no_columns)
    assert result.returncode == 1
    assert "缺少必需的列：工单编号、来电时间、诉求内容" in result.stderr

    not_a_list = tmp_path / "wrong.json"
    not_a_list.write_text(json.dumps({"count": 1}), encoding="utf-8")
    assert import_12345(database_url, not_a_list).returncode == 1

    unknown = import_12345(database_url, EXAMPLES / "12345_workorders.csv", district="atlantis")
    assert unknown.returncode == 1
    assert "not registered" in unknown.stderr


async def test_a_landline_is_sealed_as_given_and_the_row_imported_with_a_warning(
    directory: None, database_url: str, store: EventStore, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    from eventkit.privacy import PersonalDataVault

    landline = "010-6275 1234"
    lines = [
        HEADER,
        f"2025031700001,2025-03-17 08:00:00,市政设施,楼下路灯坏了一个多月没人修,东门,,"
        f"张先生,{landline},,",
        f"2025031700002,2025-03-17 09:00:00,市政设施,楼道里堆满了杂物没人清,东门,,"
        f"张先生,{landline},,",
    ]
    path = tmp_path / "landline.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = tmp_path / "report.csv"

    result = import_12345(database_url, path, "--report", str(report))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rows: 2 imported, 0 already imported, 0 rejected" in result.stdout
    assert "warning, row 2: the phone is not a mobile number" in result.stdout
    assert landline not in result.stdout + result.stderr
    events = [e.data for e in await store.read_all() if e.event_type == "OpinionSubmitted"]
    submitters = [e["submitter"] for e in events]
    assert all(s is not None for s in submitters)
    # Sealed as given, never a blind index: two calls are two subjects, not one resident.
    assert submitters[0]["subject_id"] != submitters[1]["subject_id"]
    opened = await PersonalDataVault(pool).open(
        submitters[0]["subject_id"], {"phone": submitters[0]["phone_ciphertext"]}
    )
    assert opened == {"phone": landline}
    with report.open(encoding="utf-8-sig") as f:
        rows = {int(r["行号"]): r for r in csv.DictReader(f)}
    assert rows[2]["结果"] == "已导入"
    assert "not a mobile number" in rows[2]["reason"]


# --- rows, without I/O --------------------------------------------------------------

NOW = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_work_order_row_is_checked_on_its_own() -> None:
    fields = {
        "number": "2025031400731",
        "called_at": "2025-03-14 09:30:00",
        "text": "小区门口井盖松动",
        "attachments": "https://img.example.cn/1.jpg; https://img.example.cn/2.jpg",
        "lat": "39.9",
        "long": "116.3",
    }
    order = parse_work_order(2, fields, tz=SHANGHAI, now=NOW + timedelta(hours=1))
    assert order.called_at == NOW
    assert order.attachments == ("https://img.example.cn/1.jpg", "https://img.example.cn/2.jpg")
    command = order.command(DISTRICT)
    assert command.channel is Channel.HOTLINE_12345
    assert command.external_ref == "2025031400731"
    with pytest.raises(RowRejected, match="call time"):
        parse_work_order(3, {**fields, "called_at": "昨天"}, tz=SHANGHAI, now=NOW)
    with pytest.raises(RowRejected, match="number is missing"):
        parse_work_order(4, {**fields, "number": " "}, tz=SHANGHAI, now=NOW)
    with pytest.raises(RowRejected, match="future"):
        parse_work_order(5, fields, tz=SHANGHAI, now=NOW - timedelta(days=1))


def test_call_times_are_read_as_the_hotline_writes_them() -> None:
    for text in (
        "2025-03-14 09:30:00",
        "2025/03/14 09:30",
        "2025年3月14日 9:30",
        "2025-03-14T01:30Z",
    ):
        assert parse_time(text, SHANGHAI) == NOW
