"""JSON Schemas of the event contracts, and the check that a change keeps them compatible.

The files in ``contracts/schemas/`` (one per event type and schema version) are the
published form of the contracts. Stored events are never rewritten, so a schema may only
ever widen: a change that would reject data valid under an earlier committed version of
its file needs a new ``schema_version`` and an upcaster instead, which leaves the old
file as it was.

``python -m contracts.jsonschema`` regenerates the files; ``--check`` only reports the
stale ones and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.base import Event
from contracts.registry import EventRegistry

JsonSchema = dict[str, Any]

SCHEMA_ID_BASE = "https://schemas.minqing.cn/events/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
"""Where the generated schemas are committed, beside this module."""

_ROOT = "(root)"
_ANY = "any"
"""Stands for "no type restriction" among JSON types in the comparison."""


def schema_file_name(model: type[Event]) -> str:
    """The file name of ``model``'s schema: ``<EventType>.v<N>.json``."""
    return f"{model.event_type}.v{model.schema_version}.json"


def schema_for(model: type[Event]) -> JsonSchema:
    """The JSON Schema of one event model, with its identity as ``$id`` and ``x-`` keys.

    The result is a fresh dict with its keys sorted at every level, so that equal models
    give equal output whatever order pydantic happened to build it in.
    """
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = SCHEMA_ID_BASE + schema_file_name(model)
    schema["x-event-type"] = model.event_type
    schema["x-schema-version"] = model.schema_version
    schema["x-context"] = model.context
    schema["x-stream-category"] = model.stream_category
    result: JsonSchema = _sorted_keys(schema)
    return result


def generate(registry: EventRegistry) -> dict[str, JsonSchema]:
    """File name → schema for every model in ``registry``, every version of every type."""
    return {schema_file_name(model): schema_for(model) for model in registry.models()}


def render(schema: Mapping[str, Any]) -> str:
    """The exact text a schema file holds."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_schemas(directory: Path, registry: EventRegistry) -> list[str]:
    """Names of schema files in ``directory`` that are missing, different or extra."""
    expected = _rendered(registry)
    stale = [
        name
        for name, text in expected.items()
        if not _has_content(directory / name, text.encode("utf-8"))
    ]
    stale.extend(path.name for path in directory.glob("*.json") if path.name not in expected)
    return sorted(stale)


def write_schemas(directory: Path, registry: EventRegistry) -> list[str]:
    """Bring ``directory`` up to date with ``registry``.

    Writes every schema whose file is missing or different and deletes ``*.json`` files
    that no registered model produces. Returns the names written or deleted, sorted.
    """
    expected = _rendered(registry)
    directory.mkdir(parents=True, exist_ok=True)
    changed: list[str] = []
    for name, text in expected.items():
        content = text.encode("utf-8")
        if not _has_content(directory / name, content):
            _write_atomically(directory / name, content)
            changed.append(name)
    for path in directory.glob("*.json"):
        if path.name not in expected:
            path.unlink()
            changed.append(path.name)
    return sorted(changed)


def compatibility_problems(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why data valid under ``old`` might be rejected under ``new``; empty when compatible.

    Both are JSON Schemas of the same event type and schema version, ``old`` as it was
    published once and ``new`` as generated now. Reported: a removed property, a type
    changed or narrowed (``$ref`` into ``$defs``, ``anyOf``/``oneOf``, array ``items``
    and nested objects followed), a tighter length, range, pattern or format, a removed
    enum value, a field that is required now and was not before, and additional
    properties no longer allowed. Each problem is a sentence that starts with the JSON
    path, e.g. ``location.lat: type changed from number to string``.

    Raises ``ValueError`` for a ``$ref`` that does not point into the same schema.
    """
    comparison = _Comparison(old_root=old, new_root=new)
    for key in ("x-event-type", "x-schema-version"):
        if key in old and key in new and old[key] != new[key]:
            comparison.report(
                "", f"{key} changed from {old[key]!r} to {new[key]!r}: this is another contract"
            )
    comparison.compare(old, new, "", frozenset())
    return _unique(comparison.problems)


