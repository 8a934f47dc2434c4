"""A rebuild opens only the sealed texts the projections keep (``FOLDED_TEXTS``): every
other sealed text, left sealed, must change no row; and those it opens come out as the
live consumer sees them, with the erased mark once the case's key is gone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from contracts.cases import CaseEvent
from contracts.registry import serialize
from eventkit.db import ALL_DISTRICTS, district_transaction
from eventkit.privacy_rights import ERASED
from eventkit.sealed_texts import CASE_TEXTS, SEALED_MARK, TextKeys, seal_case_events
from services.reporting.case_facts import fold_case
from services.reporting.folded_texts import FOLDED_TEXTS, FoldedTextOpener, sealed_and_folded
from services.reporting.folding import HANDLED_TYPES, Folder
from tests.contracts import test_contract_registry as samples

AT = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)


def _sample(event_type: str) -> CaseEvent:
    """The contract tests' example of ``event_type``, texts filled in."""
    name = "".join(f"_{c.lower()}" if c.isupper() else c for c in event_type).lstrip("_")
    event = getattr(samples, name)()
    assert isinstance(event, CaseEvent)
    return event


def _as_sealed(event: CaseEvent) -> CaseEvent:
    """``event`` as a reader that does not open it sees it: each sealed text replaced by
    what the clear field holds once sealed."""
    marks: dict[str, Any] = {}
    for name in CASE_TEXTS[event.event_type]:
        if type(event).model_fields[name].is_required():
            marks[name] = SEALED_MARK
        else:
            marks[name] = [] if isinstance(getattr(event, name), list) else None
    return event.model_copy(update=marks)


def _folded(event: CaseEvent) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The case's row and the event's steps after a case opened, assigned, accepted and
    (for a closing or a reopening) resolved, then ``event``."""
    before = [samples.case_opened(), samples.case_assigned(), samples.case_accepted()]
    if event.event_type in ("CaseClosed", "CaseReopened"):
        before.append(samples.case_resolved())
    facts = None
    for version, earlier in enumerate(before, start=1):
        facts, _ = fold_case(facts, earlier, AT, version)
    facts, steps = fold_case(facts, event, AT, len(before) + 1)
    return facts.row(), [s.row() for s in steps]


FOLDED_BY_REPORTING = sorted(t for t in CASE_TEXTS if t in HANDLED_TYPES)


def test_the_texts_opened_are_all_the_texts_of_their_events() -> None:
    for event_type, fields in FOLDED_TEXTS.items():
        assert set(fields) == set(CASE_TEXTS[event_type]), event_type


@pytest.mark.parametrize("event_type", FOLDED_BY_REPORTING)
def test_a_text_left_sealed_changes_no_row_and_a_folded_one_would(event_type: str) -> None:
    event = _sample(event_type)
    assert any(getattr(event, f) not in (None, "", []) for f in CASE_TEXTS[event_type])

    clear, sealed = _folded(event), _folded(_as_sealed(event))

    if event_type in FOLDED_TEXTS:
        assert clear != sealed, f"{event_type}'s text is kept: the rebuild must open it"
    else:
        assert clear == sealed, f"{event_type}'s text reaches a row: add it to FOLDED_TEXTS"


async def test_the_folded_texts_are_opened_the_others_left_and_a_lost_key_erased(
    pool: asyncpg.Pool,
) -> None:
    texts = TextKeys()
    replied, resolved, opened = (
        samples.case_replied(),
        samples.case_resolved(),
        samples.case_opened(),
    )
    other = samples.case_closed().model_copy(update={"case_id": "case_gone", "note": "已核实"})
    async with district_transaction(pool, ALL_DISTRICTS) as conn:
        stored = await seal_case_events(conn, texts, [opened, replied, resolved, other])
        await conn.execute("DELETE FROM privacy.text_keys WHERE key_id = 'case_gone'")
    items = [
        (e.event_type, e.schema_version, json.dumps(serialize(e), ensure_ascii=False).encode())
        for e in stored
    ]
    assert [sealed_and_folded(t, d) for t, _, d in items] == [False, True, True, True]
    folder, opener = Folder(["cases"]), FoldedTextOpener(texts)

    async with pool.acquire() as conn:
        datas = await opener.open(conn, items, folder.parse)

    assert datas is not None
    assert datas[0] is items[0][2], "an opening's matched words are left sealed"
    assert datas[1].message == replied.message
    assert datas[1].sealed is None
    assert datas[2].result == resolved.result
    assert datas[3].note == ERASED
    async with pool.acquire() as conn:
        assert await opener.open(conn, items[:1], folder.parse) is None
