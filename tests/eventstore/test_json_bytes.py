"""JSON written by orjson reads back as the standard library wrote it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eventkit.json_bytes import dumps, dumps_text

SAMPLE = {
    "message": '电梯坏了，请尽快修理 "三号楼"\n第二行',
    "count": 3,
    "ratio": 0.25,
    "nothing": None,
    "flags": [True, False],
    "nested": {"键": ["值", 1, 2.5]},
}


def test_the_bytes_are_the_standard_library_s_compact_json() -> None:
    expected = json.dumps(SAMPLE, ensure_ascii=False, separators=(",", ":"))
    assert dumps(SAMPLE) == expected.encode()
    assert dumps_text(SAMPLE) == expected


def test_keys_that_are_not_strings_become_strings_as_json_makes_them() -> None:
    value = {1: "one", 2: {3: "three"}}
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


def test_an_integer_beyond_64_bits_is_written_exactly() -> None:
    value = {"big": 2**70, "negative": -(2**65)}
    assert json.loads(dumps(value)) == value


def test_a_datetime_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(TypeError):
        dumps({"at": datetime(2026, 12, 2, tzinfo=UTC)})
