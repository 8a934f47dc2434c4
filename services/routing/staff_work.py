"""Case work as a signed-in person does it: every read and every command kept to the
person's scope, for the API and the workbench pages alike.

The API's routes and the workbench's forms both call :class:`StaffWork`, which checks
the role against the command's row of :mod:`services.routing.staff_commands` and the case
against the person's :class:`~services.routing.staff_scope.Scope`, then hands the command
to :meth:`services.routing.casework.CaseWork.execute`, whose transaction checks the scope
once more on the case it loaded (a case transferred away meanwhile is refused). The pages
and the API therefore cannot drift: they are the same calls.

Residents' contact details stay sealed in their opinion (intake sealed them with the
resident's key, ``eventkit.privacy``); :meth:`StaffWork.open_contact` opens them for a
person whose role may call residents back, records the opening as
``ResidentContactOpened`` on that person's stream in the transaction that reads the key,
and never logs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts import REGISTRY
from contracts.base import Actor, ActorRole
from contracts.envelope import Envelope
from contracts.intake import OpinionSubmitted
from contracts.staff import ResidentContactOpened
from eventkit.clock import Clock
from eventkit.db import Conn, district_transaction
from eventkit.db import scope as scope_transaction
from eventkit.identity import Principal
from eventkit.privacy import PersonalDataVault
from eventkit.refusals import Forbidden
from eventkit.requests import RequestInfo
from eventkit.store import EventStore
from eventkit.tracking_codes import normalise_tracking_code
from services.routing import views
from services.routing.api_models import CaseDetail, CaseSummary
from services.routing.case_state import CaseState, CaseStatus
from services.routing.case_store import CaseStore, stream_of
from services.routing.casework import CaseWork, Planned, Step
from services.routing.district_context import DistrictContext, DistrictContexts
from services.routing.domain import NotYourCase
from services.routing.errors import CaseNotFound
from services.routing.staff_accounts import StaffAccounts
from services.routing.staff_commands import StaffCommand
from services.routing.staff_scope import CONTACT_ROLES, OutOfScope, ReadOnly, Scope, scope_of

FINAL = frozenset({CaseStatus.MERGED, CaseStatus.TRANSFERRED_OUT})
CONTACT_FIELDS = {"name": "name_ciphertext", "phone": "phone_ciphertext"}


class CommandNotAllowed(Forbidden):
    """The person's role may not ask for this command."""

    code = "forbidden"

    def __init__(self, command: str) -> None:
        super().__init__(
            "当前角色无权执行此操作",
            "Your role may not do this",
            f"操作「{command}」不属于您的角色",
            f"'{command}' is not for your role",
        )


@dataclass(frozen=True)
class Contact:
    """What opening a resident's contact gave (nothing is kept of it)."""

    shown: bool
    name: str | None = None
    phone: str | None = None
    reason_zh: str = ""
    reason_en: str = ""
    """Why nothing is shown, when nothing is."""


