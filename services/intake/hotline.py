"""Work orders dispatched by the 12345 city hotline (市民热线派发), imported from CSV or
JSON files: one opinion per work order.

The work-order number is the idempotency key: importing a file again creates nothing
new. Every row is judged on its own: a bad row is reported with its reason and never
stops the good ones.

Columns (CSV header, or JSON keys; Chinese or English names):

========== ================= ========= =============================================
中文        English            required  content
========== ================= ========= =============================================
工单编号    work_order_no      yes       the hotline's number, e.g. 2025031400731
来电时间    called_at          yes       2025-03-14 09:30:00 (Beijing time if no zone)
诉求内容    text               yes       what the caller said, 5–4000 characters
诉求类别    category                     the district taxonomy's code, or the
                                         hotline's own category name
诉求地址    address                      where the matter is
所属街道    street                       informational only
所属社区    community                    the caller's community
承办站点    station_code                 a liaison station code, if the hotline named one
联系人      contact_name                 sealed (never stored in clear)
联系电话    contact_phone                mainland mobile number, sealed likewise
经度        long                         WGS84
纬度        lat                          WGS84
附件        attachments                  https URLs separated by ; or whitespace
========== ================= ========= =============================================

CSV files are read as UTF-8 (with or without BOM), or GB18030 as Excel saves them on
Chinese Windows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from contracts import Channel
from eventkit.identity import Principal, Role
from eventkit.logging import get_logger
from eventkit.refusals import Refusal
from services.intake.errors import IdempotencyKeyReused
from services.intake.idempotency import IdempotencyKey
from services.intake.submission import Submissions
from services.intake.submission_rules import Contact, SubmitOpinion
from services.intake.text import normalise_phone
from services.intake.tracking_codes import format_tracking_code

log = get_logger(__name__)

HEADERS: Final[dict[str, tuple[str, ...]]] = {
    "number": ("工单编号", "工单号", "work_order_no"),
    "called_at": ("来电时间", "受理时间", "called_at"),
    "text": ("诉求内容", "text"),
    "category": ("诉求类别", "category"),
    "address": ("诉求地址", "address"),
    "street": ("所属街道", "street"),
    "community": ("所属社区", "community"),
    "station_code": ("承办站点", "station_code"),
    "contact_name": ("联系人", "contact_name"),
    "contact_phone": ("联系电话", "contact_phone"),
    "long": ("经度", "long"),
    "lat": ("纬度", "lat"),
    "attachments": ("附件", "attachments"),
}
REQUIRED: Final = ("number", "called_at", "text")
_NUMBER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-./]{0,63}$")
_ZH_TIME: Final = re.compile(
    r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*(?:(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2})秒?)?)?$"
)


class ImportFileError(Exception):
    """The file as a whole cannot be read (format, encoding, columns)."""


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported, and why."""

    row: int
    number: str | None
    reason: str
    reason_en: str


class RowRejected(Exception):
    """A row cannot become an opinion."""

    def __init__(self, reason: str, reason_en: str) -> None:
        super().__init__(reason_en)
        self.reason = reason
        self.reason_en = reason_en


@dataclass(frozen=True)
class WorkOrder:
    """One dispatched work order, checked."""

    row: int
    number: str
    called_at: datetime
    text: str
    category: str | None = None
    address: str | None = None
    community: str | None = None
    station_code: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    lat: float | None = None
    long: float | None = None
    attachments: tuple[str, ...] = ()

    def command(self, district_id: str) -> SubmitOpinion:
        """The submission this work order makes."""
        contact = (
            Contact(self.contact_name, self.contact_phone)
            if self.contact_name or self.contact_phone
            else None
        )
        return SubmitOpinion(
            channel=Channel.HOTLINE_12345,
            text=self.text,
            station_code=self.station_code,
            district_id=district_id,
            category_hint=self.category,
            community=self.community,
            address=self.address,
            lat=self.lat,
            long=self.long,
            contact=contact,
            attachments=self.attachments,
            external_ref=self.number,
            occurred_at=self.called_at,
        )

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a re-import to count as the same work order."""
        return {
            "called_at": self.called_at.isoformat(),
            "text": self.text,
            "category": self.category,
            "address": self.address,
            "community": self.community,
            "station_code": self.station_code,
            "contact_name": self.contact_name,
            "contact_phone": self.contact_phone,
            "lat": self.lat,
            "long": self.long,
            "attachments": list(self.attachments),
        }


# --- reading files ------------------------------------------------------------------


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("文件编码无法识别（应为 UTF-8 或 GB18030）/ unknown encoding")


_ALIASES: Final = {alias: name for name, aliases in HEADERS.items() for alias in aliases}


def _canonical(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Map the file's column names to ours; unknown columns are ignored."""
    row: dict[str, Any] = {}
    for key, value in raw.items():
        name = _ALIASES.get(str(key).strip()) if key is not None else None
        if name is not None:
            row[name] = value
    return row


