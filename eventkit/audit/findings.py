"""What an audit finds, and how the evidence is turned into a named problem. Pure.

The same rules serve the verification of the live store and of an offline archive, so
that both name a tampering the same way. Detection does not depend on the naming: any
change makes a hash or a seal's digest disagree; the names say what the evidence most
plausibly shows (``docs/audit.md`` lists what each one means).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from eventkit.audit.digest import ZERO_HASH


class Problem(StrEnum):
    """The kinds of broken record an audit names."""

    CHANGED_CONTENT = "changed_content"
    MISSING_EVENT = "missing_event"
    REORDERED_VERSIONS = "reordered_versions"
    DELETED_TAIL = "deleted_tail"
    DELETED_STREAM = "deleted_stream"
    INSERTED_EVENT = "inserted_event"
    BROKEN_SEAL = "broken_seal"
    UNKNOWN_SEAL = "unknown_seal"
    ARCHIVE_CHANGED = "archive_changed"


LABELS: dict[Problem, tuple[str, str]] = {
    Problem.CHANGED_CONTENT: ("内容被改动", "changed content"),
    Problem.MISSING_EVENT: ("缺少事件", "missing event"),
    Problem.REORDERED_VERSIONS: ("版本顺序被调换", "reordered versions"),
    Problem.DELETED_TAIL: ("流末尾的事件被删除", "deleted tail"),
    Problem.DELETED_STREAM: ("整个流被删除", "deleted stream"),
    Problem.INSERTED_EVENT: ("插入了事件", "inserted event"),
    Problem.BROKEN_SEAL: ("封存链断裂", "broken seal"),
    Problem.UNKNOWN_SEAL: ("保存的封存不在记录中", "kept seal not found"),
    Problem.ARCHIVE_CHANGED: ("归档文件被改动", "archive file changed"),
}
"""Each problem in Simplified Chinese, then English."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken link or seal: what is wrong and where."""

    problem: Problem
    detail: str
    """What the evidence shows, in Chinese then English."""
    stream_id: str | None = None
    stream_version: int | None = None
    global_position: int | None = None
    event_id: str | None = None
    seal_seq: int | None = None
    district_id: str | None = None

    def where(self) -> str:
        """The place, as operators read it: ``stream S version V (position P, event E)``."""
        if self.stream_id is None:
            place = f"district {self.district_id}" if self.district_id else "archive"
            return place + (f" seal {self.seal_seq}" if self.seal_seq is not None else "")
        text = f"stream {self.stream_id}"
        if self.stream_version is not None:
            text += f" version {self.stream_version}"
        extra = []
        if self.global_position is not None:
            extra.append(f"position {self.global_position}")
        if self.event_id is not None:
            extra.append(f"event {self.event_id}")
        if self.seal_seq is not None:
            extra.append(f"seal {self.seal_seq}")
        return text + (f" ({', '.join(extra)})" if extra else "")

    def describe(self) -> str:
        """One line: the place, the problem in both languages, the detail."""
        zh, en = LABELS[self.problem]
        return f"{self.where()}: {zh} / {en}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready values."""
        return {**asdict(self), "problem": self.problem.value}


