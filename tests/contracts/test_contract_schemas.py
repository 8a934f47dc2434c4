"""The generated JSON Schemas: up to date, and never changed incompatibly.

Three layers: the committed files match what the models generate; the compatibility
check itself (on hand-made schemas and on modified copies of real models); and every
version of every schema file ever committed is compatible with the current one.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal, NoReturn

import pytest
from pydantic import AwareDatetime, BaseModel, ConfigDict, create_model

from contracts import REGISTRY, CaseAccepted, CaseOpened, OpinionSubmitted, OpinionSubmittedV1
from contracts.base import Identifier
from contracts.jsonschema import (
    SCHEMAS_DIR,
    compatibility_problems,
    generate,
    history_problems,
    main,
    render,
    schema_for,
    stale_schemas,
    write_schemas,
)

REGENERATE = "run `python -m contracts.jsonschema` and commit contracts/schemas/"


# --- the committed files --------------------------------------------------------------


def test_committed_schemas_are_up_to_date() -> None:
    stale = stale_schemas(SCHEMAS_DIR, REGISTRY)
    assert not stale, f"stale JSON Schemas in contracts/schemas/: {stale}; {REGENERATE}"


def test_every_registered_model_has_a_schema_of_each_version() -> None:
    names = set(generate(REGISTRY))
    expected = {f"{m.event_type}.v{m.schema_version}.json" for m in REGISTRY.models()}
    assert names == expected
    assert {"OpinionSubmitted.v1.json", "OpinionSubmitted.v2.json"} <= names


def test_a_schema_names_its_event_version_context_and_stream_category() -> None:
    schema = schema_for(OpinionSubmitted)
    assert schema["$id"] == "https://schemas.minqing.cn/events/OpinionSubmitted.v3.json"
    assert schema["x-event-type"] == "OpinionSubmitted"
    assert schema["x-schema-version"] == 3
    assert schema["x-context"] == "intake"
    assert schema["x-stream-category"] == "opinion"

    old = schema_for(OpinionSubmittedV1)
    assert old["$id"] == "https://schemas.minqing.cn/events/OpinionSubmitted.v1.json"
    assert old["x-schema-version"] == 1
    assert "station_code" in old["properties"]


def test_schema_output_is_deterministic() -> None:
    first = {name: render(schema) for name, schema in generate(REGISTRY).items()}
    second = {name: render(schema) for name, schema in generate(REGISTRY).items()}
    assert first == second
    assert list(schema_for(CaseOpened)) == sorted(schema_for(CaseOpened))


def test_rendered_schemas_keep_chinese_readable_and_end_with_a_newline() -> None:
    text = render(schema_for(OpinionSubmitted))
    assert "民意" in text
    assert text.endswith("}\n")
    assert json.loads(text) == schema_for(OpinionSubmitted)


def test_every_current_schema_is_compatible_with_itself() -> None:
    for name, schema in generate(REGISTRY).items():
        assert compatibility_problems(schema, copy.deepcopy(schema)) == [], name


def test_write_schemas_writes_fixes_and_deletes_stale_files(tmp_path: Path) -> None:
    directory = tmp_path / "schemas"
    expected = sorted(generate(REGISTRY))

    assert stale_schemas(directory, REGISTRY) == expected
    assert write_schemas(directory, REGISTRY) == expected
    assert stale_schemas(directory, REGISTRY) == []
    assert write_schemas(directory, REGISTRY) == []
    assert (directory / "CaseOpened.v1.json").read_text(encoding="utf-8") == render(
        schema_for(CaseOpened)
    )

    (directory / "CaseClosed.v1.json").write_text("{}\n", encoding="utf-8")
    (directory / "CaseOpened.v1.json").unlink()
    (directory / "CaseVanished.v1.json").write_text("{}\n", encoding="utf-8")
    (directory / "README.md").write_text("not a schema\n", encoding="utf-8")
    crlf = render(schema_for(CaseAccepted)).replace("\n", "\r\n")
    (directory / "CaseAccepted.v1.json").write_bytes(crlf.encode("utf-8"))
    stale = [
        "CaseAccepted.v1.json",
        "CaseClosed.v1.json",
        "CaseOpened.v1.json",
        "CaseVanished.v1.json",
    ]

    assert stale_schemas(directory, REGISTRY) == stale
    assert write_schemas(directory, REGISTRY) == stale
    assert stale_schemas(directory, REGISTRY) == []
    assert not (directory / "CaseVanished.v1.json").exists()
    assert (directory / "README.md").exists()
    assert not list(directory.glob("*.tmp"))


def test_main_check_reports_stale_files_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--directory", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "CaseOpened.v1.json" in captured.out.splitlines()
    assert "python -m contracts.jsonschema" in captured.err

    assert main(["--directory", str(tmp_path)]) == 0
    assert "CaseOpened.v1.json" in capsys.readouterr().out.splitlines()

    assert main(["--check", "--directory", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""


# --- compatibility_problems on hand-made schemas ---------------------------------------


def _object(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}


STRING: dict[str, Any] = {"type": "string"}
NUMBER: dict[str, Any] = {"type": "number"}
NULLABLE_STRING: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_identical_schemas_are_compatible() -> None:
    schema = _object(["text"], text=STRING, lat=NUMBER)
    assert compatibility_problems(schema, copy.deepcopy(schema)) == []


def test_adding_an_optional_field_is_compatible() -> None:
    old = _object(["text"], text=STRING)
    new = _object(["text"], text=STRING, external_ref=NULLABLE_STRING)
    assert compatibility_problems(old, new) == []


def test_adding_a_required_field_is_incompatible() -> None:
    old = _object(["text"], text=STRING)
    new = _object(["text", "channel"], text=STRING, channel=STRING)
    assert compatibility_problems(old, new) == ["channel: new required field"]


def test_making_an_optional_field_required_is_incompatible() -> None:
    old = _object(["text"], text=STRING, note=STRING)
    new = _object(["text", "note"], text=STRING, note=STRING)
    assert compatibility_problems(old, new) == ["note: required now but was optional"]


def test_making_a_required_field_optional_is_compatible() -> None:
    old = _object(["text", "note"], text=STRING, note=STRING)
    new = _object(["text"], text=STRING, note=NULLABLE_STRING)
    assert compatibility_problems(old, new) == []


def test_removing_a_property_is_incompatible() -> None:
    old = _object(["text"], text=STRING, address=STRING)
    new = _object(["text"], text=STRING)
    assert compatibility_problems(old, new) == ["address: property removed"]


def test_widening_a_string_to_a_nullable_string_is_compatible() -> None:
    assert compatibility_problems(_object(a=STRING), _object(a=NULLABLE_STRING)) == []
    as_list = _object(a={"type": ["string", "null"]})
    assert compatibility_problems(_object(a=STRING), as_list) == []


def test_narrowing_a_nullable_string_to_a_string_is_incompatible() -> None:
    assert compatibility_problems(_object(a=NULLABLE_STRING), _object(a=STRING)) == [
        "a: type narrowed from string | null to string"
    ]


def test_changing_a_type_is_incompatible() -> None:
    assert compatibility_problems(_object(lat=NUMBER), _object(lat=STRING)) == [
        "lat: type changed from number to string"
    ]


def test_integer_to_number_is_a_widening_and_number_to_integer_a_narrowing() -> None:
    integer = _object(n={"type": "integer"})
    number = _object(n=NUMBER)
    assert compatibility_problems(integer, number) == []
    assert compatibility_problems(number, integer) == ["n: type narrowed from number to integer"]


def test_a_typed_field_that_was_untyped_is_narrowed() -> None:
    assert compatibility_problems(_object(extra={}), _object(extra=STRING)) == [
        "extra: type narrowed from any to string"
    ]
    assert compatibility_problems(_object(extra=STRING), _object(extra={})) == []


def test_a_change_inside_a_ref_is_found_with_its_path() -> None:
    def schema(lat: dict[str, Any]) -> dict[str, Any]:
        return {
            "$defs": {"Location": _object(lat=lat, community=STRING)},
            **_object(location={"$ref": "#/$defs/Location"}),
        }

    assert compatibility_problems(schema(NUMBER), schema(STRING)) == [
        "location.lat: type changed from number to string"
    ]


def test_a_change_inside_a_nullable_ref_in_any_of_is_found() -> None:
    def schema(subject: dict[str, Any]) -> dict[str, Any]:
        return {
            "$defs": {"SubmitterRef": _object(["subject_id"], subject_id=subject)},
            **_object(submitter={"anyOf": [{"$ref": "#/$defs/SubmitterRef"}, {"type": "null"}]}),
        }

    assert compatibility_problems(schema(STRING), schema({"type": "integer"})) == [
        "submitter.subject_id: type changed from string to integer"
    ]


def test_refs_under_different_names_are_compared_by_content() -> None:
    old = {"$defs": {"Loc": _object(lat=NUMBER)}, **_object(location={"$ref": "#/$defs/Loc"})}
    new = {
        "$defs": {"Location": _object(lat=NUMBER, long=NUMBER)},
        **_object(location={"$ref": "#/$defs/Location"}),
    }
    assert compatibility_problems(old, new) == []
    assert compatibility_problems(new, old) == ["location.long: property removed"]


def test_a_change_in_a_nested_object_is_found() -> None:
    old = _object(outer=_object(inner=_object(["x"], x=STRING)))
    new = _object(outer=_object(inner=_object(["x", "y"], x=STRING, y=STRING)))
    assert compatibility_problems(old, new) == ["outer.inner.y: new required field"]
    assert compatibility_problems(new, old) == ["outer.inner.y: property removed"]


def test_a_change_of_array_items_is_found() -> None:
    old = _object(tags={"type": "array", "items": STRING})
    new = _object(tags={"type": "array", "items": {"type": "integer"}})
    assert compatibility_problems(old, new) == ["tags[]: type changed from string to integer"]


def test_a_change_in_objects_inside_an_array_is_found() -> None:
    def schema(score: dict[str, Any]) -> dict[str, Any]:
        return {
            "$defs": {"Candidate": _object(["score"], score=score)},
            **_object(candidates={"type": "array", "items": {"$ref": "#/$defs/Candidate"}}),
        }

    assert compatibility_problems(schema(NUMBER), schema(STRING)) == [
        "candidates[].score: type changed from number to string"
    ]


def test_a_change_of_map_values_is_found() -> None:
    old = _object(components={"type": "object", "additionalProperties": NUMBER})
    new = _object(components={"type": "object", "additionalProperties": STRING})
    assert compatibility_problems(old, new) == ["components.*: type changed from number to string"]


def test_forbidding_additional_properties_is_incompatible() -> None:
    old = _object(location=_object(lat=NUMBER))
    new = _object(location={**_object(lat=NUMBER), "additionalProperties": False})
    assert compatibility_problems(old, new) == [
        "location: additional properties are no longer allowed"
    ]
    assert compatibility_problems(new, old) == []


def test_removing_an_enum_value_is_incompatible() -> None:
    old = _object(priority={"type": "string", "enum": ["normal", "important", "urgent"]})
    new = _object(priority={"type": "string", "enum": ["normal", "urgent"]})
    assert compatibility_problems(old, new) == ['priority: enum value "important" removed']


def test_adding_an_enum_value_is_compatible() -> None:
    old = _object(channel={"type": "string", "enum": ["qr", "walk_in"]})
    new = _object(channel={"type": "string", "enum": ["qr", "walk_in", "open311"]})
    assert compatibility_problems(old, new) == []


def test_restricting_a_string_to_an_enum_is_incompatible() -> None:
    old = _object(level=STRING)
    new = _object(level={"enum": ["street", "district"], "type": "string"})
    assert compatibility_problems(old, new) == [
        'level: now restricted to the values "street", "district"'
    ]


def test_removing_a_value_of_an_enum_behind_a_ref_is_found() -> None:
    def schema(roles: list[str]) -> dict[str, Any]:
        return {
            "$defs": {
                "Actor": _object(["role"], role={"$ref": "#/$defs/ActorRole"}),
                "ActorRole": {"type": "string", "enum": roles},
            },
            **_object(actor={"$ref": "#/$defs/Actor"}),
        }

    assert compatibility_problems(schema(["resident", "system"]), schema(["system"])) == [
        'actor.role: enum value "resident" removed'
    ]


def test_tighter_string_and_number_constraints_are_incompatible() -> None:
    old = _object(
        text={"type": "string", "maxLength": 4000, "minLength": 1},
        lat={"type": "number", "minimum": -90, "maximum": 90},
        files={"type": "array", "items": STRING, "maxItems": 9},
    )
    new = _object(
        text={"type": "string", "maxLength": 2000, "minLength": 1, "pattern": "^[^<>]*$"},
        lat={"type": "number", "minimum": 0, "maximum": 90},
        files={"type": "array", "items": STRING, "maxItems": 3},
    )
    assert compatibility_problems(old, new) == [
        "text: maxLength narrowed from 4000 to 2000",
        'text: pattern "^[^<>]*$" added',
        "lat: minimum narrowed from -90 to 0",
        "files: maxItems narrowed from 9 to 3",
    ]
    assert compatibility_problems(new, old) == []


def test_a_recursive_schema_does_not_loop() -> None:
    def schema(name: dict[str, Any]) -> dict[str, Any]:
        node = _object(
            ["name"], name=name, children={"type": "array", "items": {"$ref": "#/$defs/Node"}}
        )
        return {"$defs": {"Node": node}, **_object(root={"$ref": "#/$defs/Node"})}

    assert compatibility_problems(schema(STRING), schema(STRING)) == []
    assert compatibility_problems(schema(STRING), schema(NUMBER)) == [
        "root.name: type changed from string to number"
    ]


def test_a_ref_outside_the_schema_is_an_error() -> None:
    old = _object(a={"$ref": "https://example.org/other.json"})
    with pytest.raises(ValueError, match="only local references"):
        compatibility_problems(old, old)
    looping = {"$defs": {"A": {"$ref": "#/$defs/A"}}, **_object(a={"$ref": "#/$defs/A"})}
    with pytest.raises(ValueError, match="refers to itself"):
        compatibility_problems(looping, looping)


def test_schemas_of_different_event_types_or_versions_are_not_compared_silently() -> None:
    old = {**_object(a=STRING), "x-event-type": "CaseOpened", "x-schema-version": 1}
    new = {**_object(a=STRING), "x-event-type": "CaseOpened", "x-schema-version": 2}
    assert compatibility_problems(old, new) == [
        "(root): x-schema-version changed from 1 to 2: this is another contract"
    ]


# --- compatibility_problems on modified copies of a real model ---------------------------


CASE_OPENED = schema_for(CaseOpened)


def test_the_real_case_opened_schema_is_compatible_with_its_committed_file() -> None:
    committed = json.loads((SCHEMAS_DIR / "CaseOpened.v1.json").read_text(encoding="utf-8"))
    assert compatibility_problems(committed, CASE_OPENED) == []


def test_removing_a_field_from_case_opened_is_incompatible() -> None:
    fields = {
        name: (info.annotation, info)
        for name, info in CaseOpened.model_fields.items()
        if name != "matched_keywords"
    }
    without = create_model(  # type: ignore[call-overload]
        "CaseOpened", __base__=None, __config__=ConfigDict(frozen=True), **fields
    )
    new = without.model_json_schema(mode="validation")

    assert compatibility_problems(CASE_OPENED, new) == ["matched_keywords: property removed"]


def test_changing_a_field_type_of_case_opened_is_incompatible() -> None:
    class CaseOpenedWithNumericPriority(CaseOpened):
        priority: int  # type: ignore[assignment]

    new = schema_for(CaseOpenedWithNumericPriority)
    assert compatibility_problems(CASE_OPENED, new) == [
        "priority: type changed from string to integer"
    ]


def test_making_a_case_opened_deadline_mandatory_is_incompatible() -> None:
    class CaseOpenedWithMandatoryDeadline(CaseOpened):
        response_due: AwareDatetime

    new = schema_for(CaseOpenedWithMandatoryDeadline)
    assert compatibility_problems(CASE_OPENED, new) == [
        "response_due: type narrowed from string | null to string",
        "response_due: required now but was optional",
    ]


def test_removing_a_priority_from_case_opened_is_incompatible() -> None:
    class CaseOpenedWithoutImportant(CaseOpened):
        priority: Literal["normal", "urgent"]  # type: ignore[assignment]

    new = schema_for(CaseOpenedWithoutImportant)
    assert compatibility_problems(CASE_OPENED, new) == ['priority: enum value "important" removed']


def test_adding_a_required_field_to_case_opened_is_incompatible() -> None:
    class CaseOpenedWithUnit(CaseOpened):
        responsible_unit: Identifier

    new = schema_for(CaseOpenedWithUnit)
    assert compatibility_problems(CASE_OPENED, new) == ["responsible_unit: new required field"]


def test_adding_an_optional_field_to_case_opened_is_compatible() -> None:
    class CaseOpenedWithOptionalUnit(CaseOpened):
        responsible_unit: Identifier | None = None

    new = schema_for(CaseOpenedWithOptionalUnit)
    assert "responsible_unit" in new["properties"]
    assert compatibility_problems(CASE_OPENED, new) == []


def test_changing_a_nested_location_field_of_opinion_submitted_is_incompatible() -> None:
    class Location(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")

        station_code: Identifier | None = None
        community: str | None = None  # no maxLength any more: a widening, not reported
        address: str | None = None
        lat: str | None = None
        long: float | None = None

    class OpinionSubmittedWithTextLat(OpinionSubmitted):
        location: Location = Location()  # type: ignore[assignment]

    new = schema_for(OpinionSubmittedWithTextLat)
    assert compatibility_problems(schema_for(OpinionSubmitted), new) == [
        "location.lat: type changed from number | null to string | null",
    ]


def test_opinion_submitted_v2_could_not_have_kept_schema_version_1() -> None:
    # The reason v2 exists: the flat location fields went away.
    old = schema_for(OpinionSubmittedV1)
    new = {**schema_for(OpinionSubmitted), "x-schema-version": 1}
    assert compatibility_problems(old, new) == [
        "address: property removed",
        "community: property removed",
        "lat: property removed",
        "long: property removed",
        "station_code: property removed",
    ]


# --- history: every committed version of every schema file -----------------------------


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "core.quotepath=off", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    ).stdout


def _skip(reason: str) -> NoReturn:
    # Printed as well, so that the reason shows up in plain -q output and CI logs.
    print(f"schema history not checked: {reason}")
    pytest.skip(reason)


def _require_git() -> None:
    if shutil.which("git") is None:
        _skip("git is not installed, so the committed schema versions cannot be read")


def committed_schemas(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(file name, schema)`` for every version of every file ever committed in ``directory``.

    One ``git log`` over the whole directory rather than ``--follow`` per file: it also
    finds the files that exist no more, which are the ones most worth reporting.
    Skips the test when git cannot tell (not installed, not a checkout).
    """
    _require_git()
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], directory).strip()).resolve()
    except subprocess.CalledProcessError as error:
        _skip(f"{directory} is not in a git checkout ({error.stderr.strip()})")
    try:
        relative = directory.resolve().relative_to(top).as_posix()
    except ValueError:
        _skip(f"{directory} is outside the git checkout {top}")
    has_commits = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=top, capture_output=True
    )
    if has_commits.returncode != 0:
        return []  # a repository without commits has no history to be compatible with

    log = _git(
        ["log", "-m", "--no-renames", "--format=commit %H", "--name-status", "--", relative],
        top,
    )
    versions: dict[tuple[str, str], None] = {}
    sha = ""
    for line in log.splitlines():
        if line.startswith("commit "):
            sha = line.removeprefix("commit ")
        elif "\t" in line:
            status, path = line.split("\t")[0], line.split("\t")[-1]
            parent, _, name = path.rpartition("/")
            # A deletion has no content to read; a file in a subfolder is no schema.
            if not status.startswith("D") and parent == relative and name.endswith(".json"):
                versions[(sha, path)] = None

    history: dict[tuple[str, str], None] = {}
    for sha, path in versions:
        history[(path.rpartition("/")[2], _git(["show", f"{sha}:{path}"], top))] = None
    return [(name, json.loads(text)) for name, text in history]


