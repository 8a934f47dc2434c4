"""How well a classifier does on labelled opinions: accuracy, each category's precision
and recall, urgent recall, the most frequent confusions. No I/O: the examples come in as
lines (JSON Lines: ``{"text": …, "category": code or null, "priority": …}``).

A model is *worse* than another when it finds fewer of the urgent examples, or, finding
as many, puts fewer examples in the right category: urgent recall comes first.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from contracts.cases import Priority
from services.routing.classification import Classification
from services.routing.classifier_model import LabelledOpinion

TRIAGE = "（待分拣）"
"""How the report names "no category" (the triage queue)."""


class ExamplesError(ValueError):
    """A labelled set that cannot be read, with the line of each problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_examples(lines: Iterable[str], source: str = "") -> list[LabelledOpinion]:
    """The labelled opinions of a JSON Lines text (blank lines and ``#`` lines skipped)."""
    examples: list[LabelledOpinion] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            row = json.loads(line)
            text, category = row["text"], row.get("category")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("empty text")
            if category is not None and not isinstance(category, str):
                raise ValueError("category must be a code or null")
            examples.append(
                LabelledOpinion(text, category or None, Priority(row.get("priority", "normal")))
            )
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{source}:{number}: {exc}")
    if problems:
        raise ExamplesError(problems)
    return examples


@dataclass(frozen=True, slots=True)
class CategoryFigures:
    """One category's figures on a labelled set."""

    code: str
    support: int
    """Examples labelled with the category."""
    predicted: int
    """Examples the classifier put in it."""
    correct: int

    @property
    def precision(self) -> float:
        """Of the examples put in the category, the share that belongs there."""
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """Of the examples that belong to the category, the share found."""
        return self.correct / self.support if self.support else 0.0


@dataclass(frozen=True)
class Report:
    """A classifier's figures on a labelled set."""

    examples: int
    correct: int
    triaged: int
    """Examples left without a category (the triage queue)."""
    urgent: int
    urgent_found: int
    flagged_urgent: int
    """Examples the classifier made urgent (rightly or not)."""
    priority_correct: int
    categories: tuple[CategoryFigures, ...]
    confusions: tuple[tuple[str, str, int], ...]
    """(labelled, predicted, how many), most frequent first."""
    missed_urgent: tuple[str, ...]

    @property
    def accuracy(self) -> float:
        """The share of examples put in the labelled category (triage counts as wrong)."""
        return self.correct / self.examples if self.examples else 0.0

    @property
    def urgent_recall(self) -> float:
        """The share of urgent examples made urgent (1 when there are none)."""
        return self.urgent_found / self.urgent if self.urgent else 1.0

    @property
    def urgent_precision(self) -> float:
        """The share of the examples made urgent that are urgent."""
        return self.urgent_found / self.flagged_urgent if self.flagged_urgent else 1.0

    @property
    def priority_accuracy(self) -> float:
        """The share of examples given the labelled priority."""
        return self.priority_correct / self.examples if self.examples else 0.0

    def worse_than(self, other: Report) -> str | None:
        """Why this report is worse than ``other`` (None when it is not)."""
        if self.urgent_recall < other.urgent_recall:
            return (
                f"urgent recall {self.urgent_recall:.1%} < {other.urgent_recall:.1%} "
                "of the classifier in use"
            )
        if self.urgent_recall == other.urgent_recall and self.accuracy < other.accuracy:
            return f"accuracy {self.accuracy:.1%} < {other.accuracy:.1%} of the classifier in use"
        return None

    def lines(self, *, confusions: int = 10, names: dict[str, str] | None = None) -> list[str]:
        """The report as text: the summary, the per-category table, the confusions."""
        names = names or {}
        out = [
            f"examples {self.examples}   accuracy {self.accuracy:.1%} ({self.correct})   "
            f"triage {self.triaged}",
            f"urgent recall {self.urgent_recall:.1%} ({self.urgent_found}/{self.urgent})   "
            f"urgent precision {self.urgent_precision:.1%} "
            f"({self.urgent_found}/{self.flagged_urgent})   "
            f"priority accuracy {self.priority_accuracy:.1%}",
            "",
            f"{'category':<18} {'n':>4} {'precision':>10} {'recall':>8}  name",
        ]
        for c in self.categories:
            name = names.get(c.code, "")
            out.append(f"{c.code:<18} {c.support:>4} {c.precision:>10.1%} {c.recall:>8.1%}  {name}")
        if self.confusions:
            out += ["", "most frequent confusions (labelled -> classified):"]
            out += [f"  {a} -> {b}: {n}" for a, b, n in self.confusions[:confusions]]
        if self.missed_urgent:
            out += ["", "urgent examples not made urgent:"]
            out += [f"  {text}" for text in self.missed_urgent]
        return out


def evaluate(
    classify: Callable[[str], Classification], examples: Sequence[LabelledOpinion]
) -> Report:
    """Classify every example and compare with its labels."""
    support: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    missed: list[str] = []
    urgent = found = flagged = priority_correct = triaged = 0
    for example in examples:
        result = classify(example.text)
        expected = example.category or TRIAGE
        got = result.category_code or TRIAGE
        support[expected] += 1
        predicted[got] += 1
        if got == expected:
            correct[expected] += 1
        else:
            confusions[(expected, got)] += 1
        triaged += result.category_code is None
        priority_correct += result.priority is example.priority
        flagged += result.priority is Priority.URGENT
        if example.priority is Priority.URGENT:
            urgent += 1
            if result.priority is Priority.URGENT:
                found += 1
            else:
                missed.append(example.text)
    codes = sorted(set(support) | set(predicted), key=lambda c: (c == TRIAGE, c))
    return Report(
        examples=len(examples),
        correct=sum(correct.values()),
        triaged=triaged,
        urgent=urgent,
        urgent_found=found,
        flagged_urgent=flagged,
        priority_correct=priority_correct,
        categories=tuple(CategoryFigures(c, support[c], predicted[c], correct[c]) for c in codes),
        confusions=tuple(
            (a, b, n) for (a, b), n in sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        missed_urgent=tuple(missed),
    )