def _versions(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def _text(zh: str, en: str) -> str:
    return f"{zh} / {en}"


@dataclass(frozen=True, slots=True)
class LinkEvidence:
    """What the store (or an archive) says about one event and its place in its chain."""

    stream_id: str
    stream_version: int
    global_position: int | None
    event_id: str | None
    content_ok: bool
    """Whether the stored hash is ``sha256(prev_hash || canonical bytes)``."""
    prev_hash: bytes
    predecessor_hash: bytes | None
    """The stored hash of version - 1; None when there is no such event (or version 1)."""
    prior_version: int | None = None
    """The highest version below this one that exists (when version - 1 does not)."""
    prev_points_at: int | None = None
    """The version of this stream (other than version - 1) whose hash ``prev_hash`` is."""


def classify_link(e: LinkEvidence) -> Finding | None:
    """The problem with one event's link, or None when it holds.

    - no version - 1 (and version > 1): events are missing before it;
    - ``prev_hash`` names a later event of the stream: versions were swapped;
    - ``prev_hash`` names an earlier event than version - 1: events were inserted between;
    - ``prev_hash`` names nothing, but the event's own hash holds: version - 1 was changed
      and its hash recomputed (the chain breaks at this link);
    - the hash does not match the content: the content was changed.
    """

    def found(problem: Problem, detail: str, version: int | None = None) -> Finding:
        return Finding(
            problem,
            detail,
            stream_id=e.stream_id,
            stream_version=e.stream_version if version is None else version,
            global_position=e.global_position if version is None else None,
            event_id=e.event_id if version is None else None,
        )

    v = e.stream_version
    if v == 1:
        if e.prev_hash == ZERO_HASH:
            return None if e.content_ok else found(Problem.CHANGED_CONTENT, _changed())
        if e.prev_points_at is not None:
            return found(
                Problem.REORDERED_VERSIONS,
                _text(
                    f"第 1 版指向第 {e.prev_points_at} 版",
                    f"version 1 is chained to version {e.prev_points_at}",
                ),
            )
        return found(Problem.CHANGED_CONTENT, _changed())
    if e.predecessor_hash is None:
        first = (e.prior_version or 0) + 1
        return found(
            Problem.MISSING_EVENT,
            _text(
                f"缺少第 {_versions(first, v - 1)} 版", f"version {_versions(first, v - 1)} missing"
            ),
        )
    if e.prev_hash != e.predecessor_hash:
        if e.prev_points_at is not None and e.prev_points_at > v:
            return found(
                Problem.REORDERED_VERSIONS,
                _text(
                    f"第 {v} 版原在第 {e.prev_points_at} 版之后",
                    f"version {v} was chained after version {e.prev_points_at}",
                ),
            )
        if e.prev_points_at is not None and e.prev_points_at < v - 1:
            inserted = _versions(e.prev_points_at + 1, v - 1)
            return found(
                Problem.INSERTED_EVENT,
                _text(f"第 {inserted} 版是插入的", f"version {inserted} was inserted"),
                version=e.prev_points_at + 1,
            )
        if e.content_ok:
            return found(
                Problem.CHANGED_CONTENT,
                _text(
                    f"第 {v - 1} 版被改动并重算了哈希，与下一版的链接断开",
                    f"version {v - 1} was changed and its hash recomputed: "
                    f"version {v} no longer links to it",
                ),
                version=v - 1,
            )
        return found(Problem.CHANGED_CONTENT, _changed())
    return None if e.content_ok else found(Problem.CHANGED_CONTENT, _changed())


def _changed() -> str:
    return _text("哈希与内容不符", "the hash does not match the content")


@dataclass(frozen=True, slots=True)
class SealedPart:
    """One stream's part of a seal, as the seal says or as the record shows now."""

    first_version: int
    last_version: int
    count: int
    head_hash: str
    """Hexadecimal."""


def compare_sealed_stream(
    district_id: str,
    seal_seq: int,
    stream_id: str,
    sealed: SealedPart | None,
    found: SealedPart | None,
    latest_version: int | None,
) -> Finding | None:
    """Whether one stream's events in a seal's range are those the seal covered.

    ``latest_version`` is the stream's highest version anywhere in the record (None when
    the stream has no event left at all).
    """

    def finding(problem: Problem, version: int | None, detail: str) -> Finding:
        return Finding(
            problem,
            detail,
            stream_id=stream_id,
            stream_version=version,
            seal_seq=seal_seq,
            district_id=district_id,
        )

    if sealed is None:
        assert found is not None
        return finding(
            Problem.INSERTED_EVENT,
            found.first_version,
            _text(
                f"第 {_versions(found.first_version, found.last_version)} 版不在封存 {seal_seq} 中",
                f"version {_versions(found.first_version, found.last_version)} is not "
                f"in seal {seal_seq}",
            ),
        )
    span = _versions(sealed.first_version, sealed.last_version)
    if found is None:
        if latest_version is None:
            return finding(
                Problem.DELETED_STREAM,
                sealed.first_version,
                _text(
                    f"封存 {seal_seq} 含第 {span} 版，流已不存在",
                    f"seal {seal_seq} covers version {span}; the stream is gone",
                ),
            )
        if latest_version < sealed.first_version:
            return _deleted_tail(finding, seal_seq, latest_version + 1, sealed.last_version)
        return finding(
            Problem.MISSING_EVENT,
            sealed.first_version,
            _text(
                f"封存 {seal_seq} 的第 {span} 版不见了",
                f"version {span} of seal {seal_seq} is missing",
            ),
        )
    if found.last_version > sealed.last_version or found.first_version < sealed.first_version:
        extra = (
            (sealed.last_version + 1, found.last_version)
            if found.last_version > sealed.last_version
            else (found.first_version, sealed.first_version - 1)
        )
        return finding(
            Problem.INSERTED_EVENT,
            extra[0],
            _text(
                f"第 {_versions(*extra)} 版不在封存 {seal_seq} 中",
                f"version {_versions(*extra)} is not in seal {seal_seq}",
            ),
        )
    if found.last_version < sealed.last_version:
        if latest_version is not None and latest_version < sealed.last_version:
            return _deleted_tail(finding, seal_seq, found.last_version + 1, sealed.last_version)
        return finding(
            Problem.MISSING_EVENT,
            found.last_version + 1,
            _text(
                f"封存 {seal_seq} 的第 {_versions(found.last_version + 1, sealed.last_version)}"
                " 版不见了",
                f"version {_versions(found.last_version + 1, sealed.last_version)} of seal "
                f"{seal_seq} is missing",
            ),
        )
    if found.count < sealed.count or found.first_version > sealed.first_version:
        return finding(
            Problem.MISSING_EVENT,
            sealed.first_version,
            _text(
                f"封存 {seal_seq} 的第 {span} 版缺了事件",
                f"events of version {span} in seal {seal_seq} are missing",
            ),
        )
    if found.head_hash != sealed.head_hash:
        return finding(
            Problem.CHANGED_CONTENT,
            sealed.last_version,
            _text(
                f"链被改写（内容改动后重算了哈希）；封存 {seal_seq} 记录的第 "
                f"{sealed.last_version} 版哈希不同",
                f"the chain was rewritten (changed, then re-hashed): version "
                f"{sealed.last_version} has another hash than seal {seal_seq} recorded",
            ),
        )
    return None


def _deleted_tail(finding: Any, seal_seq: int, first: int, last: int) -> Finding:
    result: Finding = finding(
        Problem.DELETED_TAIL,
        first,
        _text(
            f"封存 {seal_seq} 含第 {_versions(first, last)} 版，已被删除",
            f"version {_versions(first, last)}, covered by seal {seal_seq}, was deleted",
        ),
    )
    return result


def first_per_stream(findings: Iterable[Finding]) -> list[Finding]:
    """The first broken link of each stream, and every finding about no one stream.

    What a stream's own chain shows comes first (it names the exact version); what only a
    seal shows (its aggregates name a range) counts when the chain shows nothing.
    """
    per_stream: dict[str, Finding] = {}
    others: list[Finding] = []

    def rank(f: Finding) -> tuple[bool, int]:
        return (f.seal_seq is not None, f.stream_version or 0)

    for f in findings:
        if f.stream_id is None:
            others.append(f)
            continue
        kept = per_stream.get(f.stream_id)
        if kept is None or rank(f) < rank(kept):
            per_stream[f.stream_id] = f
    ordered = sorted(per_stream.values(), key=lambda f: (f.stream_id or "", f.stream_version or 0))
    return [*ordered, *others]


@dataclass(slots=True)
class VerificationReport:
    """What a verification looked at and what it found."""

    events: int = 0
    streams: int = 0
    seals: int = 0
    districts: set[str] = field(default_factory=set)
    unsealed: dict[str, int] = field(default_factory=dict)
    """Per district, events after its last seal (or all its events, when it has none):
    only their chains protect them so far."""
    _per_stream: dict[str, Finding] = field(default_factory=dict)
    _others: list[Finding] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        """The first broken link of each stream, by stream, then the other findings."""
        return first_per_stream([*self._per_stream.values(), *self._others])

    @property
    def intact(self) -> bool:
        """Whether nothing is wrong."""
        return not self._per_stream and not self._others

    def add(self, findings: Iterable[Finding]) -> None:
        """More findings; the first per stream is kept (see :func:`first_per_stream`)."""
        for finding in findings:
            if finding.stream_id is None:
                self._others.append(finding)
                continue
            kept = self._per_stream.get(finding.stream_id)
            self._per_stream[finding.stream_id] = (
                finding if kept is None else first_per_stream([kept, finding])[0]
            )

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "intact": self.intact,
            "events": self.events,
            "streams": self.streams,
            "seals": self.seals,
            "districts": sorted(self.districts),
            "unsealed": dict(sorted(self.unsealed.items())),
            "findings": [f.as_dict() for f in self.findings],
        }
