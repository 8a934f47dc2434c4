"""Training, publishing, refusing and reproducing the demo district's classifier, through
the application layer on the real database. The real labelled set is fitted once for the
module: fitting is memoised by its inputs (it is deterministic, which
``test_routing_classification_model.py`` checks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import REGISTRY, CaseOpened, Priority
from contracts.directory import ClassifierTrained
from eventkit.clock import Clock
from eventkit.store import EventStore
from services.routing import training
from services.routing.bootstrap import STARTUP, Routing, _train_first_classifiers
from services.routing.classifier_model import LabelledOpinion, TextModel, digest
from services.routing.cli import CLI_ACTOR
from services.routing.consumers import RoutingConsumer
from services.routing.district_context import DistrictContexts
from services.routing.errors import RoutingError
from services.routing.ids import case_id_for
from services.routing.rebuild import rebuild
from services.routing.training import (
    ClassifierTraining,
    heldout_set,
    labelled_set,
    load_examples,
)
from tests.every_district import every_district
from tests.routing.routing_support import Submit
from tests.sealed_support import opened_case_events

MIGRATIONS = Path(training.__file__).parent / "migrations"


@pytest.fixture(scope="module", autouse=True)
def fitted_once() -> Iterator[None]:
    """``fit`` remembered by its inputs for the module."""
    real = training.fit  # type: ignore[attr-defined]
    memo: dict[tuple[str, Any], TextModel] = {}

    def remembered(
        examples: list[LabelledOpinion], vocabulary: Any, params: Any, **kw: Any
    ) -> TextModel:
        key = (digest(examples), params)
        if key not in memo:
            memo[key] = real(examples, vocabulary, params, **kw)
        return memo[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "fit", remembered)
        yield


@pytest.fixture(scope="module")
def labelled() -> list[LabelledOpinion]:
    return load_examples(labelled_set("demo"))


@pytest.fixture(scope="module")
def heldout() -> list[LabelledOpinion]:
    return load_examples(heldout_set("demo"))


async def trained_events(store: EventStore) -> list[ClassifierTrained]:
    return [
        ClassifierTrained.model_validate(r.data)
        for r in await store.read_stream("district-demo")
        if r.event_type == "ClassifierTrained"
    ]


async def test_a_trained_model_is_published_and_every_new_case_names_it(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    store: EventStore,
    pool: asyncpg.Pool,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> None:
    before = await every_district(pool).fetchval("SELECT config_version FROM routing.districts")

    outcome = await demo.training.train("demo", labelled, heldout, CLI_ACTOR)

    assert outcome.refused is None
    assert outcome.in_use_version is None  # the keywords alone were in use
    assert outcome.candidate.accuracy >= 0.9
    assert outcome.candidate.urgent_recall == 1.0
    assert outcome.in_use.worse_than(outcome.candidate) is not None
    [event] = await trained_events(store)
    assert event == outcome.published
    assert event.version == 1
    assert event.examples == len(labelled)
    assert event.examples_digest == digest(labelled)
    assert event.heldout_digest == digest(heldout)
    assert event.corrections == 0
    assert event.hyperparameters["keyword_weight"] == 0.2
    assert "scikit-learn" in event.libraries
    row = await every_district(pool).fetchrow(
        "SELECT version, model_digest FROM routing.classifier_models"
    )
    assert row is not None
    assert tuple(row) == (1, event.model_digest)
    assert (
        await every_district(pool).fetchval("SELECT config_version FROM routing.districts")
        == before + 1
    )

    opinion = await submit("楼上那家煤气泄露了，整个楼道都是那个味", community="锦绣社区")
    await consumer.apply(opinion)

    case_id = case_id_for("demo", opinion.data["opinion_id"])
    # As readers see it: the words of the resident's text the models found are sealed
    # inside the event with the case's key.
    [(_, first), *_] = await opened_case_events(store, case_id)
    opened = REGISTRY.parse("CaseOpened", 1, first)
    assert isinstance(opened, CaseOpened)
    assert opened.classifier_version == 1
    assert opened.category_code == "safety"
    assert opened.priority is Priority.URGENT
    assert opened.urgency_score is not None
    assert opened.urgency_score >= event.urgency_threshold
    assert opened.urgency_evidence
    assert opened.classifier_evidence
    assert opened.classifier_confidence is not None


async def test_a_model_worse_on_the_heldout_set_than_the_one_in_use_is_refused(
    demo: Routing,
    store: EventStore,
    pool: asyncpg.Pool,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> None:
    trainer = demo.training
    await trainer.train("demo", labelled, heldout, CLI_ACTOR)
    # One example of each category and the first urgent ones: it learns far less.
    few: dict[str | None, LabelledOpinion] = {}
    for example in labelled:
        few.setdefault(example.category, example)
    urgent = [e for e in labelled if e.priority is Priority.URGENT][:6]

    outcome = await trainer.train("demo", [*few.values(), *urgent], heldout, CLI_ACTOR)

    assert outcome.published is None
    assert outcome.refused is not None
    assert "of the classifier in use" in outcome.refused
    assert outcome.in_use_version == 1
    assert outcome.candidate.worse_than(outcome.in_use) == outcome.refused
    assert [e.version for e in await trained_events(store)] == [1]
    assert (
        await every_district(pool).fetchval("SELECT count(*) FROM routing.classifier_models") == 1
    )
    async with every_district(pool).acquire() as conn:
        ctx = await demo.districts.require(conn, "demo")
    assert ctx.classifier is not None
    assert ctx.classifier.model_version == 1


async def test_training_the_same_examples_again_publishes_nothing_new(
    demo: Routing,
    store: EventStore,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> None:
    trainer = demo.training
    await trainer.train("demo", labelled, heldout, CLI_ACTOR)

    again = await trainer.train("demo", labelled, heldout, CLI_ACTOR)

    assert again.published is None
    assert again.refused is not None
    assert "the one in use" in again.refused
    assert len(await trained_events(store)) == 1


async def test_a_published_model_is_fitted_again_from_what_its_event_recorded(
    demo: Routing,
    pool: asyncpg.Pool,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> None:
    trainer = demo.training
    event = (await trainer.train("demo", labelled, heldout, CLI_ACTOR)).published
    assert event is not None
    await every_district(pool).execute("DELETE FROM routing.classifier_models")

    model = await trainer.reproduce("demo", 1, labelled)

    assert model.digest == event.model_digest
    assert await every_district(pool).fetchval(
        "SELECT model_digest FROM routing.classifier_models"
    ) == (event.model_digest)
    with pytest.raises(Exception, match="labelled set differs"):
        await trainer.reproduce("demo", 1, labelled[1:])


async def test_a_rebuild_keeps_the_model_in_use_and_the_cases_name_it(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    store: EventStore,
    pool: asyncpg.Pool,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> None:
    await demo.training.train("demo", labelled, heldout, CLI_ACTOR)
    async with every_district(pool).acquire() as conn:
        await rebuild(conn, store)

    opinion = await submit("电梯困人了，快来", community="东湖社区")
    await consumer.apply(opinion)

    case_id = case_id_for("demo", opinion.data["opinion_id"])
    opened = (await store.read_stream(f"case-{case_id}"))[0].data
    assert opened["classifier_version"] == 1
    assert opened["priority"] == "urgent"


Lost = tuple[ClassifierTrained, DistrictContexts, ClassifierTraining]


@pytest.fixture
async def lost(
    demo: Routing,
    store: EventStore,
    pool: asyncpg.Pool,
    clock: Clock,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> Lost:
    """Version 1 published, then ``routing.classifier_models`` emptied; the contexts and
    training of another process (or this one restarted): nothing of the model in memory."""
    published = (await demo.training.train("demo", labelled, heldout, CLI_ACTOR)).published
    assert published is not None
    assert published.version == 1
    await every_district(pool).execute("DELETE FROM routing.classifier_models")
    districts = DistrictContexts(demo.segmenter)
    return published, districts, ClassifierTraining(pool, store, districts, demo.segmenter, clock)


async def test_a_model_the_table_lost_is_said_fitted_again_and_its_version_not_reused(
    lost: Lost,
    store: EventStore,
    pool: asyncpg.Pool,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> None:
    published, districts, trainer = lost
    db = every_district(pool)

    async with db.acquire() as conn:
        ctx = await districts.require(conn, "demo")
        assert await districts.models.next_version(conn, "demo") == 2
    assert ctx.missing_model == 1  # said, not a silent fall back to the keywords
    assert ctx.classifier is not None
    assert ctx.classifier.model_version is None  # what each CaseOpened then records
    with pytest.raises(RoutingError, match="--reproduce 1"):
        await trainer.train("demo", labelled, heldout, CLI_ACTOR)

    # Start-up (routing_train_districts) fits the lost version again from its event.
    assert await trainer.ensure_trained("demo", CLI_ACTOR) is None
    assert await db.fetchval("SELECT model_digest FROM routing.classifier_models") == (
        published.model_digest
    )
    async with db.acquire() as conn:
        ctx = await districts.require(conn, "demo")
    assert ctx.missing_model is None
    assert ctx.classifier is not None
    assert ctx.classifier.model_version == 1
    assert [e.version for e in await trained_events(store)] == [1]


async def test_the_version_in_use_comes_from_the_events_and_the_upgrade_fills_it_in(
    demo: Routing,
    store: EventStore,
    pool: asyncpg.Pool,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> None:
    await demo.training.train("demo", labelled, heldout, CLI_ACTOR)
    db = every_district(pool)
    assert await db.fetchval("SELECT classifier_version FROM routing.districts") == 1
    async with db.acquire() as conn:
        await rebuild(conn, store)
    assert await db.fetchval("SELECT classifier_version FROM routing.districts") == 1

    # A model published by an instance of the code before the column (during an
    # upgrade): its row counts for the version in use, and for the next version.
    await db.execute("UPDATE routing.districts SET classifier_version = NULL")
    districts = DistrictContexts(demo.segmenter)
    async with db.acquire() as conn:
        ctx = await districts.require(conn, "demo")
        assert await districts.models.next_version(conn, "demo") == 2
    assert ctx.classifier is not None
    assert ctx.classifier.model_version == 1

    # A database migrated before the column existed: the migration fills it in from the
    # district streams' ClassifierTrained events.
    migration = (MIGRATIONS / "0009_classifier_in_use.sql").read_text(encoding="utf-8")
    await db.execute(migration[migration.index("UPDATE routing.districts") :])
    assert await db.fetchval("SELECT classifier_version FROM routing.districts") == 1


async def test_a_lost_model_that_cannot_be_fitted_again_is_replaced_when_asked(
    lost: Lost,
    store: EventStore,
    pool: asyncpg.Pool,
    labelled: list[LabelledOpinion],
    heldout: list[LabelledOpinion],
) -> None:
    _, districts, trainer = lost
    db = every_district(pool)
    # Version 1's labelled set is gone: it cannot be fitted again.
    with pytest.raises(RoutingError, match="labelled set differs"):
        await trainer.reproduce("demo", 1, labelled[1:])

    outcome = await trainer.train("demo", labelled[1:], heldout, CLI_ACTOR, replace_missing=True)

    assert outcome.missing_version == 1
    assert outcome.in_use.urgent_recall < 1.0  # judged against the keywords alone
    event = outcome.published
    assert event is not None
    assert (event.version, event.replaced_version) == (2, 1)
    assert [e.version for e in await trained_events(store)] == [1, 2]
    assert await db.fetchval("SELECT classifier_version FROM routing.districts") == 2
    async with db.acquire() as conn:
        ctx = await districts.require(conn, "demo")
    assert ctx.missing_model is None
    assert ctx.classifier is not None
    assert ctx.classifier.model_version == 2


async def test_start_up_trains_a_listed_district_once_and_passes_over_one_it_cannot(
    demo: Routing, store: EventStore
) -> None:
    # "north" is not registered and has no labelled set: said in the log, not fatal.
    await _train_first_classifiers(demo, ["north", "demo"])

    [first] = await trained_events(store)
    assert first.version == 1
    assert first.actor == STARTUP
    assert first.examples == len(load_examples(labelled_set("demo")))

    await _train_first_classifiers(demo, ["demo"])  # a restart: it has one already

    assert [e.version for e in await trained_events(store)] == [1]
