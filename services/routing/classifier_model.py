"""The district's learnt text model (分类模型), fitted with scikit-learn, kept as plain
arrays and applied with numpy. No I/O.

Two linear models share one set of features, the TF-IDF of the text's character
n-grams (one and two characters: 燃, 燃气, 气泄, 泄露…), so that variants and typos that
share characters with known wordings (煤气泄露 and 燃气泄漏, 电梯困人 and 被困电梯里)
weigh alike without anyone listing them:

- the **category model** (one linear SVM per category, one against the rest) gives each
  category a score; :class:`~services.routing.classification.Classifier` adds the
  taxonomy's keywords and the intake hint to it;
- the **urgency model** (logistic regression, urgent or not) gives the probability that
  the matter is urgent. Its threshold is set for recall: the lowest out-of-fold
  probability of an urgent example that the keyword rules do not already catch, times a
  margin, so that every urgent example seen in training would have been flagged by a
  model that had not seen it. It can only raise a priority, never lower it.

Each taxonomy keyword is also a short training example of its category (and each urgent
keyword an urgent one), so the words the district wrote count even before staff have
labelled anything like them.

Prediction does not go through scikit-learn: the n-grams of one text are looked up in
the vocabulary and multiplied with the weights, which costs tens of microseconds instead
of the library's per-call checks.
``tests/routing/test_routing_classification_model.py`` checks that both give the same
scores.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from contracts.cases import Priority

METHOD = "char-ngram-tfidf/linear-svc+logistic-urgency/1"
"""What :func:`fit` does; a model fitted another way names another method."""

_SPACES = re.compile(r"\s\s+")


@dataclass(frozen=True, slots=True)
class LabelledOpinion:
    """An opinion's text with the category and priority a person gave it."""

    text: str
    category: str | None
    priority: Priority
    weight: float = 1.0
    """How much the example counts in training (a staff correction counts more)."""

    def canonical(self) -> str:
        """One line that identifies the example (what the training digests hash)."""
        return json.dumps(
            [self.text, self.category, self.priority.value, self.weight], ensure_ascii=False
        )


def digest(examples: Sequence[LabelledOpinion]) -> str:
    """SHA-256 of the examples in order: the same examples give the same digest."""
    h = hashlib.sha256()
    for example in examples:
        h.update(example.canonical().encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    """Everything that decides the fitted model besides the examples."""

    ngram_max: int = 2
    """The longest character n-gram (from 1)."""
    category_c: float = 1.0
    """The category SVM's C (larger: fits the examples more closely)."""
    urgency_c: float = 3.0
    """The urgency model's C."""
    keyword_weight: float = 0.2
    """Added to a category's score for each of its taxonomy keywords found in the text."""
    hint_weight: float = 0.5
    """Added to the score of the category the intake hint names."""
    triage_below: float = -0.5
    """With no keyword and no hint, a best score below this leaves the case to triage."""
    correction_weight: float = 2.0
    """How much a staff correction counts against an example of the labelled set."""
    urgency_margin: float = 0.9
    """The urgency threshold is this fraction of the lowest out-of-fold probability of an
    urgent example the keyword rules miss: a margin for wordings nobody wrote yet."""
    urgency_floor: float = 0.05
    """The threshold never goes below this, whatever the examples."""
    folds: int = 5
    seed: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """The values, for the ``ClassifierTrained`` event."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """The hyperparameters an event recorded (unknown names are an error), each of its
        field's type (a JSON ``1`` for a float field is ``1.0``: the digest depends on it)."""
        defaults = cls()
        unknown = sorted(set(values) - set(asdict(defaults)))
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}")
        return cls(**{name: type(getattr(defaults, name))(value) for name, value in values.items()})


