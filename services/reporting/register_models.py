"""What the registers' API and pages answer (every field declared, unknown ones
refused): a register's columns and rows, and the list of a station's registers."""

from __future__ import annotations

from services.reporting.api_models import Answer, DistrictView, Label, PeriodView


class RegisterColumn(Answer):
    key: str
    label: Label


class RegisterView(Answer):
    """One register (六簿一表) of a station over a period."""

    district: DistrictView
    period: PeriodView
    station_code: str
    station_name: str
    name: str
    title: Label
    columns: list[RegisterColumn]
    rows: list[list[str | int | None]]
    """One list per row, in the columns' order."""


class RegisterLink(Answer):
    name: str
    title: Label
    rows: int


class RegisterIndex(Answer):
    """The station's registers over a period, with how many rows each holds."""

    district: DistrictView
    period: PeriodView
    station_code: str
    station_name: str
    registers: list[RegisterLink]
