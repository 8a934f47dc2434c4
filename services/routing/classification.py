"""Classification (分类) and priority (小事/大事/要事) of an opinion's text.

The text is segmented with jieba, with a dictionary that has learnt every keyword of the
district's taxonomy (and no other district's), so that "燃气泄漏" or "电线裸露" come out
as words. A category matches through its keywords (and the intake hint when it names the category).

When the district has a trained model (:mod:`services.routing.classifier_model`), the
model's score for each category is added to the keywords' and the hint's, and an urgency
model can raise the priority to urgent; the n-grams that weighed most are kept as the
evidence. Rules and models can only raise a priority, never lower it. The matched words,
the evidence and the model's version are recorded in ``CaseOpened`` so anyone can see
why. Nothing matched and a model unsure: the case goes to a triage queue, never to a
silent default.
"""

from __future__ import annotations

import threading
import unicodedata
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import jieba

from contracts.cases import Priority
from contracts.directory import DeadlinePair, TaxonomyCategory, TaxonomyPublished
from services.routing.classifier_model import TextModel

KEYWORD_FREQ = 100_000
"""jieba frequency given to taxonomy keywords: high enough that a keyword is cut whole
even next to characters that form a rare dictionary word with it (路灯|不亮, not 路|灯不亮)."""

FALLBACK_DEADLINES = DeadlinePair(response="2wd", resolution="15wd")
"""Used only when a taxonomy names no default deadline for a priority or for normal."""

_RANK = {Priority.NORMAL: 0, Priority.IMPORTANT: 1, Priority.URGENT: 2}


def higher(a: Priority, b: Priority) -> Priority:
    """The higher of two priorities."""
    return a if _RANK[a] >= _RANK[b] else b


class Cutter(Protocol):
    """Cuts text into words with one taxonomy's vocabulary."""

    def cut(self, text: str) -> list[str]:
        """The words of ``text`` (long words and the shorter words inside them)."""


class Segmenter(Protocol):
    """Gives each taxonomy a cutter that keeps its keywords whole, and only its own."""

    def vocabulary(self, words: Iterable[str]) -> Cutter:
        """A cutter for which each of ``words`` is one word."""


class _JiebaCutter:
    """A jieba tokenizer of its own: the shared dictionary copied, plus one vocabulary."""

    __slots__ = ("__weakref__", "_tokenizer")

    def __init__(self, base: jieba.Tokenizer, words: Sequence[str]) -> None:
        tokenizer = jieba.Tokenizer()
        tokenizer.FREQ = dict(base.FREQ)
        tokenizer.total = base.total
        tokenizer.initialized = True
        for word in words:
            freq = max(tokenizer.suggest_freq(word, tune=False), KEYWORD_FREQ)
            tokenizer.add_word(word, freq=freq)
        self._tokenizer = tokenizer

    def cut(self, text: str) -> list[str]:
        """Search-mode segmentation: long words plus the dictionary words inside them."""
        words: list[str] = self._tokenizer.lcut_for_search(text, HMM=False)
        return words


class JiebaSegmenter:
    """jieba's dictionary, loaded once per process (it takes about a second) and never
    changed: each taxonomy's keywords go into a copy of their own (about 15 MB and 30 ms),
    shared by the taxonomies with the same keywords while one of them is in use. One
    district's keywords must not change how another district's texts are cut."""

    _lock = threading.Lock()
    _loaded = False

    def __init__(self) -> None:
        self._cutters: weakref.WeakValueDictionary[frozenset[str], _JiebaCutter] = (
            weakref.WeakValueDictionary()
        )

    def load(self) -> None:
        """Build jieba's prefix dictionary now rather than on the first opinion."""
        with JiebaSegmenter._lock:
            if not JiebaSegmenter._loaded:
                jieba.setLogLevel(60)  # its "Building prefix dict" lines are noise
                jieba.initialize()
                JiebaSegmenter._loaded = True

    @property
    def loaded(self) -> bool:
        """Whether jieba's dictionary is built."""
        return JiebaSegmenter._loaded

    def vocabulary(self, words: Iterable[str]) -> Cutter:
        """The cutter for exactly ``words`` (made once while anyone holds it)."""
        self.load()
        key = frozenset(words)
        with JiebaSegmenter._lock:
            cutter = self._cutters.get(key)
            if cutter is None:
                # In a fixed order: a word's suggested frequency depends on those before.
                cutter = _JiebaCutter(jieba.dt, sorted(key))
                self._cutters[key] = cutter
            return cutter