def read_rows(path: Path, fmt: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(row number, fields) of every work order in a CSV or JSON file.

    CSV rows are numbered as a spreadsheet shows them (the header is row 1); JSON
    entries from 1.
    """
    kind = fmt or path.suffix.lower().lstrip(".")
    text = _decode(path.read_bytes())
    if kind == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"JSON 格式错误 / malformed JSON: {exc}") from exc
        if isinstance(document, Mapping):
            document = document.get("work_orders", document.get("工单"))
        if not isinstance(document, list):
            raise ImportFileError("JSON 应为工单数组 / JSON must be a list of work orders")
        return [
            (index, _canonical(entry) if isinstance(entry, Mapping) else {})
            for index, entry in enumerate(document, start=1)
        ]
    if kind == "csv":
        reader = csv.DictReader(io.StringIO(text))
        present = {_ALIASES[h.strip()] for h in reader.fieldnames or [] if h.strip() in _ALIASES}
        missing = [HEADERS[name][0] for name in REQUIRED if name not in present]
        if missing:
            raise ImportFileError(
                f"缺少必需的列：{'、'.join(missing)} / missing columns: "
                + ", ".join(HEADERS[name][-1] for name in REQUIRED if name not in present)
            )
        return [(index, _canonical(raw)) for index, raw in enumerate(reader, start=2)]
    raise ImportFileError(f"不支持的文件格式 {kind!r}（csv 或 json）/ use .csv or .json")


# --- checking rows --------------------------------------------------------------------


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_time(value: str, tz: ZoneInfo) -> datetime:
    """A call time as the hotline writes it; Beijing time when no zone is given."""
    match = _ZH_TIME.match(value)
    if match:
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
        return datetime(y, mo, d, h, mi, s, tzinfo=tz)
    parsed = datetime.fromisoformat(value.replace("/", "-"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _number(value: Any, name: str, name_en: str) -> float | None:
    text = _clean(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise RowRejected(f"{name}不是数字", f"{name_en} is not a number") from None


def parse_work_order(
    row: int, fields: Mapping[str, Any], *, tz: ZoneInfo, now: datetime
) -> WorkOrder:
    """A checked work order; :class:`RowRejected` says what is wrong with the row."""
    number = _clean(fields.get("number"))
    if number is None:
        raise RowRejected("缺少工单编号", "the work-order number is missing")
    if not _NUMBER.match(number):
        raise RowRejected("工单编号格式不正确", "the work-order number is malformed")
    raw_time = _clean(fields.get("called_at"))
    if raw_time is None:
        raise RowRejected("缺少来电时间", "the call time is missing")
    try:
        called_at = parse_time(raw_time, tz)
    except ValueError:
        raise RowRejected(
            "来电时间格式不正确（如 2025-03-14 09:30:00）",
            "the call time is malformed (e.g. 2025-03-14 09:30:00)",
        ) from None
    if called_at > now + timedelta(minutes=5):
        raise RowRejected("来电时间晚于当前时间", "the call time is in the future")
    text = _clean(fields.get("text"))
    if text is None:
        raise RowRejected("缺少诉求内容", "the text is missing")
    attachments = tuple(
        part for part in re.split(r"[;；\s]+", _clean(fields.get("attachments")) or "") if part
    )
    return WorkOrder(
        row=row,
        number=number,
        called_at=called_at,
        text=text,
        category=_clean(fields.get("category")),
        address=_clean(fields.get("address")),
        community=_clean(fields.get("community")),
        station_code=_clean(fields.get("station_code")),
        contact_name=_clean(fields.get("contact_name")),
        contact_phone=_clean(fields.get("contact_phone")),
        lat=_number(fields.get("lat"), "纬度", "lat"),
        long=_number(fields.get("long"), "经度", "long"),
        attachments=attachments,
    )


# --- importing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """A row that became an opinion (or already had, on a re-import)."""

    row: int
    number: str
    opinion_id: str
    tracking_code: str
    duplicate: bool


@dataclass
class ImportReport:
    """Every row's outcome."""

    imported: list[Imported] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Rejection] = field(default_factory=list)
    """Rows imported with something an operator should know (e.g. a landline kept as
    given): the same shape as a rejection, but the row is in."""

    @property
    def created(self) -> list[Imported]:
        """Rows that made a new opinion now."""
        return [i for i in self.imported if not i.duplicate]

    @property
    def duplicates(self) -> list[Imported]:
        """Rows imported before (same number, same content): nothing new."""
        return [i for i in self.imported if i.duplicate]

    def write_csv(self, path: Path) -> None:
        """Every row's outcome as CSV (UTF-8 with BOM, so Excel opens it right)."""
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["行号", "工单编号", "结果", "意见编号", "查询码", "原因", "reason"])
            warned = {w.row: w for w in self.warnings}
            for i in sorted(self.imported, key=lambda x: x.row):
                warning = warned.get(i.row)
                writer.writerow(
                    [
                        i.row,
                        i.number,
                        "已导入（重复）" if i.duplicate else "已导入",
                        i.opinion_id,
                        format_tracking_code(i.tracking_code),
                        warning.reason if warning else "",
                        warning.reason_en if warning else "",
                    ]
                )
            for r in sorted(self.rejected, key=lambda x: x.row):
                writer.writerow([r.row, r.number or "", "未导入", "", "", r.reason, r.reason_en])