def test_every_committed_version_of_every_schema_is_compatible_with_the_current_one() -> None:
    history = committed_schemas(SCHEMAS_DIR)
    problems = history_problems(history, generate(REGISTRY))
    assert not problems, (
        "a contract changed incompatibly with a schema committed before; give the event a "
        "new schema_version with an upcaster instead (the old model stays registered):\n"
        + "\n".join(problems)
    )


def test_history_problems_of_compatible_history_is_empty() -> None:
    current = generate(REGISTRY)
    narrower = copy.deepcopy(current["CaseOpened.v1.json"])
    narrower["properties"]["opinion_id"]["maxLength"] = 32
    history = [("CaseOpened.v1.json", narrower), *current.items()]
    assert history_problems(history, current) == []
    assert history_problems([], current) == []


def test_history_problems_reports_an_incompatible_old_version() -> None:
    current = generate(REGISTRY)
    old = copy.deepcopy(current["CaseOpened.v1.json"])
    old["properties"]["legacy_flag"] = {"type": "boolean"}
    old["$defs"]["Priority"]["enum"].append("trivial")
    assert history_problems([("CaseOpened.v1.json", old)], current) == [
        'CaseOpened.v1.json: priority: enum value "trivial" removed',
        "CaseOpened.v1.json: legacy_flag: property removed",
    ]


