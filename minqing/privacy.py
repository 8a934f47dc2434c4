"""Residents' rights across every service: find, export and forget a resident by their
phone number (or their subject id), and the districts' retention of closed cases' texts.

Each service answers for its own tables (``services/<name>/privacy.py``); this module,
on the ``minqing`` side of the arrows, is the only one that may call them all. One
request is one transaction scoped to its district: the services' copies are erased, the
resident's key deleted and the request recorded together, or nothing is. A matter
transferred to another district (``CaseTransferred.to_district_id``) has copies there:
the same transaction is scoped to that district while it reads or erases them, then
back to the request's own.

Authority: a request names the district admin it is made for (``requested_by``), who must
hold an active district admin account of that district; the database credentials the
command runs with are an operator's (docs/privacy.md, "Who may ask").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import asyncpg

from eventkit.clock import Clock, utc_now
from eventkit.db import ALL_DISTRICTS, Conn, district_transaction, scope
from eventkit.privacy import PersonalDataVault, SealError
from eventkit.privacy_rights import (
    Erasure,
    cutoff,
    forgotten_subjects,
    record_request,
    retention_days,
    set_retention_days,
)
from eventkit.refusals import Forbidden, InvalidInput, NotFound
from eventkit.store import EventStore
from services.intake import privacy as intake
from services.notification import privacy as notification
from services.reporting import privacy as reporting
from services.routing import privacy as routing

EXPORT_FORMAT: Final = "minqing.privacy-export.v1"


class NotDistrictAdmin(Forbidden):
    """The request names someone who is not an active district admin of the district."""

    code = "not-district-admin"

    def __init__(self, district_id: str, person_id: str) -> None:
        super().__init__(
            "无权办理",
            "Not authorised",
            f"{person_id!r} 不是区 {district_id!r} 在职的区管理员：居民个人信息的查询、导出和删除"
            "须以区管理员的名义办理。",
            f"{person_id!r} is not an active district admin of {district_id!r}: residents' "
            "data is found, exported and erased on a district admin's authority only.",
        )


class UnknownSubject(NotFound):
    """No resident has this subject id (and none was forgotten under it)."""

    code = "unknown-subject"

    def __init__(self, subject_id: str) -> None:
        super().__init__(
            "没有这个居民编号",
            "No such subject",
            f"没有居民编号 {subject_id!r}",
            f"no subject {subject_id!r}",
        )


@dataclass(frozen=True)
class Matters:
    """A resident's subjects in one district and what refers to them: their opinions (in
    that district), and their cases there and in every district a case was transferred
    to (each case names its ``district_id``)."""

    district_id: str
    subject_ids: tuple[str, ...]
    opinions: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def opinion_ids(self) -> tuple[str, ...]:
        return tuple(o["opinion_id"] for o in self.opinions)

    @property
    def case_ids(self) -> tuple[str, ...]:
        return tuple(c["case_id"] for c in self.cases)

    @property
    def districts(self) -> tuple[str, ...]:
        """The resident's district first, then each district their matters went to."""
        found = [self.district_id]
        for case in self.cases:
            if case["district_id"] not in found:
                found.append(case["district_id"])
        return tuple(found)

    def erasures(self, *, forget: bool) -> list[Erasure]:
        """One erasure per district holding copies, each of that district's cases."""
        return [
            Erasure(
                district,
                self.opinion_ids,
                tuple(c["case_id"] for c in self.cases if c["district_id"] == district),
                self.subject_ids,
                forget=forget,
            )
            for district in self.districts
        ]


@dataclass(frozen=True)
class Forgotten:
    """What a request to forget did."""

    matters: Matters
    keys_deleted: int
    erased: dict[str, dict[str, int]]
    request_id: UUID


@dataclass(frozen=True)
class RetentionRun:
    """What one district's retention run did."""

    district_id: str
    retention_days: int
    cutoff: datetime
    cases: int
    erased: dict[str, dict[str, int]]
    forgotten_again: dict[str, dict[str, int]]
    """What was erased again of residents forgotten before (after a rebuild: their texts)."""
    request_id: UUID


