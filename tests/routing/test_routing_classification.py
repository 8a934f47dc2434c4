"""Classification and priority with the demo taxonomy and the real jieba (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import Actor, ActorRole, Priority
from contracts.directory import DeadlinePair, PriorityDeadlines, TaxonomyCategory, TaxonomyPublished
from services.routing.classification import Classifier, JiebaSegmenter, Taxonomy
from services.routing.district_file import DistrictFile


def published(file: DistrictFile) -> TaxonomyPublished:
    assert file.taxonomy is not None
    return TaxonomyPublished(
        district_id="demo",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor=Actor(id="admin", role=ActorRole.DISTRICT_ADMIN),
        version=1,
        **file.taxonomy.model_dump(),
    )


@pytest.fixture(scope="module")
def classifier(demo_file: DistrictFile, segmenter: JiebaSegmenter) -> Classifier:
    return Classifier(Taxonomy(published(demo_file)), segmenter)


@pytest.mark.parametrize(
    ("text", "category", "keywords"),
    [
        ("小区电梯坏了三个月，物业一直不修", "property", ["物业", "电梯"]),
        ("路灯不亮了", "municipal", ["路灯"]),
        ("楼下烧烤店油烟很大，晚上噪音扰民", "environment", ["噪音", "扰民", "油烟"]),
        ("东门菜市场门口占道经营严重", "urban_management", ["占道经营", "占道"]),
        ("孩子入学学位紧张", "education", ["入学", "学位"]),
        ("工地拖欠工资半年了", "employment", ["拖欠工资"]),
        ("垃圾桶满了没人清运", "sanitation", ["垃圾", "垃圾桶", "清运"]),
    ],
)
def test_the_category_and_the_words_that_decided_it_are_found(
    classifier: Classifier, text: str, category: str, keywords: list[str]
) -> None:
    result = classifier.classify(text)

    assert result.category_code == category
    assert list(result.matched_keywords) == keywords


def test_a_keyword_is_cut_whole_even_next_to_a_rarer_dictionary_word(
    segmenter: JiebaSegmenter, classifier: Classifier
) -> None:
    # Without the taxonomy in jieba's dictionary this is cut 路 | 灯不亮 | 了.
    assert "路灯" in segmenter.vocabulary(classifier.taxonomy.keywords()).cut("路灯不亮了")
    assert classifier.classify("路灯不亮了").category_code is not None


def test_one_district_s_keywords_never_change_how_another_s_texts_are_cut(
    segmenter: JiebaSegmenter, classifier: Classifier
) -> None:
    text = "小区门口路灯不亮，晚上很黑"
    before = classifier.classify(text)
    # Another district whose odd keywords, were they in a shared dictionary, would cut
    # the same text 门口路 | 灯不亮 and hide 路灯 from the first district.
    other = Classifier(
        Taxonomy(
            TaxonomyPublished(
                district_id="other",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                actor=Actor(id="admin", role=ActorRole.DISTRICT_ADMIN),
                version=1,
                categories=[
                    TaxonomyCategory(code="odd", name_zh="怪词", keywords=["门口路", "灯不亮"])
                ],
                default_deadlines=PriorityDeadlines(
                    normal=DeadlinePair(response="1wd", resolution="5wd")
                ),
            )
        ),
        segmenter,
    )

    assert other.classify(text).category_code == "odd"
    after = classifier.classify(text)
    assert after == before
    assert before.category_code is not None
    assert "路灯" in before.matched_keywords


def test_segmentation_avoids_a_keyword_that_is_only_a_substring(classifier: Classifier) -> None:
    # "电线" is a safety keyword; 无线电 | 线路 contains it only as characters.
    result = classifier.classify("无线电线路的信号不好")

    assert result.category_code is None


def test_no_keyword_means_no_category_never_a_default(classifier: Classifier) -> None:
    result = classifier.classify("想问一下社区最近有什么活动可以参加")

    assert result.category_code is None
    assert result.matched_keywords == ()
    assert result.priority is Priority.NORMAL


def test_an_urgent_word_makes_the_matter_urgent_and_is_recorded(classifier: Classifier) -> None:
    result = classifier.classify("单元楼电线裸露，有小孩经过很危险")

    assert result.priority is Priority.URGENT
    assert result.priority_keywords == ("电线裸露",)
    assert result.category_code == "safety"


def test_an_urgent_matter_matching_no_category_falls_to_the_urgent_category(
    classifier: Classifier,
) -> None:
    result = classifier.classify("隔壁好像着火了")

    assert result.category_code == "safety"
    assert result.matched_keywords == ()
    assert result.priority_keywords == ("着火",)
    assert result.priority is Priority.URGENT


def test_an_important_word_or_an_important_category_raises_the_priority(
    classifier: Classifier,
) -> None:
    assert classifier.classify("独居老人家的下水道堵了").priority is Priority.IMPORTANT
    # safety is an important category of its own
    assert classifier.classify("楼道里有人飞线充电").priority is Priority.IMPORTANT
    assert classifier.classify("下水道堵了").priority is Priority.NORMAL


def test_a_hint_naming_a_category_counts_and_is_recorded(classifier: Classifier) -> None:
    by_name = classifier.classify("门口一直有积水", hint="市政设施")
    by_code = classifier.classify("最近情况有点复杂", hint="education")

    assert by_name.category_code == "municipal"
    assert by_name.hint_matched is True
    assert by_code.category_code == "education"
    assert by_code.matched_keywords == ()
    assert classifier.classify("门口一直有积水", hint="随便什么").hint_matched is False


def test_a_tie_goes_to_the_category_listed_first(segmenter: JiebaSegmenter) -> None:
    def category(code: str, word: str) -> TaxonomyCategory:
        return TaxonomyCategory(code=code, name_zh=code, keywords=[word])

    def taxonomy(*categories: TaxonomyCategory) -> Classifier:
        return Classifier(
            Taxonomy(
                TaxonomyPublished(
                    district_id="demo",
                    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                    actor=Actor(id="admin", role=ActorRole.DISTRICT_ADMIN),
                    version=1,
                    categories=list(categories),
                    default_deadlines=PriorityDeadlines(
                        normal=DeadlinePair(response="1wd", resolution="5wd")
                    ),
                )
            ),
            segmenter,
        )

    text = "小区噪音和垃圾问题"
    first = taxonomy(category("noise", "噪音"), category("waste", "垃圾"))
    second = taxonomy(category("waste", "垃圾"), category("noise", "噪音"))

    assert first.classify(text).category_code == "noise"
    assert second.classify(text).category_code == "waste"


def test_deadlines_come_from_the_category_then_the_default_for_the_priority(
    demo_file: DistrictFile,
) -> None:
    taxonomy = Taxonomy(published(demo_file))

    assert taxonomy.deadlines("property", Priority.NORMAL) == DeadlinePair(
        response="1wd", resolution="10wd"
    )
    assert taxonomy.deadlines("property", Priority.URGENT) == DeadlinePair(
        response="2h", resolution="24h"
    )
    assert taxonomy.deadlines("safety", Priority.URGENT) == DeadlinePair(
        response="1h", resolution="12h"
    )
    assert taxonomy.deadlines(None, Priority.NORMAL) == DeadlinePair(
        response="2wd", resolution="15wd"
    )