class StaffWork:
    """See the module's note."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        cases: CaseStore,
        casework: CaseWork,
        districts: DistrictContexts,
        accounts: StaffAccounts,
        vault: PersonalDataVault,
        clock: Clock,
    ) -> None:
        self._pool = pool
        self._store = store
        self._cases = cases
        self._casework = casework
        self._districts = districts
        self._accounts = accounts
        self._vault = vault
        self._clock = clock

    async def context(
        self, conn: Conn, principal: Principal
    ) -> tuple[DistrictContext | None, Scope]:
        """The person's district and scope (:class:`NotActiveStaff` when they are not
        active staff of their role there any more)."""
        await self._accounts.ensure_active(conn, principal)
        ctx = await self._districts.get(conn, principal.district_id)
        return ctx, scope_of(principal, ctx.directory if ctx else None)

    # ----------------------------------------------------------------- reading

    async def case(self, principal: Principal, case_id: str) -> tuple[CaseState, CaseDetail]:
        """A case of the person's scope with its history (404 for another district's,
        403 for one outside their scope)."""
        async with district_transaction(self._pool, principal.district_id) as conn:
            ctx, scope = await self.context(conn, principal)
            state = await self._in_scope(conn, scope, case_id)
            detail = await views.case_detail(
                self._store, conn, state, ctx.directory if ctx else None, self._cases.texts
            )
        return state, detail

    async def case_of_tracking_code(self, principal: Principal, code: str) -> str:
        """The id of the case of the person's district and scope that a resident's
        tracking code names (the case the opinion opened here, or continued here after a
        transfer); found through the code's keyed hash, since only intake keeps codes."""
        canonical = normalise_tracking_code(code)
        if canonical is None:
            raise CaseNotFound(code)
        async with district_transaction(self._pool, principal.district_id) as conn:
            _, scope = await self.context(conn, principal)
            # An event keeps the ref it was written with: try the ref under every key
            # of the index (current, previous, the database's former one).
            refs = await self._vault.tracking_refs(canonical, conn=conn)
            case_id = await conn.fetchval(
                "SELECT case_id FROM routing.cases WHERE district_id = $1 "
                "AND tracking_ref = ANY($2::text[]) ORDER BY opened_at DESC LIMIT 1",
                principal.district_id,
                refs,
            )
            if case_id is None:
                raise CaseNotFound(canonical)
            try:
                await self._in_scope(conn, scope, case_id)
            except (NotYourCase, OutOfScope):
                # The same answer as no case: a code tells nothing beyond one's scope.
                raise CaseNotFound(canonical) from None
        return str(case_id)

    async def cases(self, principal: Principal, **filters: Any) -> list[CaseSummary]:
        """Cases matching ``filters`` (those of :func:`views.list_cases`) within scope."""
        async with district_transaction(self._pool, principal.district_id) as conn:
            _, scope = await self.context(conn, principal)
            merged = within(scope, filters)
            if merged is None:
                return []
            return await views.list_cases(conn, principal.district_id, **merged)

    async def queue(
        self, principal: Principal, *, limit: int = 50, offset: int = 0
    ) -> tuple[Scope, list[CaseSummary]] | None:
        """The person's queue (None: their role has none)."""
        async with district_transaction(self._pool, principal.district_id) as conn:
            _, scope = await self.context(conn, principal)
            filters = scope.queue_filters()
            if filters is None:
                return None
            cases = await views.list_cases(
                conn, principal.district_id, limit=limit, offset=offset, **filters
            )
        return scope, cases

    async def _in_scope(self, conn: Conn, scope: Scope, case_id: str) -> CaseState:
        state = await self._cases.load(conn, case_id)
        if state is None or state.district_id != scope.principal.district_id:
            raise CaseNotFound(case_id)
        check_scope(scope, state)
        return state

    # ----------------------------------------------------------------- acting

    async def run(
        self,
        principal: Principal,
        command: StaffCommand[Any],
        case_id: str,
        body: Any,
        info: RequestInfo | None = None,
    ) -> CaseState:
        """Carry out a staff command for ``principal`` on a case of their scope."""
        if principal.role not in command.roles:
            raise CommandNotAllowed(command.name)
        async with district_transaction(self._pool, principal.district_id) as conn:
            _, scope = await self.context(conn, principal)
            if not scope.may_act:
                raise ReadOnly()
            await self._in_scope(conn, scope, case_id)

        async def build(step: Step) -> Planned:
            # The case as this transaction sees it: it may have moved since.
            check_scope(scope_of(principal, step.ctx.directory), step.state)
            return await command.build(step, body)

        return await self._casework.execute(
            principal.district_id,
            case_id,
            actor_of(principal),
            build,
            name=command.name,
            info=info or RequestInfo(),
        )

    # ----------------------------------------------------------------- contact

    async def open_contact(self, principal: Principal, case_id: str, reason: str) -> Contact:
        """The resident's name and phone for a person who may call them back, the opening
        recorded; nothing when the resident gave none, did not consent or was forgotten."""
        if principal.role not in CONTACT_ROLES:
            raise ReadOnly()
        async with district_transaction(self._pool, principal.district_id) as conn:
            _, scope = await self.context(conn, principal)
            state = await self._in_scope(conn, scope, case_id)
            if state.status in FINAL:
                return Contact(False, reason_zh="案件已并案或转出", reason_en="The case moved on")
            # The resident is the opinion's, which another district took down when the
            # case was transferred here: their sealed contact and their key are read in
            # that district's scope, the opening recorded in ours.
            home = await self._opinion_district(conn, state)
            await scope_transaction(conn, home)
            submitter = await self._submitter(conn, state.opinion_id)
            await scope_transaction(conn, state.district_id)
            if submitter is None or not any(submitter.get(f) for f in CONTACT_FIELDS.values()):
                return Contact(False, reason_zh="居民未留联系方式", reason_en="No contact given")
            if not submitter.get("contact_consent"):
                return Contact(
                    False,
                    reason_zh="居民未同意被联系",
                    reason_en="The resident did not agree to be contacted",
                )
            sealed = {k: submitter.get(v) for k, v in CONTACT_FIELDS.items() if submitter.get(v)}
            opened = ResidentContactOpened(
                district_id=principal.district_id,
                occurred_at=self._clock(),
                actor=actor_of(principal),
                person_id=principal.subject,
                case_id=case_id,
                opinion_id=state.opinion_id,
                subject_id=str(submitter["subject_id"]),
                fields=sorted(sealed),
                reason=reason,
            )
            await self._store.append(opened.stream_id, [Envelope.wrap(opened)], conn=conn)
            await scope_transaction(conn, home)
            plain = await self._vault.open(opened.subject_id, sealed, conn=conn)
        if plain is None:
            return Contact(
                False,
                reason_zh="居民已要求删除个人信息",
                reason_en="The resident's data was erased at their request",
            )
        return Contact(True, name=plain.get("name"), phone=plain.get("phone"))

    async def _opinion_district(self, conn: Conn, state: CaseState) -> str:
        """The district whose opinion the case carries: its own, or the one it was
        transferred from (its opening event says which)."""
        for record in await self._store.read_stream(stream_of(state.case_id), conn=conn):
            return str(record.data.get("transferred_from_district_id") or state.district_id)
        return state.district_id

    async def _submitter(self, conn: Conn, opinion_id: str) -> dict[str, Any] | None:
        for record in await self._store.read_stream(f"opinion-{opinion_id}", conn=conn):
            event = record.envelope().event(REGISTRY)
            if isinstance(event, OpinionSubmitted):
                return event.submitter.model_dump() if event.submitter else None
        return None


def check_scope(scope: Scope, state: CaseState) -> None:
    """Refuse a case outside ``scope`` (a representative hears it is not theirs)."""
    if scope.covers(state.station_code, state.representative_id):
        return
    if scope.representative_id is not None:
        raise NotYourCase(state.case_id, scope.representative_id)
    raise OutOfScope(state.case_id)


def within(scope: Scope, filters: dict[str, Any]) -> dict[str, Any] | None:
    """``filters`` narrowed to ``scope`` (None: nothing can match)."""
    if not scope.readable:
        return None
    merged = dict(filters)
    mine = scope.list_filters()
    if "representative_id" in mine:
        asked = merged.get("representative_id")
        if asked is not None and asked != mine["representative_id"]:
            return None
        merged["representative_id"] = mine["representative_id"]
    if "stations" in mine:
        asked_stations = merged.get("stations")
        allowed = set(mine["stations"])
        merged["stations"] = sorted(
            allowed if asked_stations is None else allowed & set(asked_stations)
        )
    return merged


def actor_of(principal: Principal) -> Actor:
    """The event actor for a staff member."""
    return Actor(id=principal.subject, role=ActorRole(principal.role.value))