class ResidentRights:
    """The residents' requests and the retention runs, on one database."""

    def __init__(self, pool: asyncpg.Pool, vault: PersonalDataVault, clock: Clock = utc_now):
        self._pool = pool
        self._vault = vault
        self._store = EventStore(pool)
        self._clock = clock

    async def _authorise(self, conn: Conn, district_id: str, requested_by: str) -> None:
        if not await routing.is_district_admin(conn, district_id, requested_by):
            raise NotDistrictAdmin(district_id, requested_by)

    async def _matters(self, conn: Conn, district_id: str, subjects: Sequence[str]) -> Matters:
        opinions = await intake.opinions_of(conn, subjects)
        cases = await routing.cases_of(
            conn, self._store, district_id, [o["opinion_id"] for o in opinions]
        )
        return Matters(district_id, tuple(subjects), opinions, cases)

    async def _by_phone(self, conn: Conn, district_id: str, phone: str) -> Matters:
        subjects = await intake.subjects_by_phone(conn, self._vault, district_id, phone)
        return await self._matters(conn, district_id, subjects)

    async def find(
        self, district_id: str, phone: str, *, requested_by: str, reason: str | None
    ) -> Matters:
        """The resident a phone number names in the district, their opinions and cases."""
        async with district_transaction(self._pool, district_id) as conn:
            await self._authorise(conn, district_id, requested_by)
            matters = await self._by_phone(conn, district_id, phone)
            await record_request(
                conn,
                district_id=district_id,
                kind="find",
                requested_by=requested_by,
                reason=reason,
                subject_ids=matters.subject_ids,
                outcome={"opinions": len(matters.opinions), "cases": len(matters.cases)},
                now=self._clock(),
            )
            return matters

    async def export(
        self, district_id: str, phone: str, *, requested_by: str, reason: str | None
    ) -> tuple[Matters, dict[str, Any]]:
        """Everything held about the resident a phone number names, as one document."""
        now = self._clock()
        async with district_transaction(self._pool, district_id) as conn:
            await self._authorise(conn, district_id, requested_by)
            matters = await self._by_phone(conn, district_id, phone)
            document = await self._document(conn, matters, now)
            request_id = await record_request(
                conn,
                district_id=district_id,
                kind="export",
                requested_by=requested_by,
                reason=reason,
                subject_ids=matters.subject_ids,
                outcome={"opinions": len(matters.opinions), "cases": len(matters.cases)},
                now=now,
            )
        document["request_id"] = str(request_id)
        return matters, document

    async def _document(self, conn: Conn, matters: Matters, now: datetime) -> dict[str, Any]:
        residents = [await self._contact(conn, s, matters) for s in matters.subject_ids]
        sections: dict[str, dict[str, Any]] = {}
        # Each district holding copies of the resident's matters (their own, then each a
        # case was transferred to), read in its own scope; then back to their district.
        for district in matters.districts:
            await scope(conn, district)
            cases = tuple(c["case_id"] for c in matters.cases if c["district_id"] == district)
            _extend(
                sections,
                {
                    "intake": await intake.export(conn, matters.opinion_ids),
                    "routing": await routing.export(conn, self._store, matters.opinion_ids),
                    "notification": {
                        "messages": await notification.messages_to(conn, matters.subject_ids)
                    },
                    "reporting": await reporting.export(conn, cases),
                },
            )
        await scope(conn, matters.district_id)
        return {
            "format": EXPORT_FORMAT,
            "about": "民情系统所存该居民的全部信息 / everything Minqing holds about this "
            "resident (keys: docs/privacy.md, 'Export')",
            "district": matters.district_id,
            "districts": list(matters.districts),
            "exported_at": now,
            "residents": residents,
            **sections,
        }

    async def _contact(self, conn: Conn, subject_id: str, matters: Matters) -> dict[str, Any]:
        """The resident's name and phone, opened from the latest opinion that sealed them."""
        contact: dict[str, Any] = {"subject_id": subject_id, "name": None, "phone": None}
        for opinion in reversed(matters.opinions):
            if opinion["subject_id"] != subject_id:
                continue
            events = await self._store.read_stream(f"opinion-{opinion['opinion_id']}", conn=conn)
            submitter = events[0].data.get("submitter") if events else None
            if not submitter:
                continue
            sealed = {
                "name": submitter.get("name_ciphertext"),
                "phone": submitter.get("phone_ciphertext"),
            }
            try:
                opened = await self._vault.open(subject_id, sealed, conn=conn)
            except SealError:
                continue
            if opened is not None:
                contact.update(opened)
                break
        return contact

    async def forget_phone(
        self, district_id: str, phone: str, *, requested_by: str, reason: str | None
    ) -> Forgotten:
        """Forget the resident a phone number names in the district."""
        async with district_transaction(self._pool, district_id) as conn:
            await self._authorise(conn, district_id, requested_by)
            matters = await self._by_phone(conn, district_id, phone)
            return await self._forget(conn, matters, requested_by, reason)

    async def forget_subject(
        self, subject_id: str, *, requested_by: str, reason: str | None, check: bool
    ) -> Forgotten:
        """Forget a resident by subject id (again, for one forgotten before: the services'
        copies are erased again, e.g. after a rebuild brought texts back). ``check``: the
        requester must be a district admin of the subject's district."""
        district_id = await self._district_of(subject_id)
        async with district_transaction(self._pool, district_id) as conn:
            if check:
                await self._authorise(conn, district_id, requested_by)
            matters = await self._matters(conn, district_id, [subject_id])
            return await self._forget(conn, matters, requested_by, reason)

    async def _district_of(self, subject_id: str) -> str:
        # The one look-up before the district is known: by a pseudonymous id, all districts.
        async with self._pool.acquire() as conn, conn.transaction():
            await scope(conn, ALL_DISTRICTS)
            district = await conn.fetchval(
                "SELECT district_id FROM privacy.subject_keys WHERE subject_id = $1 "
                "UNION ALL "
                "SELECT district_id FROM privacy.forgotten_subjects WHERE subject_id = $1 "
                "LIMIT 1",
                subject_id,
            )
        if district is None:
            raise UnknownSubject(subject_id)
        return str(district)

    async def _forget(
        self, conn: Conn, matters: Matters, requested_by: str, reason: str | None
    ) -> Forgotten:
        erased = await self._erase_all(conn, matters.erasures(forget=True))
        erased["intake"]["tracking_codes"] = await intake.replace_tracking_codes(
            conn, matters.opinion_ids
        )
        deleted = 0
        for subject_id in matters.subject_ids:
            if await self._vault.forget(
                subject_id, requested_by=requested_by, reason=reason, conn=conn
            ):
                deleted += 1
        request_id = await record_request(
            conn,
            district_id=matters.district_id,
            kind="forget",
            requested_by=requested_by,
            reason=reason,
            subject_ids=matters.subject_ids,
            outcome={"keys_deleted": deleted, "districts": list(matters.districts), **erased},
            now=self._clock(),
        )
        return Forgotten(matters, deleted, erased, request_id)

    async def _erase(self, conn: Conn, erasure: Erasure) -> dict[str, dict[str, int]]:
        return {
            "intake": await intake.erase(conn, erasure),
            "routing": await routing.erase(conn, erasure),
            "notification": await notification.erase(conn, erasure),
            "reporting": await reporting.erase(conn, erasure),
        }

    async def _erase_all(
        self, conn: Conn, erasures: Sequence[Erasure]
    ) -> dict[str, dict[str, int]]:
        """Each erasure in its district's scope, in ``conn``'s transaction (left scoped to
        the first erasure's district, the request's own); counts added up."""
        total: dict[str, dict[str, int]] = {}
        for erasure in erasures:
            await scope(conn, erasure.district_id)
            for service, counts in (await self._erase(conn, erasure)).items():
                into = total.setdefault(service, {})
                for name, count in counts.items():
                    into[name] = into.get(name, 0) + count
        if erasures:
            await scope(conn, erasures[0].district_id)
        return total

    async def retention_run(
        self, district_id: str | None = None, *, requested_by: str = "retention"
    ) -> list[RetentionRun]:
        """Erase the texts of every case closed before its district's retention period,
        in every service, and again the copies of residents forgotten before; recorded per
        district. Idempotent: a second run erases nothing new (and again what a rebuild
        brought back)."""
        if district_id is None:
            async with self._pool.acquire() as every, every.transaction():
                await scope(every, ALL_DISTRICTS)
                districts = await routing.districts(every)
        else:
            districts = [district_id]
        runs = []
        for district in districts:
            now = self._clock()
            async with district_transaction(self._pool, district) as conn:
                days = await retention_days(conn, district)
                cut = cutoff(now, days)
                pairs = await routing.closed_before(conn, district, cut)
                # The whole matter, wherever it was transferred: its continuations closed
                # before the cut-off too (routing.closed_before made sure of it).
                opinions = [{"opinion_id": o} for o in sorted({o for _, o in pairs})]
                old = Matters(
                    district,
                    (),
                    opinions,
                    await routing.cases_of(
                        conn, self._store, district, [o["opinion_id"] for o in opinions]
                    ),
                )
                erased = await self._erase_all(conn, old.erasures(forget=False))
                forgotten = await self._matters(
                    conn, district, await forgotten_subjects(conn, district)
                )
                again = await self._erase_all(conn, forgotten.erasures(forget=True))
                request_id = await record_request(
                    conn,
                    district_id=district,
                    kind="retention",
                    requested_by=requested_by,
                    reason=f"retention {days} days: cases closed before {cut.isoformat()}",
                    subject_ids=(),
                    outcome={
                        "cases": len(old.cases),
                        "districts": list(old.districts),
                        **erased,
                        "forgotten_again": again,
                    },
                    now=now,
                )
            runs.append(
                RetentionRun(district, days, cut, len(old.cases), erased, again, request_id)
            )
        return runs

    async def set_retention(self, district_id: str, days: int, *, requested_by: str) -> None:
        """Set a district's retention period, on a district admin's authority."""
        async with district_transaction(self._pool, district_id) as conn:
            await self._authorise(conn, district_id, requested_by)
            try:
                await set_retention_days(
                    conn, district_id, days, updated_by=requested_by, now=self._clock()
                )
            except ValueError as exc:
                raise InvalidInput("保存期限无效", "Invalid retention period", str(exc)) from exc

    async def retention_of(self, district_id: str) -> int:
        """A district's retention period in days."""
        async with district_transaction(self._pool, district_id) as conn:
            return await retention_days(conn, district_id)


def _extend(into: dict[str, dict[str, Any]], part: Mapping[str, Mapping[str, Any]]) -> None:
    """Add one district's sections of an export to the document's: lists concatenated."""
    for service, section in part.items():
        target = into.setdefault(service, {})
        for key, items in section.items():
            target.setdefault(key, []).extend(items)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_export(path: Path, document: dict[str, Any]) -> None:
    """Write an export readable by its owner only (0600); never over an existing file."""
    data = json.dumps(document, ensure_ascii=False, indent=2, default=_json).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    with os.fdopen(fd, "wb") as out:
        out.write(data)