def normalise(text: str) -> str:
    """Full-width to half-width, lower case: the form keywords are matched in."""
    return unicodedata.normalize("NFKC", text).lower()


@dataclass(frozen=True, slots=True)
class Classification:
    """The outcome of classifying one text, with the evidence."""

    category_code: str | None
    matched_keywords: tuple[str, ...]
    priority: Priority
    priority_keywords: tuple[str, ...]
    hint_matched: bool = False
    model_version: int | None = None
    """The trained model's version (``ClassifierTrained``) when one took part."""
    evidence: tuple[str, ...] = ()
    """The n-grams of the text that weighed most for the category, strongest first."""
    confidence: float | None = None
    """The model's score for the category (above 0: the model would pick it alone)."""
    urgency: float | None = None
    """The urgency model's probability that the matter is urgent."""
    urgency_evidence: tuple[str, ...] = ()
    """When the urgency model made the matter urgent: the n-grams that weighed most."""


class Taxonomy:
    """A district's published taxonomy, with the lookups routing needs."""

    def __init__(self, published: TaxonomyPublished) -> None:
        self.published = published
        self.version = published.version
        self.categories: dict[str, TaxonomyCategory] = {c.code: c for c in published.categories}
        self._by_name = {normalise(c.name_zh): c.code for c in published.categories}
        self._by_name.update({normalise(c.code): c.code for c in published.categories})

    def category(self, code: str | None) -> TaxonomyCategory | None:
        """The category of ``code`` (None for None or an unknown code)."""
        return self.categories.get(code) if code else None

    def category_of_hint(self, hint: str | None) -> str | None:
        """The category a hint names by code or Chinese name, if any."""
        return self._by_name.get(normalise(hint).strip()) if hint else None

    def keywords(self) -> set[str]:
        """Every word the segmenter must keep whole."""
        words = {normalise(k) for c in self.published.categories for k in c.keywords}
        words |= {normalise(k) for k in self.published.urgent_keywords}
        words |= {normalise(k) for k in self.published.important_keywords}
        return words

    def deadlines(self, category_code: str | None, priority: Priority) -> DeadlinePair:
        """The response and resolution allowances for a category at a priority.

        The category's own entry for the priority, else the taxonomy's default for the
        priority, else the taxonomy's default for normal matters.
        """
        category = self.category(category_code)
        for table in (category.deadlines if category else None, self.published.default_deadlines):
            if table is not None:
                pair: DeadlinePair | None = getattr(table, priority.value)
                if pair is not None:
                    return pair
        return self.published.default_deadlines.normal or FALLBACK_DEADLINES

    def expertise(self, category_code: str | None) -> frozenset[str]:
        """The expertise tags that fit a category (its tags and its name)."""
        category = self.category(category_code)
        if category is None:
            return frozenset()
        return frozenset([*category.expertise, category.name_zh])


UNKNOWN_TO_MODEL = -1.0
"""The model's score of a category it was not trained on (one added to the taxonomy
since): such a category wins only with keywords or the hint, until the next training."""


