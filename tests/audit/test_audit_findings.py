"""How evidence is named: the pure rules behind every verification."""

from __future__ import annotations

from eventkit.audit.digest import ZERO_HASH, link_hash, seal_digest
from eventkit.audit.findings import (
    Finding,
    LinkEvidence,
    Problem,
    SealedPart,
    classify_link,
    compare_sealed_stream,
    first_per_stream,
)

H1, H2, H3 = (bytes([n]) * 32 for n in (1, 2, 3))


def link(version: int, **overrides: object) -> LinkEvidence:
    values: dict[str, object] = {
        "stream_id": "case-1",
        "stream_version": version,
        "global_position": 10 + version,
        "event_id": None,
        "content_ok": True,
        "prev_hash": H1,
        "predecessor_hash": H1,
    }
    values.update(overrides)
    return LinkEvidence(**values)  # type: ignore[arg-type]


def test_a_whole_link_is_no_finding() -> None:
    assert classify_link(link(2)) is None
    assert classify_link(link(1, prev_hash=ZERO_HASH, predecessor_hash=None)) is None


def test_a_hash_that_does_not_match_its_content_is_changed_content() -> None:
    found = classify_link(link(2, content_ok=False))
    assert found is not None
    assert (found.problem, found.stream_version) == (Problem.CHANGED_CONTENT, 2)


def test_a_gap_before_a_version_is_a_missing_event() -> None:
    found = classify_link(link(5, predecessor_hash=None, prior_version=2))
    assert found is not None
    assert found.problem is Problem.MISSING_EVENT
    assert "version 3–4 missing" in found.detail


def test_a_link_to_a_later_version_is_reordered_versions() -> None:
    found = classify_link(link(2, prev_hash=H3, content_ok=False, prev_points_at=3))
    assert found is not None
    assert (found.problem, found.stream_version) == (Problem.REORDERED_VERSIONS, 2)


def test_a_link_to_an_older_version_than_the_previous_one_is_an_inserted_event() -> None:
    found = classify_link(link(4, prev_hash=H2, content_ok=False, prev_points_at=2))
    assert found is not None
    assert (found.problem, found.stream_version) == (Problem.INSERTED_EVENT, 3)


def test_a_link_to_nothing_with_a_sound_own_hash_blames_the_version_before() -> None:
    found = classify_link(link(4, prev_hash=H2))
    assert found is not None
    assert (found.problem, found.stream_version) == (Problem.CHANGED_CONTENT, 3)
    assert "recomputed" in found.detail


def sealed(first: int, last: int, head: str = "aa") -> SealedPart:
    return SealedPart(first, last, last - first + 1, head)


def test_sealed_versions_gone_from_the_end_of_a_stream_are_a_deleted_tail() -> None:
    found = compare_sealed_stream("demo", 3, "case-1", sealed(1, 5), sealed(1, 3, "bb"), 3)
    assert found is not None
    assert (found.problem, found.stream_version) == (Problem.DELETED_TAIL, 4)
    assert "version 4–5" in found.detail


def test_a_sealed_stream_with_no_event_left_is_a_deleted_stream() -> None:
    found = compare_sealed_stream("demo", 3, "case-1", sealed(1, 5), None, None)
    assert found is not None
    assert found.problem is Problem.DELETED_STREAM


def test_events_in_a_seal_range_the_seal_does_not_list_are_inserted() -> None:
    new_stream = compare_sealed_stream("demo", 3, "case-9", None, sealed(1, 1), 1)
    longer = compare_sealed_stream("demo", 3, "case-1", sealed(1, 2), sealed(1, 3, "bb"), 3)
    assert new_stream is not None
    assert longer is not None
    assert new_stream.problem is Problem.INSERTED_EVENT
    assert (longer.problem, longer.stream_version) == (Problem.INSERTED_EVENT, 3)


def test_a_sealed_head_with_another_hash_is_a_rewritten_chain() -> None:
    found = compare_sealed_stream("demo", 3, "case-1", sealed(1, 5), sealed(1, 5, "bb"), 5)
    assert found is not None
    assert found.problem is Problem.CHANGED_CONTENT
    assert "rewritten" in found.detail


def test_only_the_first_broken_link_of_each_stream_is_kept() -> None:
    kept = first_per_stream(
        [
            Finding(Problem.CHANGED_CONTENT, "", stream_id="case-1", stream_version=4),
            Finding(Problem.MISSING_EVENT, "", stream_id="case-1", stream_version=2),
            Finding(Problem.BROKEN_SEAL, "", seal_seq=1, district_id="demo"),
        ]
    )
    assert [(f.problem, f.stream_version) for f in kept] == [
        (Problem.MISSING_EVENT, 2),
        (Problem.BROKEN_SEAL, None),
    ]


def test_a_seal_digest_is_the_hash_of_the_previous_digest_and_the_event_hashes() -> None:
    import hashlib

    assert seal_digest(ZERO_HASH, [H1, H2]) == hashlib.sha256(ZERO_HASH + H1 + H2).digest()
    assert link_hash(ZERO_HASH, b"{}") == hashlib.sha256(ZERO_HASH + b"{}").digest()
