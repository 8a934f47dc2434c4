"""The district's categories of opinions: the QR form's choice and Open311's services.

Routing owns the taxonomy and publishes it as ``TaxonomyPublished``; the directory
handlers keep the newest version in ``intake.taxonomies`` and ``directory.py`` reads it
from there. Until a district's taxonomy has been published it has no categories. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


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
    """A district's categories, in the published order."""

    district_id: str
    categories: tuple[Category, ...] = ()

    def get(self, code: str) -> Category | None:
        """The category with ``code``, if any."""
        return next((c for c in self.categories if c.code == code), None)

    def names(self) -> dict[str, tuple[str, str]]:
        """code → (name_zh, name_en) for every category."""
        return {c.code: (c.name_zh, c.name_en or c.name_zh) for c in self.categories}


def _text(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def published_taxonomy(district_id: str, categories: Iterable[Mapping[str, Any]]) -> Taxonomy:
    """The taxonomy of the categories a ``TaxonomyPublished`` carried, as kept in
    ``intake.taxonomies`` (the first of a repeated code wins).

    ``group`` and ``description`` are read when a category has them: the contract's
    ``TaxonomyCategory`` does not carry them yet, and once it does nothing here changes.
    """
    seen: set[str] = set()
    found = []
    for entry in categories:
        code = _text(entry, "code")
        name_zh = _text(entry, "name_zh")
        if code is None or name_zh is None or code in seen:
            continue
        seen.add(code)
        found.append(
            Category(
                code=code,
                name_zh=name_zh,
                name_en=_text(entry, "name_en"),
                group=_text(entry, "group"),
                keywords=tuple(k.strip() for k in entry.get("keywords") or () if k.strip()),
                description=_text(entry, "description"),
            )
        )
    return Taxonomy(district_id, tuple(found))
