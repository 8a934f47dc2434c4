"""Reporting's refusals, each a kind of :mod:`eventkit.refusals` (the edge maps the kind
to its HTTP status)."""

from __future__ import annotations

from eventkit.refusals import Conflict, Forbidden, InvalidInput, NotFound


class DistrictNotFound(NotFound):
    """No such district, or not the caller's (another district's data is not found)."""

    code = "district-not-found"

    def __init__(self, district_id: str) -> None:
        super().__init__(
            "没有找到该区", "No such district", f"区代码 {district_id}", f"District {district_id}"
        )


class StationNotFound(NotFound):
    """No such station in the district."""

    code = "station-not-found"

    def __init__(self, station_code: str) -> None:
        super().__init__(
            "没有找到该联络站",
            "No such station",
            f"联络站代码 {station_code}",
            f"Station {station_code}",
        )


class RepresentativeNotFound(NotFound):
    """No such representative in the district."""

    code = "representative-not-found"

    def __init__(self, representative_id: str) -> None:
        super().__init__(
            "没有找到该代表",
            "No such representative",
            f"代表编号 {representative_id}",
            f"Representative {representative_id}",
        )


class RegisterNotFound(NotFound):
    """No such register (the six books and one form have names of their own)."""

    code = "register-not-found"

    def __init__(self, name: str, names: list[str]) -> None:
        super().__init__(
            "没有该登记簿",
            "No such register",
            f"登记簿 {name} 不存在，可用：{'、'.join(names)}",
            f"No register {name}; there are: {', '.join(names)}",
        )


class OutOfScope(Forbidden):
    """The caller's role sees only part of the district, and this is not in it."""

    code = "out-of-scope"

    def __init__(self, what_zh: str, what_en: str) -> None:
        super().__init__(
            "不在您的查看范围内",
            "Outside what you may see",
            f"您的角色只能查看自己负责的范围，不能查看{what_zh}",
            f"Your role sees only what it is responsible for, not {what_en}",
        )


class InvalidPeriod(InvalidInput):
    """A period that cannot be read or makes no sense."""

    code = "invalid-period"

    def __init__(self, detail: str, detail_en: str) -> None:
        super().__init__("统计期间无效", "Invalid period", detail, detail_en)


class InvalidCriteria(InvalidInput):
    """Assessment criteria that do not hold together."""

    code = "invalid-criteria"

    def __init__(self, detail: str, detail_en: str) -> None:
        super().__init__("评星标准无效", "Invalid assessment criteria", detail, detail_en)


class UnknownProjection(InvalidInput):
    """A rebuild was asked for a projection that does not exist."""

    code = "unknown-projection"

    def __init__(self, name: str, known: list[str]) -> None:
        names = ", ".join(known)
        super().__init__(
            "没有这个投影",
            "No such projection",
            f"{name}：可选 {names}",
            f"{name}: one of {names}",
        )


class RebuildRunning(Conflict):
    """Another rebuild of the same schema is running."""

    code = "rebuild-running"

    def __init__(self, schema: str) -> None:
        super().__init__(
            "已有重建正在进行",
            "A rebuild is already running",
            f"模式 {schema} 正在重建，请稍后再试",
            f"Schema {schema} is being rebuilt; try again later",
        )