def _reason(error: Refusal) -> tuple[str, str]:
    if error.errors:
        return (
            "；".join(e.message for e in error.errors),
            "; ".join(e.message_en for e in error.errors),
        )
    zh = error.title + (f"：{error.detail}" if error.detail else "")
    en = error.title_en + (f": {error.detail_en}" if error.detail_en else "")
    return zh, en


async def import_work_orders(
    submissions: Submissions,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    district_id: str,
    operator: str,
    tz: ZoneInfo,
    now: datetime,
    hash_key: bytes | Sequence[bytes],
) -> ImportReport:
    """Submit each row as a 12345 opinion of ``district_id``; report every outcome."""
    report = ImportReport()
    hotline = Principal(subject=operator, role=Role.HOTLINE, district_id=district_id)
    for row, fields in rows:
        number = _clean(fields.get("number"))
        try:
            order = parse_work_order(row, fields, tz=tz, now=now)
            key = IdempotencyKey.of(
                f"12345:{district_id}", order.number, order.fingerprint(), secret=hash_key
            )
            receipt = await submissions.submit(order.command(district_id), hotline, key=key)
        except RowRejected as exc:
            report.rejected.append(Rejection(row, number, exc.reason, exc.reason_en))
            continue
        except IdempotencyKeyReused:
            report.rejected.append(
                Rejection(
                    row,
                    number,
                    "该工单编号已导入，但内容与之前不同；请核对后用新编号或联系热线",
                    "this work order was imported before with other content",
                )
            )
            continue
        except Refusal as exc:
            zh, en = _reason(exc)
            report.rejected.append(Rejection(row, number, zh, en))
            continue
        except Exception as exc:  # one broken row must not stop the others
            log.exception("work order failed", row=row)
            report.rejected.append(
                Rejection(
                    row, number, f"系统错误：{type(exc).__name__}", f"error: {type(exc).__name__}"
                )
            )
            continue
        report.imported.append(
            Imported(row, order.number, receipt.opinion_id, receipt.tracking_code, receipt.replayed)
        )
        if order.contact_phone is not None and normalise_phone(order.contact_phone) is None:
            # Never echo the number: the report is a file operators pass around.
            report.warnings.append(
                Rejection(
                    row,
                    order.number,
                    "联系电话不是手机号（如座机），已按原样加密保存，不用于识别同一居民",
                    "the phone is not a mobile number (a landline?): sealed as given, "
                    "not used to recognise the resident",
                )
            )
    return report