@dataclass(frozen=True, slots=True)
class Features:
    """A text's features: the columns present and their L2-normalised TF-IDF values."""

    columns: NDArray[np.intp]
    values: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class TextModel:
    """A fitted model: the vocabulary, the weights, the thresholds (see the module's note)."""

    ngram_max: int
    terms: tuple[str, ...]
    idf: NDArray[np.float32]
    categories: tuple[str, ...]
    weights: NDArray[np.float32]
    """(terms × categories): a column's weight for each category."""
    bias: NDArray[np.float32]
    urgency_weights: NDArray[np.float32]
    urgency_bias: float
    urgency_threshold: float
    hyperparameters: Hyperparameters
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.terms)})

    # ------------------------------------------------------------------- prediction

    def features(self, text: str) -> Features:
        """The TF-IDF features of a text already normalised (see ``classification``)."""
        text = _SPACES.sub(" ", text)
        counts: Counter[int] = Counter()
        index = self._index
        for n in range(1, self.ngram_max + 1):
            for i in range(len(text) - n + 1):
                column = index.get(text[i : i + n])
                if column is not None:
                    counts[column] += 1
        if not counts:
            return Features(np.empty(0, np.intp), np.empty(0, np.float64))
        columns = np.fromiter(counts.keys(), np.intp, len(counts))
        tf = np.fromiter(counts.values(), np.float64, len(counts))
        values = (1.0 + np.log(tf)) * self.idf[columns]
        values /= math.sqrt(float(values @ values))
        return Features(columns, values)

    def category_scores(self, features: Features) -> NDArray[np.float64]:
        """Each category's score (in the order of :attr:`categories`)."""
        scores: NDArray[np.float64] = features.values @ self.weights[features.columns] + self.bias
        return scores

    def urgency(self, features: Features) -> float:
        """The probability that the matter is urgent."""
        z = float(features.values @ self.urgency_weights[features.columns]) + self.urgency_bias
        return 1.0 / (1.0 + math.exp(-z))

    def category_evidence(self, features: Features, category: str, limit: int = 5) -> list[str]:
        """The n-grams that weighed most for ``category``, strongest first."""
        column = self.categories.index(category)
        return self._strongest(features, self.weights[features.columns, column], limit)

    def urgency_evidence(self, features: Features, limit: int = 5) -> list[str]:
        """The n-grams that weighed most towards urgency, strongest first."""
        return self._strongest(features, self.urgency_weights[features.columns], limit)

    def _strongest(self, features: Features, weights: NDArray[np.float32], limit: int) -> list[str]:
        contributions = features.values * weights
        order = np.argsort(-contributions, kind="stable")
        found: list[str] = []
        for i in order:
            if contributions[i] <= 0 or len(found) == limit:
                break
            term = self.terms[int(features.columns[i])]
            # A single character says little once a longer n-gram containing it is shown.
            if len(term) > 1 or not any(term in f for f in found):
                found.append(term)
        return found

    # ---------------------------------------------------------------- persistence

    @property
    def digest(self) -> str:
        """SHA-256 of what decides every prediction (not of the stored container)."""
        h = hashlib.sha256()
        h.update(json.dumps([METHOD, self.ngram_max, list(self.categories)]).encode())
        h.update("\x00".join(self.terms).encode("utf-8"))
        for array in (self.idf, self.weights, self.bias, self.urgency_weights):
            h.update(np.ascontiguousarray(array).tobytes())
        h.update(np.float64(self.urgency_bias).tobytes())
        h.update(np.float64(self.urgency_threshold).tobytes())
        h.update(json.dumps(self.hyperparameters.as_dict(), sort_keys=True).encode())
        return h.hexdigest()

    def to_bytes(self) -> bytes:
        """The model as a compressed NumPy archive (no pickles)."""
        meta = {
            "method": METHOD,
            "ngram_max": self.ngram_max,
            "categories": list(self.categories),
            "urgency_bias": self.urgency_bias,
            "urgency_threshold": self.urgency_threshold,
            "hyperparameters": self.hyperparameters.as_dict(),
        }
        out = io.BytesIO()
        np.savez_compressed(
            out,
            meta=np.array(json.dumps(meta)),
            terms=np.array(self.terms, dtype=np.str_),
            idf=self.idf,
            weights=self.weights,
            bias=self.bias,
            urgency_weights=self.urgency_weights,
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TextModel:
        """A model stored by :meth:`to_bytes`."""
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            if meta["method"] != METHOD:
                raise ValueError(f"unknown classifier method {meta['method']!r}")
            return cls(
                ngram_max=int(meta["ngram_max"]),
                terms=tuple(str(t) for t in archive["terms"]),
                idf=archive["idf"],
                categories=tuple(meta["categories"]),
                weights=archive["weights"],
                bias=archive["bias"],
                urgency_weights=archive["urgency_weights"],
                urgency_bias=float(meta["urgency_bias"]),
                urgency_threshold=float(meta["urgency_threshold"]),
                hyperparameters=Hyperparameters.from_dict(meta["hyperparameters"]),
            )


# ---------------------------------------------------------------------------- fitting


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The taxonomy's words, which :func:`fit` adds as examples of their own."""

    categories: Mapping[str, Sequence[str]]
    """Each category's keywords, in the taxonomy's order."""
    urgent: Sequence[str]


def fit(
    examples: Sequence[LabelledOpinion],
    vocabulary: Vocabulary,
    params: Hyperparameters,
    *,
    urgent_by_rule: Sequence[bool],
    normalise: Callable[[str], str],
) -> TextModel:
    """Fit both models on ``examples`` (deterministic: the same inputs give the same model).

    ``urgent_by_rule[i]`` tells whether the keyword rules already make example ``i``
    urgent (the urgency threshold is set on the others); ``normalise`` is the text
    normalisation prediction uses.
    """
    # Imported here: the service predicts with numpy alone and starts without them.
    from scipy.sparse import vstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import LinearSVC

    texts = [normalise(e.text) for e in examples]
    weights = np.array([e.weight for e in examples], dtype=np.float64)
    keyword_texts = [normalise(k) for words in vocabulary.categories.values() for k in words]
    keyword_labels = [c for c, words in vocabulary.categories.items() for _ in words]
    urgent_texts = [normalise(k) for k in vocabulary.urgent]

    vectoriser = TfidfVectorizer(
        analyzer="char",
        ngram_range=(1, params.ngram_max),
        lowercase=False,
        sublinear_tf=True,
        dtype=np.float64,
    )
    vectoriser.fit([*texts, *keyword_texts, *urgent_texts])
    x = vectoriser.transform(texts)

    # The category model: the examples that have a category, and the taxonomy's keywords.
    known = set(vocabulary.categories)
    with_category = [i for i, e in enumerate(examples) if e.category in known]
    labels = [examples[i].category for i in with_category] + keyword_labels
    svm = LinearSVC(C=params.category_c, random_state=params.seed, max_iter=5000)
    svm.fit(
        vstack([x[with_category], vectoriser.transform(keyword_texts)]),
        labels,
        sample_weight=np.concatenate([weights[with_category], np.ones(len(keyword_texts))]),
    )

    # The urgency model: every example, and the urgent keywords as urgent examples.
    urgent = np.array([e.priority is Priority.URGENT for e in examples])
    x_urgent = vstack([x, vectoriser.transform(urgent_texts)]).tocsr()
    y_urgent = np.concatenate([urgent, np.ones(len(urgent_texts), dtype=bool)])
    w_urgent = np.concatenate([weights, np.ones(len(urgent_texts))])

    def urgency_model() -> Any:
        return LogisticRegression(
            C=params.urgency_c,
            class_weight="balanced",
            solver="liblinear",
            random_state=params.seed,
            max_iter=5000,
        )

    threshold = 0.5
    missed_by_rules = urgent & ~np.array(urgent_by_rule, dtype=bool)
    if urgent.sum() >= params.folds and (~urgent).sum() >= params.folds:
        folds = StratifiedKFold(params.folds, shuffle=True, random_state=params.seed)
        out_of_fold = np.zeros(len(examples))
        n = len(examples)
        for train, test in folds.split(np.zeros(n), urgent):
            rows = np.concatenate([train, np.arange(n, n + len(urgent_texts))])
            model = urgency_model().fit(
                x_urgent[rows], y_urgent[rows], sample_weight=w_urgent[rows]
            )
            out_of_fold[test] = model.predict_proba(x[test])[:, 1]
        if missed_by_rules.any():
            lowest = float(out_of_fold[missed_by_rules].min())
            threshold = min(0.5, max(params.urgency_floor, lowest * params.urgency_margin))
    urgency = urgency_model().fit(x_urgent, y_urgent, sample_weight=w_urgent)

    classes = [str(c) for c in svm.classes_]
    coef = np.asarray(svm.coef_, dtype=np.float64)
    intercept = np.asarray(svm.intercept_, dtype=np.float64)
    if len(classes) == 2:  # one column for two classes: the second's score, the first's is minus it
        coef = np.vstack([-coef[0], coef[0]])
        intercept = np.array([-intercept[0], intercept[0]])
    return TextModel(
        ngram_max=params.ngram_max,
        terms=tuple(str(t) for t in vectoriser.get_feature_names_out()),
        idf=np.asarray(vectoriser.idf_, dtype=np.float32),
        categories=tuple(classes),
        weights=np.ascontiguousarray(coef.T, dtype=np.float32),
        bias=intercept.astype(np.float32),
        urgency_weights=np.asarray(urgency.coef_[0], dtype=np.float32),
        urgency_bias=float(urgency.intercept_[0]),
        urgency_threshold=round(threshold, 6),
        hyperparameters=params,
    )
