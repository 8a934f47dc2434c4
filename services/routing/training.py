"""Training the district's classifier (``minqing routing train``): from the labelled set
kept with the district's file plus every staff correction (``CaseClassified``) of the
district, fit a model (:mod:`services.routing.classifier_model`), compare it on the
held-out set with the classifier in use, and publish it only if it is not worse.

Publishing appends ``ClassifierTrained`` to the district's stream and keeps the fitted
model in ``routing.classifier_models`` in one transaction, under the lock directory
changes take, and bumps the district's directory version so every instance reloads its
context. The event records what reproduces the model: the digests of the labelled
examples and of the corrections, the store position the corrections were read up to,
the hyperparameters and the library versions; :meth:`ClassifierTraining.reproduce`
fits it again from them and checks the digest.

The held-out set is never trained on: it only judges.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import asyncpg

from contracts.base import Actor
from contracts.cases import CaseClassified, Priority
from contracts.directory import ClassifierTrained, StorePosition, TaxonomyPublished
from contracts.envelope import Envelope, Metadata
from eventkit.clock import Clock
from eventkit.db import Conn, district_transaction
from eventkit.logging import get_logger
from eventkit.privacy_rights import ERASED
from eventkit.store import ANY_VERSION, Checkpoint, EventStore, RecordedEvent
from services.routing.classification import Classifier, Segmenter, Taxonomy, normalise
from services.routing.classifier_model import (
    METHOD,
    Hyperparameters,
    LabelledOpinion,
    TextModel,
    Vocabulary,
    digest,
    fit,
)
from services.routing.classifier_store import MissingModel
from services.routing.directory_projection import project_directory
from services.routing.district_context import DistrictContext, DistrictContexts
from services.routing.errors import RoutingError
from services.routing.evaluation import Report, evaluate, parse_examples

log = get_logger(__name__)

DISTRICTS = Path(__file__).resolve().parents[2] / "deploy" / "districts"
"""Where a checkout keeps the district files, and each district's labelled opinions in
``<district>-opinions/labelled.jsonl`` (training) and ``heldout.jsonl`` (judging only)."""


def labelled_set(district_id: str) -> Path:
    """The district's labelled opinions in a checkout."""
    return DISTRICTS / f"{district_id}-opinions" / "labelled.jsonl"


def heldout_set(district_id: str) -> Path:
    """The district's held-out opinions in a checkout."""
    return DISTRICTS / f"{district_id}-opinions" / "heldout.jsonl"


def load_examples(path: Path) -> list[LabelledOpinion]:
    """The labelled opinions of a JSON Lines file."""
    return parse_examples(path.read_text(encoding="utf-8").splitlines(), str(path))


@dataclass(frozen=True)
class Corrections:
    """The district's staff corrections: the last ``CaseClassified`` of each case."""

    examples: list[LabelledOpinion]
    through: StorePosition | None


@dataclass(frozen=True)
class TrainingOutcome:
    """What training did: the figures of both classifiers, and the event if published."""

    candidate: Report
    in_use: Report
    in_use_version: int | None
    published: ClassifierTrained | None
    refused: str | None
    """Why the new model was not published (None when it was)."""
    missing_version: int | None = None
    """The lost version the new model was judged to replace (``replace_missing``)."""


def libraries() -> dict[str, str]:
    """The versions of the libraries that fit a model."""
    return {name: metadata.version(name) for name in ("scikit-learn", "scipy", "numpy")}


