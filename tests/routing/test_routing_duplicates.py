"""Duplicate and cluster detection (unit tests, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts import Actor, ActorRole
from contracts.directory import RoutingPolicyPublished
from services.routing.duplicates import (
    CaseFacts,
    bands,
    find_related,
    normalise_text,
    simhash,
    similarity,
)

NOW = datetime(2026, 10, 12, 10, 0, tzinfo=UTC)
POLICY = RoutingPolicyPublished(
    district_id="demo",
    occurred_at=NOW,
    actor=Actor(id="admin", role=ActorRole.DISTRICT_ADMIN),
    version=1,
)
HERE = (30.2498, 120.1602)


def facts(
    case_id: str,
    text: str = "小区门口的路灯坏了一排，晚上很黑",
    category: str | None = "municipal",
    community: str | None = None,
    point: tuple[float, float] | None = None,
    days_ago: float = 1,
) -> CaseFacts:
    return CaseFacts(
        case_id, category, community, point, normalise_text(text), NOW - timedelta(days=days_ago)
    )


def share_a_band(a: str, b: str) -> bool:
    return any(x == y for x, y in zip(bands(simhash(a)), bands(simhash(b)), strict=True))


ONE_CHARACTER_EDITS = [
    ("幸福小区3号楼楼下的路灯坏了好几天晚上很黑", "幸福小区5号楼楼下的路灯坏了好几天晚上很黑"),
    ("小区门口旁边的垃圾桶满了没人清理气味很大", "小区门口旁边垃圾桶满了没人清理气味很大"),
]


def test_texts_one_character_apart_share_a_band_of_their_simhash() -> None:
    for a, b in ONE_CHARACTER_EDITS:
        assert similarity(normalise_text(a), normalise_text(b)) >= 0.9
        assert share_a_band(normalise_text(a), normalise_text(b)), (a, b)


def test_normalising_drops_spaces_punctuation_and_width() -> None:
    assert normalise_text("路灯 坏了！！ ＡＢＣ，123。") == "路灯坏了abc123"


def test_near_identical_texts_share_a_band_of_their_simhash() -> None:
    a = normalise_text("三号楼电梯已经停了一个星期了，老人上下楼非常困难，请尽快修理")
    b = normalise_text("三号楼电梯已经停了一个星期了，老年人上下楼非常困难，请尽快修理！")
    unrelated = normalise_text("楼下烧烤店油烟很大")

    assert similarity(a, b) >= 0.9
    assert share_a_band(a, b)
    assert similarity(a, unrelated) < 0.3


def test_a_simhash_fits_a_signed_64_bit_column() -> None:
    for text in ("路灯", "电梯坏了", "a" * 500, ""):
        value = simhash(normalise_text(text))
        assert -(2**63) <= value < 2**63


def test_near_identical_text_is_a_duplicate_whatever_the_category_and_place() -> None:
    new = facts("new", "小区门口的路灯坏了一排，晚上很黑！", category=None)

    related = find_related(new, [facts("old", category="municipal")], POLICY, NOW)

    assert [(r.case_id, r.relation) for r in related] == [("old", "duplicate")]
    assert "相似" in related[0].reason


def test_the_same_category_in_the_same_community_is_related() -> None:
    new = facts("new", "路灯不亮", community="河畔社区")
    old = facts("old", "这条路晚上太黑了，灯都坏了", community="河畔社区")

    assert [(r.case_id, r.relation) for r in find_related(new, [old], POLICY, NOW)] == [
        ("old", "related")
    ]


def test_the_same_category_within_300_metres_is_related_and_beyond_is_not() -> None:
    new = facts("new", "路灯不亮", point=HERE)
    near = facts("near", "灯坏了很久", point=(HERE[0] + 0.002, HERE[1]))  # ~220 m
    far = facts("far", "灯坏了很久", point=(HERE[0] + 0.004, HERE[1]))  # ~445 m

    related = find_related(new, [near, far], POLICY, NOW)

    assert [r.case_id for r in related] == ["near"]
    assert "米" in related[0].reason


def test_another_category_nearby_is_not_related() -> None:
    new = facts("new", "路灯不亮", point=HERE)
    other = facts("other", "油烟扰民", category="environment", point=HERE)

    assert find_related(new, [other], POLICY, NOW) == []


def test_cases_older_than_the_window_are_not_linked() -> None:
    new = facts("new", community="河畔社区")
    old = facts("old", community="河畔社区", days_ago=31)

    assert find_related(new, [old], POLICY, NOW) == []


def test_duplicates_come_first_and_only_the_closest_related_case_is_linked() -> None:
    new = facts("new", "路灯不亮", community="河畔社区")
    candidates = [facts(f"r{i}", "灯坏了", community="河畔社区", days_ago=i) for i in range(1, 8)]
    candidates += [
        facts(f"d{i}", "路灯不亮！", community="南城社区", days_ago=i) for i in (5, 2, 9, 4)
    ]

    related = find_related(new, candidates, POLICY, NOW)

    assert [(r.case_id, r.relation) for r in related] == [
        ("d2", "duplicate"),
        ("d4", "duplicate"),
        ("d5", "duplicate"),
        ("r1", "related"),
    ]


def test_texts_are_compared_only_for_cases_sharing_a_simhash_band() -> None:
    new = facts("new", "路灯不亮", category=None)
    same_text_no_band = CaseFacts(
        "old", "municipal", None, None, normalise_text("路灯不亮"), NOW, text_candidate=False
    )

    assert find_related(new, [same_text_no_band], POLICY, NOW) == []
