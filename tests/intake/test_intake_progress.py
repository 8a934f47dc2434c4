"""A case's progress as intake follows it: folded from the case events, told in plain
words, with Open311's and mySociety's statuses. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.cases import CaseEvent
from services.intake.progress import (
    CaseProgress,
    Names,
    NotOpened,
    Stage,
    Step,
    UpdateStatus,
    evolve,
    open311_status,
)
from services.intake.tracking_views import describe
from tests.intake.intake_support import DISTRICT, REPRESENTATIVE, STATION, case_events

NOW = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)


def fold(*events: CaseEvent) -> tuple[CaseProgress, list[Step]]:
    progress: CaseProgress | None = None
    steps = []
    for event in events:
        progress, step = evolve(progress, event, str(uuid.uuid4()))
        steps.append(step)
    assert progress is not None
    return progress, steps


def test_a_case_goes_from_opened_to_closed_with_open311_statuses() -> None:
    e = case_events("case_1", "op_1")
    progress, steps = fold(
        e["opened"], e["assigned"], e["accepted"], e["replied"], e["resolved"], e["closed"]
    )
    assert [s.status for s in steps] == [
        UpdateStatus.OPEN,
        UpdateStatus.INVESTIGATING,
        UpdateStatus.IN_PROGRESS,
        UpdateStatus.IN_PROGRESS,
        UpdateStatus.FIXED,
        UpdateStatus.CLOSED,
    ]
    assert progress.stage is Stage.CLOSED
    assert progress.resolved
    assert progress.resolution_seq == 1
    assert (progress.station_code, progress.representative_id) == (STATION, REPRESENTATIVE)
    assert open311_status(progress.stage) == "closed"
    assert CaseProgress.from_json(progress.to_json()) == progress
    assert [Step.from_json(s.to_json()) for s in steps] == steps


def test_a_reopened_case_is_open_again_until_its_next_resolution() -> None:
    e = case_events("case_1", "op_1")
    progress, steps = fold(e["opened"], e["resolved"], e["reopened"])
    assert progress.stage is Stage.IN_PROGRESS
    assert not progress.resolved
    assert steps[-1].status is UpdateStatus.REOPEN
    assert open311_status(progress.stage) == "open"
    progress, _ = evolve(progress, e["resolved_again"], "x")
    assert progress.resolved
    assert progress.resolution_seq == 2


def test_a_case_event_before_its_opening_is_refused() -> None:
    with pytest.raises(NotOpened):
        evolve(None, case_events("case_1", "op_1")["assigned"], "x")


def test_steps_are_told_in_plain_words() -> None:
    e = case_events("case_1", "op_1")
    _, steps = fold(e["opened"], e["assigned"], e["accepted"], e["resolved"])
    names = Names(
        stations={STATION: "中关村街道人大代表之家"},
        representatives={REPRESENTATIVE: "李建华"},
        categories={"municipal.street_light": ("路灯照明", "Street lights")},
    )
    words = [describe(s, names) for s in steps]
    assert words[0][0].startswith("已受理，归入「路灯照明」类，应于")
    assert words[1] == (
        "已分派至中关村街道人大代表之家，由李建华代表办理",
        "Assigned to 中关村街道人大代表之家, handled by representative 李建华",
    )
    assert words[2][0] == "李建华代表已接手办理"
    assert words[3][0] == "已办结：三盏路灯已更换为LED灯具"


def test_a_transfer_to_another_district_is_not_this_districts_responsibility() -> None:
    from contracts import CaseTransferred

    e = case_events("case_1", "op_1")
    transfer = CaseTransferred(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        to_district_id="chaoyang",
        reason="属地在朝阳区",
    )
    progress, steps = fold(e["opened"], transfer)
    assert steps[-1].status is UpdateStatus.NOT_COUNCILS_RESPONSIBILITY
    assert progress.stage is Stage.TRANSFERRED_OUT
    assert describe(steps[-1], Names(districts={"chaoyang": "朝阳区"}))[0] == "已转交朝阳区办理"


def test_a_duplicate_is_merged_and_reported_as_such() -> None:
    from contracts import CaseLinked

    e = case_events("case_1", "op_1")
    link = CaseLinked(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        related_case_id="case_0",
        relation="duplicate",
        reason="同一处路灯",
    )
    progress, steps = fold(e["opened"], link)
    assert steps[-1].status is UpdateStatus.DUPLICATE
    assert progress.stage is Stage.MERGED
    assert open311_status(progress.stage) == "closed"


def test_a_reclassified_case_keeps_its_status_and_takes_the_new_deadline() -> None:
    from contracts import CaseClassified, Priority

    e = case_events("case_1", "op_1")
    later = NOW + timedelta(days=5)
    change = CaseClassified(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        category_code="safety",
        priority=Priority.URGENT,
        reason="涉及燃气",
        resolution_due=later,
    )
    progress, steps = fold(e["opened"], e["assigned"], change)
    assert steps[-1].status is UpdateStatus.INVESTIGATING
    assert (progress.category_code, progress.priority) == ("safety", "urgent")
    assert progress.resolution_due == later
    words = describe(steps[-1], Names(categories={"safety": ("安全隐患", "Safety hazards")}))
    assert words[0] == "已调整分类为「安全隐患」，应于2025年03月19日前办结"


def test_a_merged_case_and_a_withdrawn_one_are_closed_for_open311() -> None:
    from contracts import CaseClosed, CaseMerged

    e = case_events("case_1", "op_1")
    merged = CaseMerged(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        into_case_id="case_0",
        reason="同一处路灯",
    )
    progress, steps = fold(e["opened"], merged)
    assert (progress.stage, steps[-1].status) == (Stage.MERGED, UpdateStatus.DUPLICATE)
    assert progress.linked_case_id == "case_0"
    withdrawn = CaseClosed(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        withdrawn=True,
    )
    progress, steps = fold(e["opened"], withdrawn)
    assert progress.stage is Stage.WITHDRAWN
    assert open311_status(progress.stage) == "closed"
    assert describe(steps[-1], Names())[0] == "已按您的要求撤回，不再办理"
    assert not progress.resolved
