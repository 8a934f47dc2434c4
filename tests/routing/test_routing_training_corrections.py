"""Staff corrections (``CaseClassified``) are labelled examples of the next training."""

from __future__ import annotations

from contracts import ActorRole, Priority
from contracts.base import Actor
from eventkit.store import EventStore
from services.routing.bootstrap import Routing
from services.routing.cli import CLI_ACTOR
from services.routing.consumers import RoutingConsumer
from services.routing.ids import case_id_for
from services.routing.training import heldout_set, labelled_set, load_examples
from tests.every_district import every_district
from tests.routing.routing_support import Submit, act

LIAISON = Actor(id="lo_dh_02", role=ActorRole.LIAISON)
TEXT = "东湖农贸市场门口的公厕旁边那个大铁箱子一直嗡嗡响，摸上去烫手"


async def test_a_staff_correction_is_read_with_its_text_and_learnt_by_the_next_training(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit(TEXT, station_code="dh_market")
    await consumer.apply(opinion)
    case_id = case_id_for("demo", opinion.data["opinion_id"])
    await act(
        demo,
        "classify",
        "demo",
        case_id,
        LIAISON,
        category_code="safety",
        priority="urgent",
        reason="配电箱发烫，按要事处理",
    )
    trainer = demo.training

    async with every_district(demo.pool).acquire() as conn:
        corrections = await trainer.corrections(conn, "demo")

    [example] = corrections.examples
    assert (example.text, example.category, example.priority) == (
        TEXT,
        "safety",
        Priority.URGENT,
    )
    assert corrections.through is not None

    outcome = await trainer.train(
        "demo", load_examples(labelled_set("demo")), load_examples(heldout_set("demo")), CLI_ACTOR
    )

    event = outcome.published
    assert event is not None
    assert event.corrections == 1
    assert event.corrections_through == corrections.through
    async with every_district(demo.pool).acquire() as conn:
        ctx = await demo.districts.require(conn, "demo")
    assert ctx.classifier is not None
    learnt = ctx.classifier.classify(TEXT)
    assert (learnt.category_code, learnt.priority) == ("safety", Priority.URGENT)

    # A later correction does not change what version 1 learnt: fitted again from its
    # event (the corrections read up to the position it recorded), it is the same model.
    later = await submit("小区门口的路灯杆歪了，风一吹就晃", station_code="dh_market")
    await consumer.apply(later)
    await act(
        demo,
        "classify",
        "demo",
        case_id_for("demo", later.data["opinion_id"]),
        LIAISON,
        category_code="safety",
        priority="important",
        reason="灯杆有倒伏风险",
    )
    await every_district(demo.pool).execute("DELETE FROM routing.classifier_models")

    again = await trainer.reproduce("demo", event.version, load_examples(labelled_set("demo")))

    assert again.digest == event.model_digest
