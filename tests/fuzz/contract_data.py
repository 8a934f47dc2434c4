"""Hypothesis strategies for the events' data, drawn from each model's own JSON Schema
(the same schemas ``contracts/schemas/`` holds), so every registered event, present and
future, is generated without a hand-written strategy.

Covers what the contracts use: objects, ``$ref``/``$defs``, ``anyOf``, enums and
constants, strings with lengths, patterns and formats (date-time, date, time, uri, uuid),
integers and numbers with bounds, booleans, arrays. Sizes are kept small: the point is
the shapes, not the volume.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

MAX_ITEMS = 3
MAX_TEXT = 24

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))])
_MOMENTS = st.datetimes(
    # Hypothesis takes naive bounds and attaches the zones itself.
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=_ZONES,
)
_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
"""What text may hold: PostgreSQL stores no NUL and no lone surrogate."""
_TEXT = st.text(alphabet=_CHARACTERS, max_size=MAX_TEXT)


def _string(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", max(low, MAX_TEXT)))
    high = min(high, max(low, MAX_TEXT))
    form = schema.get("format")
    if form == "date-time":
        return _MOMENTS.map(lambda d: d.isoformat())
    if form == "date":
        return st.dates().map(lambda d: d.isoformat())
    if form == "time":
        return st.times().map(lambda t: t.isoformat())
    if form == "uuid":
        return st.uuids().map(str)
    if form == "uri":
        return st.sampled_from(["https://files.example.cn/a.jpg", "http://127.0.0.1/x"])
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= int(schema.get("maxLength", 10**6))
        )
    return st.text(alphabet=_CHARACTERS, min_size=low, max_size=high)


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + (1 if integer else 1e-9)
    if "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - (1 if integer else 1e-9)
    if integer:
        return st.integers(
            min_value=None if low is None else int(low),
            max_value=int(high)
            if high is not None
            else (None if low is None else int(low) + 10**6),
        )
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False, width=64)


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under ``schema`` (its ``$ref`` resolved in ``defs``)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: from_schema(defs[name], defs))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, defs) for s in schema[key]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return from_schema(schema["allOf"][0], defs)
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return _number(schema, integer=True)
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "string":
        return _string(schema)
    if kind == "array":
        low = int(schema.get("minItems", 0))
        high = min(int(schema.get("maxItems", MAX_ITEMS)), max(low, MAX_ITEMS))
        items = from_schema(schema.get("items", {}), defs)
        return st.lists(items, min_size=low, max_size=high)
    if kind == "object" or "properties" in schema:
        return _object(schema, defs)
    return st.one_of(st.none(), st.booleans(), st.integers(), _TEXT)


def _object(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    if not properties:
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            return st.dictionaries(_TEXT, from_schema(values, defs), max_size=MAX_ITEMS)
        return st.just({})
    return st.fixed_dictionaries(
        {name: from_schema(s, defs) for name, s in properties.items() if name in required},
        optional={
            name: from_schema(s, defs) for name, s in properties.items() if name not in required
        },
    )


def model_data(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Data for the model whose JSON Schema is ``schema``."""
    return from_schema(schema, schema.get("$defs", {}))