def history_problems(
    history: Iterable[tuple[str, Mapping[str, Any]]], current: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Compatibility problems between earlier published schemas and the current ones.

    ``history`` holds ``(file name, schema)`` pairs, for instance every committed version
    of every file in ``contracts/schemas/``; ``current`` is what ``generate`` gives now.
    Each problem names the file it comes from.
    """
    problems: list[str] = []
    for name, old in history:
        new = current.get(name)
        if new is None:
            # Events of that type and version are still in the store and must stay readable.
            problems.append(f"removed event schema {name}: old versions must stay registered")
            continue
        problems.extend(f"{name}: {problem}" for problem in compatibility_problems(old, new))
    return _unique(problems)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the schemas into ``contracts/schemas/``, or with ``--check`` list stale ones."""
    parser = argparse.ArgumentParser(
        prog="python -m contracts.jsonschema",
        description="Generate the JSON Schemas of every registered event (all versions).",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; print the stale file names and exit 1 if there are any",
    )
    parser.add_argument(
        "--directory",
        type=Path,
        default=SCHEMAS_DIR,
        help=f"where the schema files live (default: {SCHEMAS_DIR})",
    )
    args = parser.parse_args(argv)
    directory: Path = args.directory

    # Imported here rather than at the top so that contracts/__init__.py may one day import
    # this module without a circular import.
    from contracts import REGISTRY

    if args.check:
        stale = stale_schemas(directory, REGISTRY)
        for name in stale:
            sys.stdout.write(name + "\n")
        if stale:
            sys.stderr.write(
                f"{len(stale)} stale schema file(s) in {directory}: "
                "run `python -m contracts.jsonschema` and commit the result\n"
            )
            return 1
        return 0

    for name in write_schemas(directory, REGISTRY):
        sys.stdout.write(name + "\n")
    return 0


def _rendered(registry: EventRegistry) -> dict[str, str]:
    return {name: render(schema) for name, schema in generate(registry).items()}


def _has_content(path: Path, content: bytes) -> bool:
    # Bytes, not text: a checkout that turned the newlines into CRLF is stale too.
    return path.is_file() and path.read_bytes() == content


def _write_atomically(path: Path, content: bytes) -> None:
    # Through a temporary file and a rename so that a concurrent reader (another test,
    # an editor) never sees half a schema. The suffix keeps it out of "*.json" globs.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _covered(json_type: str, types: Iterable[str]) -> bool:
    accepted = set(types)
    # Every JSON integer is a number, so integer → number is a widening.
    return (
        _ANY in accepted
        or json_type in accepted
        or (json_type == "integer" and "number" in accepted)
    )


def _describe_types(types: Iterable[str]) -> str:
    # null last reads naturally: "string | null".
    ordered = sorted(set(types), key=lambda t: (t == "null", t))
    return " | ".join(ordered) if ordered else "nothing"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


_META_KEYS = frozenset({"title", "description", "default", "examples", "$comment", "deprecated"})
"""Keys that annotate a schema without constraining what it accepts."""


@dataclass(frozen=True)
class _Branch:
    """One alternative a value may match, with the ``$ref`` it was reached through."""

    schema: Mapping[str, Any]
    ref: str | None


@dataclass
class _Comparison:
    old_root: Mapping[str, Any]
    new_root: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path or _ROOT}: {message}")

    def compare(
        self, old: Any, new: Any, path: str, active: frozenset[tuple[str | None, str | None]]
    ) -> None:
        """Compare two subschemas found at the same ``path``."""
        old_by_type = self._by_type(old, self.old_root)
        new_by_type = self._by_type(new, self.new_root)
        if _ANY in new_by_type or not old_by_type:
            # The new schema accepts anything here, or the old one accepted nothing.
            return
        old_types, new_types = set(old_by_type), set(new_by_type)
        kept = {t for t in old_types if t != _ANY and _covered(t, new_types)}
        if kept != old_types:
            # "changed" when something else came in place of what was lost (number →
            # string), "narrowed" when only something was taken away (string | null →
            # string).
            gained = {t for t in new_types if not _covered(t, old_types)}
            verb = "changed" if gained else "narrowed"
            self.report(
                path,
                f"type {verb} from {_describe_types(old_types)} to {_describe_types(new_types)}",
            )
        for json_type in sorted(kept):
            new_key = json_type if json_type in new_by_type else "number"
            for old_branch, new_branch in _pairs(old_by_type[json_type], new_by_type[new_key]):
                pair = (old_branch.ref, new_branch.ref)
                if pair[0] is not None and pair[1] is not None and pair in active:
                    # A recursive model: this pair is already being compared further up.
                    continue
                self._compare_branch(json_type, old_branch, new_branch, path, active | {pair})

    def _compare_branch(
        self,
        json_type: str,
        old_branch: _Branch,
        new_branch: _Branch,
        path: str,
        active: frozenset[tuple[str | None, str | None]],
    ) -> None:
        old, new = old_branch.schema, new_branch.schema
        self._compare_enum(json_type, old, new, path)
        if json_type == "string":
            self._tighter_max(old, new, "maxLength", path)
            self._tighter_min(old, new, "minLength", path)
            self._changed(old, new, "pattern", path)
            self._changed(old, new, "format", path)
        elif json_type in ("number", "integer"):
            for key in ("maximum", "exclusiveMaximum"):
                self._tighter_max(old, new, key, path)
            for key in ("minimum", "exclusiveMinimum"):
                self._tighter_min(old, new, key, path)
            self._changed(old, new, "multipleOf", path)
        elif json_type == "array":
            self._tighter_max(old, new, "maxItems", path)
            self._tighter_min(old, new, "minItems", path)
            if new.get("uniqueItems") and not old.get("uniqueItems"):
                self.report(path, "items must be unique now")
            self.compare(old.get("items", True), new.get("items", True), f"{path}[]", active)
        elif json_type == "object":
            self._compare_object(old, new, path, active)

    def _compare_object(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        path: str,
        active: frozenset[tuple[str | None, str | None]],
    ) -> None:
        old_properties: Mapping[str, Any] = old.get("properties", {})
        new_properties: Mapping[str, Any] = new.get("properties", {})
        for name, old_property in old_properties.items():
            if name not in new_properties:
                self.report(_join(path, name), "property removed")
            else:
                self.compare(old_property, new_properties[name], _join(path, name), active)
        # A new optional property is fine although the old schema let any value through
        # under that name: producers only ever wrote the properties they knew.
        old_required = set(old.get("required", []))
        for name in new.get("required", []):
            if name in old_required:
                continue
            if name in old_properties:
                self.report(_join(path, name), "required now but was optional")
            else:
                self.report(_join(path, name), "new required field")
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if new_extra is False and old_extra is not False:
            self.report(path, "additional properties are no longer allowed")
        elif new_extra is not True and old_extra is not False:
            # dict[str, X]: the values are checked like any other subschema.
            self.compare(old_extra, new_extra, _join(path, "*"), active)

    def _compare_enum(
        self, json_type: str, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> None:
        new_values = _enum_values(new, json_type)
        if new_values is None:
            return
        old_values = _enum_values(old, json_type)
        if old_values is None:
            shown = ", ".join(_show(v) for v in new_values)
            self.report(path, f"now restricted to the values {shown}")
            return
        removed = [v for v in old_values if v not in new_values]
        if removed:
            noun = "value" if len(removed) == 1 else "values"
            self.report(path, f"enum {noun} {', '.join(_show(v) for v in removed)} removed")

    def _tighter_max(
        self, old: Mapping[str, Any], new: Mapping[str, Any], key: str, path: str
    ) -> None:
        before, after = old.get(key), new.get(key)
        if after is None:
            return
        if before is None:
            self.report(path, f"{key} {_show(after)} added")
        elif after < before:
            self.report(path, f"{key} narrowed from {_show(before)} to {_show(after)}")

    def _tighter_min(
        self, old: Mapping[str, Any], new: Mapping[str, Any], key: str, path: str
    ) -> None:
        before, after = old.get(key), new.get(key)
        if after is None:
            return
        if before is None:
            self.report(path, f"{key} {_show(after)} added")
        elif after > before:
            self.report(path, f"{key} narrowed from {_show(before)} to {_show(after)}")

    def _changed(self, old: Mapping[str, Any], new: Mapping[str, Any], key: str, path: str) -> None:
        # Whether one regular expression or format accepts all that another did cannot
        # be decided in general, so any change is treated as a narrowing.
        before, after = old.get(key), new.get(key)
        if after is None or after == before:
            return
        if before is None:
            self.report(path, f"{key} {_show(after)} added")
        else:
            self.report(path, f"{key} changed from {_show(before)} to {_show(after)}")

    def _by_type(self, node: Any, root: Mapping[str, Any]) -> dict[str, list[_Branch]]:
        by_type: dict[str, list[_Branch]] = {}
        for branch in _branches(node, root, None):
            for json_type in _branch_types(branch.schema):
                by_type.setdefault(json_type, []).append(branch)
        return by_type


def _pairs(old: list[_Branch], new: list[_Branch]) -> list[tuple[_Branch, _Branch]]:
    """Which old alternative to compare with which new one, for one JSON type."""
    if len(old) == 1 and len(new) == 1:
        return [(old[0], new[0])]
    # Several objects in one union (say two models): pair them by title; an alternative
    # that has no counterpart cannot be told apart from the others and is not followed.
    new_by_title = {b.schema.get("title"): b for b in new if b.schema.get("title")}
    return [
        (b, new_by_title[b.schema["title"]]) for b in old if b.schema.get("title") in new_by_title
    ]


def _branches(
    node: Any, root: Mapping[str, Any], ref: str | None, seen: frozenset[str] = frozenset()
) -> list[_Branch]:
    """The alternatives of ``node``: ``$ref``, ``allOf``, ``anyOf`` and ``oneOf`` resolved.

    ``seen`` holds the references followed to get here without descending into a
    property, so that a reference to itself fails instead of looping.
    """
    if node is True:
        return [_Branch({}, ref)]
    if node is False or not isinstance(node, Mapping):
        return []
    if "$ref" in node:
        reference = node["$ref"]
        if reference in seen:
            raise ValueError(f"$ref {reference!r} refers to itself")
        # Keywords beside a $ref apply too (2020-12); the local ones win on a clash.
        merged = {**_resolve(reference, root), **{k: v for k, v in node.items() if k != "$ref"}}
        return _branches(merged, root, reference, seen | {reference})
    if "allOf" in node:
        # Only an approximation of an intersection, enough for a lone wrapped $ref.
        combined: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        for part in node["allOf"]:
            for branch in _branches(part, root, ref, seen):
                combined = {**branch.schema, **combined}
                ref = branch.ref
        return _branches(combined, root, ref, seen)
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            common = {k: v for k, v in node.items() if k != keyword and k not in _META_KEYS}
            branches: list[_Branch] = []
            for alternative in node[keyword]:
                for branch in _branches(alternative, root, ref, seen):
                    branches.append(_Branch({**common, **branch.schema}, branch.ref))
            return branches
    return [_Branch(node, ref)]


def _resolve(reference: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not reference.startswith("#/"):
        raise ValueError(f"cannot resolve $ref {reference!r}: only local references are")
    target: Any = root
    for token in reference[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or token not in target:
            raise ValueError(f"cannot resolve $ref {reference!r}: no {token!r}")
        target = target[token]
    if not isinstance(target, Mapping):
        raise ValueError(f"$ref {reference!r} does not point at a schema")
    return target


def _branch_types(schema: Mapping[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(t) for t in declared}
    values = _enum_values(schema, _ANY)
    if values is not None:
        return {_json_type(v) for v in values}
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return {"object"}
    if "items" in schema or "prefixItems" in schema:
        return {"array"}
    return {_ANY}


def _enum_values(schema: Mapping[str, Any], json_type: str) -> list[Any] | None:
    if "enum" in schema:
        values = list(schema["enum"])
    elif "const" in schema:
        values = [schema["const"]]
    else:
        return None
    # Only this branch's type: the others are compared under their own type.
    return [v for v in values if _covered(_json_type(v), {json_type})]


if __name__ == "__main__":
    raise SystemExit(main())
