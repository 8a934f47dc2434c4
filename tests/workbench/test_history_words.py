"""A case's history in words: the codes an event names shown by what they stand for."""

from __future__ import annotations

from services.routing.api_models import HistoryEntry
from services.routing.workbench.page_views import history_details


def _entry(**data: object) -> HistoryEntry:
    return HistoryEntry(
        version=1,
        event_id="e1",
        type="CaseOpened",
        label="立案",
        occurred_at="2026-12-01T08:00:00+00:00",
        recorded_at="2026-12-01T08:00:00+00:00",
        actor={"id": "system", "role": "system"},
        data=dict(data),
    )


LABELS = {
    "station_code": {"S01": "东湖站（S01）"},
    "category_code": {"road": "道路交通"},
    "priority": {"important": "大事"},
    "relation": {"duplicate": "重复"},
}


def test_codes_are_shown_in_words() -> None:
    entry = _entry(station_code="S01", category_code="road", priority="important")

    assert history_details(entry, LABELS) == [
        ("station_code", "东湖站（S01）"),
        ("category_code", "道路交通"),
        ("priority", "大事"),
    ]


def test_a_code_without_words_is_shown_as_it_is() -> None:
    entry = _entry(station_code="S99", relation="duplicate", message="已联系物业")

    assert history_details(entry, LABELS) == [
        ("message", "已联系物业"),
        ("station_code", "S99"),
        ("relation", "重复"),
    ]


def test_free_text_is_never_translated() -> None:
    entry = _entry(message="important")

    assert history_details(entry, LABELS) == [("message", "important")]