class Classifier:
    """Classifies texts with one taxonomy, a cutter that keeps its keywords whole and,
    when the district has trained one, a :class:`TextModel`."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        segmenter: Segmenter,
        model: TextModel | None = None,
        model_version: int | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.model = model
        self.model_version = model_version if model is not None else None
        self._cutter = segmenter.vocabulary(taxonomy.keywords())
        self._category_words = [
            (c.code, c.priority, [normalise(k) for k in c.keywords])
            for c in taxonomy.published.categories
        ]
        self._urgent = [normalise(k) for k in taxonomy.published.urgent_keywords]
        self._important = [normalise(k) for k in taxonomy.published.important_keywords]
        if model is not None:
            where = {code: i for i, code in enumerate(model.categories)}
            self._model_column = [where.get(code) for code, _, _ in self._category_words]

    def classify(self, text: str, hint: str | None = None) -> Classification:
        """Category, priority and the words that decided them.

        Without a model, the category with the most distinct matched keywords wins (a
        hint naming a category counts as two); with one, the category with the highest
        model score plus ``keyword_weight`` per keyword (plus ``hint_weight`` for the
        hint). A tie goes to the category listed first in the taxonomy, so the outcome
        never depends on chance.
        """
        normalised = normalise(text)
        words = set(self._cutter.cut(normalised))
        hinted = self.taxonomy.category_of_hint(hint)
        matched = [_in_order(keywords, words) for _, _, keywords in self._category_words]
        urgent = _in_order(self._urgent, words)
        important = _in_order(self._important, words)
        priority = Priority.URGENT if urgent else Priority.NORMAL
        if not urgent and important:
            priority = Priority.IMPORTANT
        if self.model is None:
            view = _ModelView(self._by_keywords(matched, hinted))
        else:
            view = self._by_model(normalised, matched, hinted)
            if view.urgent:
                priority = Priority.URGENT
        code: str | None = None
        if view.chosen is not None:
            code, own_priority, _ = self._category_words[view.chosen]
            priority = higher(priority, own_priority)
        else:
            fallback = self.taxonomy.published.urgent_category
            if priority is Priority.URGENT and fallback in self.taxonomy.categories:
                assert fallback is not None
                code = fallback
                priority = higher(priority, self.taxonomy.categories[fallback].priority)
        return Classification(
            code,
            tuple(matched[view.chosen]) if view.chosen is not None else (),
            priority,
            tuple(urgent or important),
            hint_matched=view.chosen is not None and code == hinted,
            model_version=self.model_version,
            evidence=view.evidence,
            confidence=view.confidence,
            urgency=view.urgency,
            urgency_evidence=view.urgency_evidence,
        )

    def _by_keywords(self, matched: list[list[str]], hinted: str | None) -> int | None:
        best: tuple[int, int] | None = None
        for i, (code, _, _) in enumerate(self._category_words):
            score = len(matched[i]) + (2 if code == hinted else 0)
            if score > 0 and (best is None or score > best[0]):
                best = (score, i)
        return best[1] if best else None

    def _by_model(
        self, normalised: str, matched: list[list[str]], hinted: str | None
    ) -> _ModelView:
        model = self.model
        assert model is not None
        params = model.hyperparameters
        features = model.features(normalised)
        scores = model.category_scores(features)
        best: tuple[float, int] | None = None
        for i, (code, _, _) in enumerate(self._category_words):
            column = self._model_column[i]
            own = float(scores[column]) if column is not None else UNKNOWN_TO_MODEL
            score = own + params.keyword_weight * len(matched[i])
            score += params.hint_weight if code == hinted else 0.0
            if best is None or score > best[0]:
                best = (score, i)
        urgency = model.urgency(features)
        urgent = urgency >= model.urgency_threshold
        urgency_evidence = tuple(model.urgency_evidence(features)) if urgent else ()
        chosen = best[1] if best is not None else None
        column = self._model_column[chosen] if chosen is not None else None
        confidence = round(float(scores[column]), 4) if column is not None else None
        unsure = confidence is None or confidence < params.triage_below
        if chosen is None or (unsure and not any(matched) and hinted is None):
            return _ModelView(None, urgent, (), None, round(urgency, 4), urgency_evidence)
        code = self._category_words[chosen][0]
        evidence = tuple(model.category_evidence(features, code)) if column is not None else ()
        return _ModelView(chosen, urgent, evidence, confidence, round(urgency, 4), urgency_evidence)


@dataclass(frozen=True, slots=True)
class _ModelView:
    """What the keywords or the model chose, with the model's evidence."""

    chosen: int | None
    """The index of the chosen category in the taxonomy (None: triage)."""
    urgent: bool = False
    evidence: tuple[str, ...] = ()
    confidence: float | None = None
    urgency: float | None = None
    urgency_evidence: tuple[str, ...] = ()


def _in_order(keywords: Sequence[str], words: set[str]) -> list[str]:
    """The keywords present among ``words``, once each, in the taxonomy's order."""
    return list(dict.fromkeys(k for k in keywords if k in words))
