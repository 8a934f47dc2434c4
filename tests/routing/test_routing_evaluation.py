"""``evaluate`` and ``Report.worse_than`` on a labelled set made by hand, with a
classifier given by a table: every figure of the report worked out here from its
definition in docs/routing.md ("Learning from staff", the formulas)."""

from __future__ import annotations

import pytest

from contracts import Priority
from services.routing.classification import Classification
from services.routing.classifier_model import LabelledOpinion
from services.routing.evaluation import TRIAGE, Report, evaluate

N, IMP, U = Priority.NORMAL, Priority.IMPORTANT, Priority.URGENT

# (text, labelled category, labelled priority, classified category, classified priority)
TABLE = [
    ("a1", "safety", U, "safety", U),  # right, urgent found
    ("a2", "safety", U, "property", U),  # wrong category, urgent found
    ("a3", "safety", U, "safety", N),  # right category, urgent missed
    ("a4", "property", N, "property", N),
    ("a5", "property", N, "safety", U),  # wrong, and flagged urgent wrongly
    ("a6", "property", IMP, "property", IMP),
    ("a7", None, N, None, N),  # no matter named, left to triage: right
    ("a8", "education", N, None, N),  # left to triage: wrong
    ("a9", "property", N, "safety", N),  # the same confusion as a5
]


def classify_by_table(text: str) -> Classification:
    for t, _, _, category, priority in TABLE:
        if t == text:
            return Classification(category, (), priority, ())
    raise KeyError(text)


@pytest.fixture
def report() -> Report:
    examples = [LabelledOpinion(t, c, p) for t, c, p, _, _ in TABLE]
    return evaluate(classify_by_table, examples)


def test_the_figures_of_a_report_follow_their_definitions(report: Report) -> None:
    assert report.examples == 9
    assert report.correct == 5  # a1, a3, a4, a6, a7
    assert report.accuracy == pytest.approx(5 / 9)
    assert report.triaged == 2  # a7, a8
    assert (report.urgent, report.urgent_found, report.flagged_urgent) == (3, 2, 3)
    assert report.urgent_recall == pytest.approx(2 / 3)
    assert report.urgent_precision == pytest.approx(2 / 3)  # a1, a2 of a1, a2, a5
    assert report.priority_correct == 7  # all but a3 (urgent missed) and a5 (made urgent)
    assert report.missed_urgent == ("a3",)


def test_each_category_has_its_precision_and_recall_and_triage_comes_last(
    report: Report,
) -> None:
    figures = {c.code: (c.support, c.predicted, c.correct) for c in report.categories}

    assert [c.code for c in report.categories] == ["education", "property", "safety", TRIAGE]
    assert figures == {
        "education": (1, 0, 0),
        "property": (4, 3, 2),  # a4, a6 right of a2, a4, a6 put there; a5, a9 lost
        "safety": (3, 4, 2),  # a1, a3 right of a1, a3, a5, a9 put there; a2 lost
        TRIAGE: (1, 2, 1),
    }
    by_code = {c.code: c for c in report.categories}
    assert by_code["property"].precision == pytest.approx(2 / 3)
    assert by_code["property"].recall == pytest.approx(2 / 4)
    assert by_code["safety"].precision == pytest.approx(2 / 4)
    assert by_code["safety"].recall == pytest.approx(2 / 3)
    assert by_code["education"].precision == 0.0  # nothing put there
    assert by_code["education"].recall == 0.0


def test_confusions_are_counted_and_the_most_frequent_come_first(report: Report) -> None:
    assert report.confusions == (
        ("property", "safety", 2),
        ("education", TRIAGE, 1),
        ("safety", "property", 1),
    )
    text = "\n".join(report.lines())
    assert "property -> safety: 2" in text
    assert "urgent examples not made urgent:\n  a3" in text


def _report(urgent_found: int, correct: int) -> Report:
    return Report(
        examples=10,
        correct=correct,
        triaged=0,
        urgent=4,
        urgent_found=urgent_found,
        flagged_urgent=urgent_found,
        priority_correct=0,
        categories=(),
        confusions=(),
        missed_urgent=(),
    )


def test_urgent_recall_comes_before_accuracy_when_judging_a_candidate() -> None:
    in_use = _report(urgent_found=4, correct=6)

    # More accurate but misses an urgent matter: worse.
    reason = _report(urgent_found=3, correct=9).worse_than(in_use)
    assert reason is not None
    assert reason.startswith("urgent recall 75.0% < 100.0%")
    # As many urgent matters, fewer in the right category: worse.
    reason = _report(urgent_found=4, correct=5).worse_than(in_use)
    assert reason is not None
    assert reason.startswith("accuracy 50.0% < 60.0%")
    # As good, or better on either: not worse.
    assert _report(urgent_found=4, correct=6).worse_than(in_use) is None
    assert _report(urgent_found=4, correct=7).worse_than(in_use) is None
    # Less accurate but finds an urgent matter the one in use misses: not worse.
    assert _report(urgent_found=4, correct=3).worse_than(_report(3, 9)) is None
