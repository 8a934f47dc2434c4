"""The district's categories of opinions: the QR form's choice and Open311's services.

The one place intake learns categories from. Routing owns the taxonomy: it publishes it
as ``TaxonomyPublished`` (kept in ``intake.taxonomies`` by the directory handlers), which
is what this module reads first. Until that event has arrived, the district file routing
ships (``<districts_dir>/<district>.yaml``, its ``taxonomy.categories`` or ``categories``
list; nested ``children`` become groups) stands in, re-read when it changes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from eventkit.logging import get_logger

log = get_logger(__name__)

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


@dataclass(frozen=True)
class Category:
    """One kind of matter residents raise, e.g. street lights (路灯照明)."""

    code: str
    name_zh: str
    name_en: str | None = None
    group: str | None = None
    """The broader class it belongs to (市政设施), Open311's ``group``."""
    keywords: tuple[str, ...] = ()
    description: str | None = None

    def name(self, lang: str) -> str:
        """The name in ``lang`` (``zh`` or ``en``), Chinese when there is no English one."""
        return self.name_en if lang == "en" and self.name_en else self.name_zh


@dataclass(frozen=True)
class Taxonomy:
    """A district's categories, in the file's order."""

    district_id: str
    categories: tuple[Category, ...] = ()

    def get(self, code: str) -> Category | None:
        """The category with ``code``, if any."""
        return next((c for c in self.categories if c.code == code), None)

    def names(self) -> dict[str, tuple[str, str]]:
        """code → (name_zh, name_en) for every category."""
        return {c.code: (c.name_zh, c.name_en or c.name_zh) for c in self.categories}


def _text(entry: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _keywords(entry: Mapping[str, Any]) -> tuple[str, ...]:
    value = entry.get("keywords") or entry.get("keywords_zh") or ()
    if isinstance(value, str):
        value = re.split(r"[,，、\s]+", value)
    return tuple(str(k).strip() for k in value if str(k).strip())


def _walk(entries: Iterable[Any], group: str | None) -> Iterable[Category]:
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        code = _text(entry, "code", "id")
        name_zh = _text(entry, "name_zh", "name", "zh", "title")
        children = entry.get("children") or entry.get("subcategories") or []
        own_group = _text(entry, "group", "group_zh", "parent_name") or group
        if children:
            yield from _walk(children, name_zh or own_group)
            if not entry.get("selectable", False):
                continue
        if code is None or name_zh is None or not _CODE.match(code):
            continue
        yield Category(
            code=code,
            name_zh=name_zh,
            name_en=_text(entry, "name_en", "en"),
            group=own_group,
            keywords=_keywords(entry),
            description=_text(entry, "description", "description_zh"),
        )


def parse_taxonomy(district_id: str, document: Any) -> Taxonomy:
    """The taxonomy in a parsed YAML document (unknown shapes give no categories)."""
    if isinstance(document, Mapping):
        entries = document.get("categories")
        if entries is None and isinstance(document.get("taxonomy"), Mapping):
            entries = document["taxonomy"].get("categories")
    else:
        entries = document
    if not isinstance(entries, list):
        return Taxonomy(district_id)
    seen: set[str] = set()
    unique = []
    for category in _walk(entries, None):
        if category.code not in seen:
            seen.add(category.code)
            unique.append(category)
    return Taxonomy(district_id, tuple(unique))


class TaxonomySource:
    """The published taxonomy (briefly cached), else ``<directory>/<district>.yaml``."""

    def __init__(
        self,
        directory: Path,
        pool: asyncpg.Pool | None = None,
        *,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._pool = pool
        self._ttl = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Taxonomy]] = {}
        self._published: dict[str, tuple[float, Taxonomy | None]] = {}

    async def for_district(self, district_id: str) -> Taxonomy:
        """The district's taxonomy; empty when nothing was published and it has no file."""
        published = await self._from_events(district_id)
        return published if published is not None else self.from_file(district_id)

    async def _from_events(self, district_id: str) -> Taxonomy | None:
        if self._pool is None:
            return None
        now = self._clock()
        cached = self._published.get(district_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        categories = await self._pool.fetchval(
            "SELECT categories FROM intake.taxonomies WHERE district_id = $1", district_id
        )
        taxonomy = (
            None if categories is None else parse_taxonomy(district_id, {"categories": categories})
        )
        self._published[district_id] = (now, taxonomy)
        return taxonomy

    def from_file(self, district_id: str) -> Taxonomy:
        """The taxonomy of the district's file; empty without a (readable) file."""
        path = self._path(district_id)
        if path is None:
            return Taxonomy(district_id)
        mtime = path.stat().st_mtime
        cached = self._cache.get(district_id)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            log.error("taxonomy unreadable", path=str(path), error=str(exc))
            return Taxonomy(district_id)
        taxonomy = parse_taxonomy(district_id, document)
        self._cache[district_id] = (mtime, taxonomy)
        return taxonomy

    def _path(self, district_id: str) -> Path | None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", district_id):
            return None
        for suffix in (".yaml", ".yml"):
            path = self._directory / f"{district_id}{suffix}"
            if path.is_file():
                return path
        return None
