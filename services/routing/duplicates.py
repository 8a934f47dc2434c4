"""Duplicates and clusters (重复件/关联件).

A new case is linked to an open case of the district opened in the last N days (30 by
default) when either

- the texts are near-identical (similarity ≥ 0.9 after dropping spaces and punctuation):
  relation ``duplicate``; or
- the category is the same and the place is the same community or within 300 m:
  relation ``related`` (the closest such case only: the cluster is the graph of links).

Staff see the cluster on the case and may merge. Finding near-identical texts among
thousands of open cases without comparing them all: each text gets a 64-bit SimHash of
its character bigrams, stored as eight 8-bit bands; two texts whose hashes differ in at
most seven bits share at least one band, so the database fetches only cases sharing a
band and the exact similarity is then checked here. (A one-character edit of a short
Chinese text changes about a tenth of its bigrams and flips some five to ten bits of
the hash: four 16-bit bands missed most such pairs, eight 8-bit ones catch nearly all.)
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from contracts.directory import RoutingPolicyPublished
from services.routing.directory import distance_m

MAX_DUPLICATES = 3
"""At most this many ``duplicate`` links for one new case, the most alike first."""
MAX_RELATED = 1
"""At most this many ``related`` links: the closest open case of the same category is
enough to join the new case to its cluster (a cluster is its links seen from every
side), and keeps a busy community from drowning staff and the event stream in links."""
_COMPARED_CHARS = 400


def normalise_text(text: str) -> str:
    """The text without spaces, punctuation or symbols, NFKC, lower case."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def simhash(normalised: str) -> int:
    """A 64-bit SimHash of the character bigrams, as a signed integer (PostgreSQL bigint).

    Each bit is set when most bigrams' hashes have it set; counted column by column over
    the hashes written in binary, which keeps the loop in C.
    """
    grams = [normalised[i : i + 2] for i in range(max(1, len(normalised) - 1))]
    rows = [
        format(int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "big"), "064b")
        for g in grams
    ]
    bits = "".join(
        "1" if column.count("1") * 2 > len(rows) else "0" for column in zip(*rows, strict=True)
    )
    result = int(bits, 2)
    return result - (1 << 64) if result >= 1 << 63 else result


BANDS = 8
"""How many bands a SimHash is cut into (``band0`` … ``band7`` of ``routing.cases``)."""
_BAND_BITS = 64 // BANDS


def bands(value: int) -> tuple[int, ...]:
    """The eight 8-bit bands of a SimHash, lowest first."""
    unsigned = value & 0xFFFFFFFFFFFFFFFF
    mask = (1 << _BAND_BITS) - 1
    return tuple(unsigned >> (i * _BAND_BITS) & mask for i in range(BANDS))


def similarity(a: str, b: str) -> float:
    """How alike two normalised texts are, 0 to 1 (difflib's ratio on their starts)."""
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a[:_COMPARED_CHARS], b[:_COMPARED_CHARS], autojunk=False).ratio()


def near_identical(a: str, b: str, threshold: float) -> float | None:
    """The similarity of two texts if it reaches ``threshold``, else None.

    difflib's cheap upper bounds (lengths, then shared characters) rule most pairs out
    before the full comparison.
    """
    if not a or not b:
        return None
    matcher = SequenceMatcher(None, a[:_COMPARED_CHARS], b[:_COMPARED_CHARS], autojunk=False)
    return _reaches(matcher, threshold)


def _reaches(matcher: SequenceMatcher[str], threshold: float) -> float | None:
    """The matcher's ratio if it reaches ``threshold``, checked with the cheap bounds first."""
    if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
        return None
    ratio = matcher.ratio()
    return ratio if ratio >= threshold else None


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What duplicate detection compares."""

    case_id: str
    category_code: str | None
    community: str | None
    point: tuple[float, float] | None
    text: str
    """Normalised (see :func:`normalise_text`)."""
    opened_at: datetime
    text_candidate: bool = True
    """Whether the texts are compared: only for cases sharing a SimHash band."""


@dataclass(frozen=True, slots=True)
class Relation:
    """A link to make: the other case, the kind of relation and why."""

    case_id: str
    relation: str
    reason: str


def find_related(
    new: CaseFacts,
    candidates: Iterable[CaseFacts],
    policy: RoutingPolicyPublished,
    now: datetime,
) -> list[Relation]:
    """The open cases ``new`` duplicates or relates to, the closest matches first."""
    since = now - timedelta(days=policy.duplicate_window_days)
    found: list[tuple[int, float, datetime, Relation]] = []
    matcher: SequenceMatcher[str] | None = None
    for other in candidates:
        if other.case_id == new.case_id or other.opened_at < since:
            continue
        alike = None
        if other.text_candidate and new.text and other.text:
            if matcher is None:
                # The new text is indexed once (difflib indexes its second sequence) and
                # each candidate compared with it.
                matcher = SequenceMatcher(None, autojunk=False)
                matcher.set_seq2(new.text[:_COMPARED_CHARS])
            matcher.set_seq1(other.text[:_COMPARED_CHARS])
            alike = _reaches(matcher, policy.duplicate_text_similarity)
        if alike is not None:
            reason = f"内容高度相似（{alike:.0%}） / near-identical text ({alike:.0%})"
            found.append((0, -alike, other.opened_at, Relation(other.case_id, "duplicate", reason)))
            continue
        if new.category_code is None or new.category_code != other.category_code:
            continue
        if new.community and new.community == other.community:
            reason = f"同类问题，同一社区（{new.community}） / same category, same community"
            found.append((1, 0.0, other.opened_at, Relation(other.case_id, "related", reason)))
            continue
        if new.point is not None and other.point is not None:
            metres = distance_m(new.point, other.point)
            if metres <= policy.duplicate_radius_m:
                reason = (
                    f"同类问题，相距约{metres:.0f}米 / same category, about {metres:.0f} m apart"
                )
                found.append(
                    (1, metres, other.opened_at, Relation(other.case_id, "related", reason))
                )
    found.sort(key=lambda item: (item[0], item[1], -item[2].timestamp(), item[3].case_id))
    duplicates = [r for kind, *_, r in found if kind == 0][:MAX_DUPLICATES]
    related = [r for kind, *_, r in found if kind == 1][:MAX_RELATED]
    return duplicates + related


def bounding_box(point: tuple[float, float], radius_m: float) -> tuple[float, float, float, float]:
    """(min lat, max lat, min long, max long) of a square around ``point``: an index filter."""
    dlat = radius_m / 111_320.0
    dlong = radius_m / (111_320.0 * max(0.01, math.cos(math.radians(point[0]))))
    return point[0] - dlat, point[0] + dlat, point[1] - dlong, point[1] + dlong