class ClassifierTraining:
    """Trains, judges, publishes and reproduces districts' classifiers."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        districts: DistrictContexts,
        segmenter: Segmenter,
        clock: Clock,
    ) -> None:
        self._pool = pool
        self._store = store
        self._districts = districts
        self._segmenter = segmenter
        self._clock = clock

    async def train(
        self,
        district_id: str,
        labelled: Sequence[LabelledOpinion],
        heldout: Sequence[LabelledOpinion],
        actor: Actor,
        params: Hyperparameters | None = None,
        *,
        replace_missing: bool = False,
    ) -> TrainingOutcome:
        """Fit on ``labelled`` plus the corrections, judge on ``heldout``, publish if not
        worse than the classifier in use (the taxonomy's keywords when there is none).

        When the model in use is lost from ``routing.classifier_models`` this refuses,
        unless ``replace_missing``: for a lost version that cannot be fitted again (its
        labelled set is gone, a corrected text was erased since, the libraries changed),
        the candidate is judged against the keywords the district runs on meanwhile, and
        published as the version after the lost one, which it replaces."""
        params = params or Hyperparameters()
        async with district_transaction(self._pool, district_id) as conn:
            ctx = await self._districts.require(conn, district_id)
            corrections = await self.corrections(conn, district_id)
        missing = ctx.missing_model
        if missing is not None and not replace_missing:
            # A candidate is judged against the model in use, which is not there.
            raise RoutingError(
                f"区 {district_id} 在用的分类模型第 {missing} 版不在模型表中：请先用 "
                f"--reproduce {missing} 重新拟合；无法重新拟合时，用 --replace-missing "
                f"训练新模型（与关键词比较）",
                f"the model in use (version {missing}) is not in routing.classifier_models: "
                f"fit it again first with `--reproduce {missing}`, or, when it cannot be, "
                f"train a new one judged against the keywords with `--replace-missing`",
            )
        taxonomy, in_use = self._classifiers(ctx)
        examples = self._with_corrections(labelled, corrections, params)
        model = await asyncio.to_thread(self._fit, taxonomy, examples, params)
        candidate = Classifier(taxonomy, self._segmenter, model, model_version=0)
        new = evaluate(lambda text: candidate.classify(text), heldout)
        old = evaluate(lambda text: in_use.classify(text), heldout)
        # The version the new one follows: the lost one, when it replaces it.
        in_use_version = in_use.model_version if missing is None else missing
        refused = new.worse_than(old)
        if refused is None and in_use.model is not None and in_use.model.digest == model.digest:
            refused = "the new model is the one in use (nothing new to learn from)"
        if refused is not None:
            log.info("classifier refused", district=district_id, reason=refused)
            return TrainingOutcome(new, old, in_use_version, None, refused, missing)
        event = await self._publish(
            district_id,
            model,
            taxonomy,
            labelled=labelled,
            corrections=corrections,
            heldout=heldout,
            report=new,
            replaced=in_use_version,
            actor=actor,
        )
        return TrainingOutcome(new, old, in_use_version, event, None, missing)

    async def ensure_trained(self, district_id: str, actor: Actor) -> TrainingOutcome | None:
        """Train the district's first classifier from the labelled and held-out sets kept
        with its file, when it has none in use yet (what ``routing_train_districts`` asks
        at start-up). None when it already has one; refused like :meth:`train` otherwise.

        A model in use that ``routing.classifier_models`` lost is fitted again from its
        event and the district's labelled set (:meth:`reproduce`); when that cannot be
        done (it was trained on another set), it is said, and the keywords go on alone."""
        models = self._districts.models
        lost: int | None = None
        async with district_transaction(self._pool, district_id) as conn:
            try:
                if await models.in_use(conn, district_id) is not None:
                    return None
            except MissingModel as missing:
                lost = missing.version
        labelled = await asyncio.to_thread(load_examples, labelled_set(district_id))
        if lost is not None:
            try:
                await self.reproduce(district_id, lost, labelled)
            except RoutingError as exc:
                log.error(
                    "classifier not fitted again",
                    district=district_id,
                    version=lost,
                    reason=str(exc),
                )
            else:
                log.info("classifier fitted again", district=district_id, version=lost)
            return None
        heldout = await asyncio.to_thread(load_examples, heldout_set(district_id))
        return await self.train(district_id, labelled, heldout, actor)

    async def reproduce(
        self, district_id: str, version: int, labelled: Sequence[LabelledOpinion]
    ) -> TextModel:
        """Fit version ``version`` again from what its ``ClassifierTrained`` recorded, check
        that the same model comes out, and keep it if the table lost it."""
        event = await self.published(district_id, version)
        if digest(labelled) != event.examples_digest:
            raise RoutingError(
                "标注样本与训练时不同", "the labelled set differs from the one trained on"
            )
        params = Hyperparameters.from_dict(event.hyperparameters)
        async with district_transaction(self._pool, district_id) as conn:
            ctx = await self._districts.require(conn, district_id)
            corrections = await self.corrections(conn, district_id, event.corrections_through)
        if digest(corrections.examples) != event.corrections_digest:
            raise RoutingError(
                "纠正记录与训练时不同", "the staff corrections differ from the ones trained on"
            )
        taxonomy, _ = self._classifiers(ctx)
        if taxonomy.version != event.taxonomy_version:
            taxonomy = Taxonomy(await self._taxonomy(district_id, event.taxonomy_version))
        examples = self._with_corrections(labelled, corrections, params)
        model = await asyncio.to_thread(self._fit, taxonomy, examples, params)
        if model.digest != event.model_digest:
            raise RoutingError(
                "重新训练得到的模型与记录不符",
                f"the model fitted again has digest {model.digest}, the event names "
                f"{event.model_digest} (libraries then: {event.libraries}, now: {libraries()})",
            )
        async with district_transaction(self._pool, district_id) as conn:
            stored = await conn.fetchval(
                "SELECT model_digest FROM routing.classifier_models "
                "WHERE district_id = $1 AND version = $2",
                district_id,
                version,
            )
            if stored is None:
                await self._districts.models.save(
                    conn, district_id, version, event.taxonomy_version, model, event.occurred_at
                )
                # Every process's cached context of the district built without it (see
                # DistrictContext.missing_model) is stale now.
                await conn.execute(
                    "UPDATE routing.districts SET config_version = config_version + 1, "
                    "updated_at = now() WHERE district_id = $1",
                    district_id,
                )
        return model

    async def published(self, district_id: str, version: int) -> ClassifierTrained:
        """The ``ClassifierTrained`` event of a version."""
        for recorded in await self._district_stream(district_id):
            if recorded.event_type == ClassifierTrained.event_type:
                event = ClassifierTrained.model_validate(recorded.data)
                if event.version == version:
                    return event
        raise RoutingError(
            f"分类模型第 {version} 版不存在", f"no classifier version {version} in {district_id}"
        )

    async def corrections(
        self, conn: Conn, district_id: str, through: StorePosition | None = None
    ) -> Corrections:
        """Every case's last ``CaseClassified`` with the case's text, in store order.

        Read up to ``through`` when given (to reproduce a model), else up to now.
        """
        last: dict[str, tuple[CaseClassified, int]] = {}
        position: StorePosition | None = None
        limit = Checkpoint(through.transaction_id, through.global_position) if through else None
        order = 0
        async for recorded in self._store.iterate_all(
            categories=("case",), district_id=district_id, conn=conn
        ):
            if limit is not None and not recorded.checkpoint <= limit:
                break
            position = StorePosition(
                transaction_id=recorded.transaction_id, global_position=recorded.global_position
            )
            if recorded.event_type == CaseClassified.event_type:
                event = CaseClassified.model_validate(recorded.data)
                last.pop(event.case_id, None)
                last[event.case_id] = (event, order)
                order += 1
        if not last:
            return Corrections([], through or position)
        # A text erased (a forgotten resident's, or past the retention period) is no
        # example: the mark left in its place says nothing of the category.
        rows = await conn.fetch(
            "SELECT case_id, text FROM routing.cases "
            "WHERE case_id = ANY($1::text[]) AND text <> $2",
            list(last),
            ERASED,
        )
        texts: dict[str, str] = {r["case_id"]: r["text"] for r in rows}
        examples = [
            LabelledOpinion(texts[case_id], event.category_code, event.priority)
            for case_id, (event, _) in sorted(last.items(), key=lambda kv: kv[1][1])
            if case_id in texts
        ]
        return Corrections(examples, through or position)

    # ------------------------------------------------------------------------ parts

    def _classifiers(self, ctx: DistrictContext) -> tuple[Taxonomy, Classifier]:
        if ctx.taxonomy is None or ctx.classifier is None:
            raise RoutingError(
                f"区 {ctx.directory.district_id} 未发布分类目录",
                "the district has published no taxonomy to train for",
            )
        return ctx.taxonomy, ctx.classifier

    @staticmethod
    def _with_corrections(
        labelled: Sequence[LabelledOpinion], corrections: Corrections, params: Hyperparameters
    ) -> list[LabelledOpinion]:
        weight = params.correction_weight
        return [
            *labelled,
            *(
                LabelledOpinion(c.text, c.category, c.priority, weight)
                for c in corrections.examples
            ),
        ]

    def _fit(
        self, taxonomy: Taxonomy, examples: Sequence[LabelledOpinion], params: Hyperparameters
    ) -> TextModel:
        rules = Classifier(taxonomy, self._segmenter)
        published = taxonomy.published
        return fit(
            examples,
            Vocabulary(
                {c.code: list(c.keywords) for c in published.categories},
                list(published.urgent_keywords),
            ),
            params,
            urgent_by_rule=[rules.classify(e.text).priority is Priority.URGENT for e in examples],
            normalise=normalise,
        )

    async def _district_stream(self, district_id: str) -> list[RecordedEvent]:
        async with district_transaction(self._pool, district_id) as conn:
            return await self._store.read_stream(f"district-{district_id}", conn=conn)

    async def _taxonomy(self, district_id: str, version: int) -> TaxonomyPublished:
        for recorded in await self._district_stream(district_id):
            if recorded.event_type == TaxonomyPublished.event_type:
                event = TaxonomyPublished.model_validate(recorded.data)
                if event.version == version:
                    return event
        raise RoutingError(
            f"分类目录第 {version} 版不存在", f"no taxonomy version {version} in {district_id}"
        )

    async def _publish(
        self,
        district_id: str,
        model: TextModel,
        taxonomy: Taxonomy,
        *,
        labelled: Sequence[LabelledOpinion],
        corrections: Corrections,
        heldout: Sequence[LabelledOpinion],
        report: Report,
        replaced: int | None,
        actor: Actor,
    ) -> ClassifierTrained:
        models = self._districts.models
        async with district_transaction(self._pool, district_id) as conn:
            # The lock directory changes take: versions follow one another, and the
            # directory version bump below is seen by every instance.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('routing.directory'), hashtext($1))",
                district_id,
            )
            version = await models.next_version(conn, district_id)
            if (version - 1 if version > 1 else None) != replaced:
                raise RoutingError(
                    "训练期间已有新模型发布，请重新训练",
                    "another model was published while this one trained; train again",
                )
            now = self._clock()
            event = ClassifierTrained(
                district_id=district_id,
                occurred_at=now,
                actor=actor,
                version=version,
                taxonomy_version=taxonomy.version,
                method=METHOD,
                model_digest=model.digest,
                hyperparameters=dict(model.hyperparameters.as_dict()),
                examples_digest=digest(labelled),
                examples=len(labelled),
                corrections=len(corrections.examples),
                corrections_digest=digest(corrections.examples),
                corrections_through=corrections.through,
                heldout_digest=digest(heldout),
                heldout_accuracy=round(report.accuracy, 4),
                heldout_urgent_recall=round(report.urgent_recall, 4),
                urgency_threshold=model.urgency_threshold,
                replaced_version=replaced,
                libraries=libraries(),
            )
            await self._store.append(
                event.stream_id,
                [Envelope.wrap(event, Metadata(correlation_id=str(uuid.uuid4())))],
                expected_version=ANY_VERSION,
                conn=conn,
            )
            await models.save(conn, district_id, version, taxonomy.version, model, now)
            await project_directory(conn, [event])
        log.info(
            "classifier published",
            district=district_id,
            version=version,
            accuracy=event.heldout_accuracy,
            urgent_recall=event.heldout_urgent_recall,
        )
        return event
