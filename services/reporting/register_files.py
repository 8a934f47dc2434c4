"""A station's registers written to files (``minqing report registers``): each register as
a printable, self-contained HTML page and as CSV (UTF-8 with a BOM, bilingual headings),
for the whole district's view (as the monthly report is made)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from jinja2 import Environment, FileSystemLoader, select_autoescape

from eventkit.clock import Clock
from eventkit.identity import Principal, Role
from services.reporting import register_views, views
from services.reporting.i18n import TEXT, Lang
from services.reporting.periods import period
from services.reporting.register_models import RegisterView
from services.reporting.registers import REGISTERS
from services.reporting.reports import REPORTER, STYLESHEET, TEMPLATES

REGISTER_STYLESHEET = Path(__file__).parent / "static" / "register.css"


class RegisterFiles:
    """Writes a station's registers for a period."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        self._templates = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
        )

    async def build(
        self, district_id: str, station_code: str, first: str | None, last: str | None, lang: Lang
    ) -> list[RegisterView]:
        """Every register of the station over the period from ``first`` to ``last``."""
        who = Principal(REPORTER, Role.DISTRICT_ADMIN, district_id)
        async with views.reading(self._pool, who, district_id) as ctx:
            when = period(first, last, ctx.tz, self._clock())
            return [
                await register_views.register(ctx, station_code, name, when, lang)
                for name in REGISTERS
            ]

    def html(self, register: RegisterView, lang: Lang) -> str:
        """One register as a self-contained printable page."""
        css = STYLESHEET.read_text(encoding="utf-8") + REGISTER_STYLESHEET.read_text(
            encoding="utf-8"
        )
        template = self._templates.get_template("register_print.html")
        return template.render(register=register, t=TEXT[lang], css=css)

    async def write(
        self,
        district_id: str,
        station_code: str,
        first: str | None,
        last: str | None,
        folder: Path,
        lang: Lang = "zh",
    ) -> list[Path]:
        """Write every register of the station as HTML and CSV into ``folder``."""
        found = await self.build(district_id, station_code, first, last, lang)
        files: dict[Path, str] = {}
        for register in found:
            stem = (
                f"{station_code}-{register.name}-"
                f"{register.period.first_day}-{register.period.last_day}"
            )
            files[folder / f"{stem}.html"] = self.html(register, lang)
            files[folder / f"{stem}.csv"] = register_views.register_csv(register)
        await asyncio.to_thread(_write, folder, files)
        return list(files)


def _write(folder: Path, files: dict[Path, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