def test_history_problems_reports_a_schema_that_is_no_longer_generated() -> None:
    current = generate(REGISTRY)
    history: list[tuple[str, dict[str, Any]]] = [
        ("CaseVanished.v1.json", {"type": "object"}),
        ("CaseVanished.v1.json", {"type": "object", "properties": {}}),
        ("OpinionSubmitted.v1.json", current["OpinionSubmitted.v1.json"]),
    ]
    assert history_problems(history, current) == [
        "removed event schema CaseVanished.v1.json: old versions must stay registered"
    ]


def _commit(repo: Path, message: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    _git(["add", "-A"], repo)
    _git([*identity, "commit", "-q", "-m", message], repo)


def test_committed_schemas_reads_every_version_including_deleted_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    schemas = repo / "contracts" / "schemas"
    schemas.mkdir(parents=True)
    _require_git()  # the same, single reason to skip as the history check itself
    _git(["init", "-q"], repo)
    assert committed_schemas(schemas) == []  # no commits yet

    (schemas / "A.v1.json").write_text('{"version": 1}\n', encoding="utf-8")
    (schemas / "Gone.v1.json").write_text('{"gone": true}\n', encoding="utf-8")
    (schemas / "notes.txt").write_text("not a schema\n", encoding="utf-8")
    _commit(repo, "first")
    (schemas / "A.v1.json").write_text('{"version": 2}\n', encoding="utf-8")
    (schemas / "Gone.v1.json").unlink()
    (schemas / "sub").mkdir()
    (schemas / "sub" / "B.v1.json").write_text("{}\n", encoding="utf-8")
    _commit(repo, "second")
    (schemas / "A.v1.json").rename(schemas / "Renamed.v1.json")
    _commit(repo, "third")

    found = committed_schemas(schemas)

    assert sorted(found, key=lambda item: json.dumps(item)) == [
        ("A.v1.json", {"version": 1}),
        ("A.v1.json", {"version": 2}),
        ("Gone.v1.json", {"gone": True}),
        ("Renamed.v1.json", {"version": 2}),
    ]
