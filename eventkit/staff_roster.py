"""The staff roster every service but routing keeps: who is known, active staff of each
district, folded from the events routing publishes on the directory topic
(``minqing.directory.v1``: the directory's streams and the staff accounts' streams), and
the HTTP dependency that checks a staff token's subject against it.

Services never read another service's schema: intake, reporting and notification each
keep a :class:`StaffRoster` table of their own, folded by their consumer
(:class:`RosterConsumer`), and ask it what :func:`eventkit.staff_rule.admitted` needs,
as routing asks its directory. A test folds the same events through routing's directory
and through a roster and compares the answers for every person and role.

A person the roster does not know yet (the district's file not imported yet, or its
events still on their way) is refused like a stranger, as routing refuses them: a 401
the caller can retry once the directory has arrived.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final

import asyncpg
from fastapi import Header, Request

from contracts import REGISTRY
from contracts.base import Event
from contracts.directory import (
    DepartmentRegistered,
    DepartmentRetired,
    RepresentativeRegistered,
    RepresentativeRetired,
    SpokespersonRegistered,
    SpokespersonRetired,
    StaffMemberRegistered,
    StaffMemberRetired,
    StationRegistered,
    StationRetired,
    StreetRegistered,
)
from contracts.staff import StaffInvited, StaffPasswordSet, StaffRetired
from eventkit.consumer import Consumer, HandlerContext
from eventkit.db import ALL_DISTRICTS, Conn, district_transaction, scope
from eventkit.http.auth import principal_from_authorization
from eventkit.identity import Principal, Role
from eventkit.settings import Settings
from eventkit.staff_rule import DIRECTORY_ROLES, AccountStanding, Listing, ensure_admitted
from eventkit.store import START, EventStore

# --------------------------------------------------------------------------- the roster

ACCOUNT_POST: Final = "account"
"""The post of a person's account row (its role is the account's)."""
_MEMBER_POST: Final = "staff_member"
_REPRESENTATIVE_POST: Final = "representative"

ROSTER_EVENTS: Final[tuple[type[Event], ...]] = (
    RepresentativeRegistered,
    RepresentativeRetired,
    StationRegistered,
    StationRetired,
    StreetRegistered,
    DepartmentRegistered,
    DepartmentRetired,
    StaffMemberRegistered,
    StaffMemberRetired,
    SpokespersonRegistered,
    SpokespersonRetired,
    StaffInvited,
    StaffPasswordSet,
    StaffRetired,
)
"""The events that change who is known, active staff (all on the directory topic)."""


@dataclass(frozen=True)
class Post:
    """One way a person holds a role: ``post`` names where (``station:<code>``,
    ``street:<code>``, ``department:<code>``, ``staff_member``, ``representative``, or
    ``account`` for the account itself)."""

    person_id: str
    role: str
    post: str


class StaffRoster:
    """A service's roster table (``<schema>.staff_roster``): one row per (district,
    person, role, post), active or not, folded from :data:`ROSTER_EVENTS`.

    Each post belongs to one stream (a station's liaison officers to the station's, a
    street's supervisors and a department's staff to the district's, an account to the
    person's), so events of different streams commute; within a stream the consumer's
    version gate applies each event once, in order, and a replay from the start folds to
    the same rows.
    """

    def __init__(self, schema: str) -> None:
        self.table: Final = f"{schema}.staff_roster"

    async def fold(self, conn: Conn, event: Event) -> None:
        """Apply one of :data:`ROSTER_EVENTS` (any other event changes nothing)."""
        d = event.district_id
        match event:
            case RepresentativeRegistered():
                rep = Post(event.representative_id, Role.REPRESENTATIVE.value, _REPRESENTATIVE_POST)
                await self._put(conn, d, [rep])
            case RepresentativeRetired():
                await self._leave(
                    conn, d, person_id=event.representative_id, post=_REPRESENTATIVE_POST
                )
            case StationRegistered():
                # Registering a station again replaces its officers and reopens it.
                await self._replace(
                    conn, d, Role.LIAISON, f"station:{event.station_code}", event.liaison_officers
                )
            case StationRetired():
                await self._leave(
                    conn, d, role=Role.LIAISON.value, post=f"station:{event.station_code}"
                )
            case StreetRegistered():
                await self._replace(
                    conn,
                    d,
                    Role.STREET_SUPERVISOR,
                    f"street:{event.street_code}",
                    event.supervisors,
                )
            case DepartmentRegistered():
                post = f"department:{event.department_code}"
                await self._replace(conn, d, Role.DEPARTMENT, post, event.duty_staff)
            case DepartmentRetired():
                await self._leave(conn, d, post=f"department:{event.department_code}")
            case StaffMemberRegistered():
                await self._drop(conn, d, person_id=event.staff_id, post=_MEMBER_POST)
                await self._put(conn, d, _member_posts(event))
            case StaffMemberRetired():
                await self._leave(conn, d, person_id=event.staff_id, post=_MEMBER_POST)
            case SpokespersonRegistered():
                # One station's roster at a time: registering again moves them.
                person = event.spokesperson_id
                await self._drop(conn, d, person_id=person, role=Role.SPOKESPERSON.value)
                await self._put(
                    conn,
                    d,
                    [Post(person, Role.SPOKESPERSON.value, f"station:{event.station_code}")],
                )
            case SpokespersonRetired():
                await self._leave(
                    conn, d, person_id=event.spokesperson_id, role=Role.SPOKESPERSON.value,
                    post=f"station:{event.station_code}",
                )  # fmt: skip
            case StaffInvited() | StaffPasswordSet():
                # One account per person; inviting again may change its role, and opens a
                # retired account again.
                await self._drop(conn, d, person_id=event.person_id, post=ACCOUNT_POST)
                await self._put(conn, d, [Post(event.person_id, event.role, ACCOUNT_POST)])
            case StaffRetired():
                await self._leave(conn, d, person_id=event.person_id, post=ACCOUNT_POST)

    async def standing(
        self, conn: Conn, district_id: str, person_id: str, role: Role
    ) -> tuple[Listing, AccountStanding | None]:
        """What the roster says about ``person_id`` in ``role``, and their account."""
        rows = await conn.fetch(
            f"SELECT role, post, active FROM {self.table} "
            "WHERE district_id = $1 AND person_id = $2",
            district_id,
            person_id,
        )
        account = next(
            (
                AccountStanding(Role(r["role"]), not r["active"])
                for r in rows
                if r["post"] == ACCOUNT_POST
            ),
            None,
        )
        if role not in DIRECTORY_ROLES:
            return Listing.UNLISTED_ROLE, account
        held = any(
            r["active"] and r["role"] == role.value and r["post"] != ACCOUNT_POST for r in rows
        )
        return (Listing.HOLDS if held else Listing.NOT_LISTED), account

    async def ensure_active(self, conn: Conn, principal: Principal) -> None:
        """Refuse (:class:`NotActiveStaff`) a principal who is not known, active staff,
        in ``conn``'s transaction (scoped to the principal's district)."""
        found, account = await self.standing(
            conn, principal.district_id, principal.subject, principal.role
        )
        ensure_admitted(principal.role, found, account)

    async def check(self, pool: asyncpg.Pool, principal: Principal) -> Principal:
        """:meth:`ensure_active` in a transaction of its own; the principal when admitted."""
        async with district_transaction(pool, principal.district_id) as conn:
            await self.ensure_active(conn, principal)
        return principal

    async def refill(self, pool: asyncpg.Pool, store: EventStore) -> int:
        """Fold every roster event of the store into the roster if it is empty (0, and
        nothing read, when it holds rows); the number of events folded.

        A deployment whose consumer had gone past the directory's events before the
        roster existed would otherwise know nobody: at the consumer's first start after
        the migration, the roster is filled from the store (the source of truth), before
        a record is consumed. Redelivered events fold again to the same rows.
        """
        async with pool.acquire() as conn, conn.transaction():
            # Every district by nature: the roster of the deployment is filled at once.
            await scope(conn, ALL_DISTRICTS)
            # One replica fills it; the others find it filled.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.table)
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {self.table})"):
                return 0
            wanted = {m.event_type for m in ROSTER_EVENTS}
            categories = sorted({m.stream_category for m in ROSTER_EVENTS})
            folded, after = 0, START
            while found := await store.read_all(
                after, limit=5_000, categories=categories, conn=conn
            ):
                for recorded in found:
                    if recorded.event_type in wanted:
                        await self.fold(conn, recorded.envelope().event(REGISTRY))
                        folded += 1
                after = found[-1].checkpoint
        return folded

    # ------------------------------------------------------------------ writing

    async def _put(self, conn: Conn, district_id: str, posts: Sequence[Post]) -> None:
        if not posts:
            return
        await conn.execute(
            f"""
            INSERT INTO {self.table} (district_id, person_id, role, post, active)
            SELECT $1, p, r, w, true FROM unnest($2::text[], $3::text[], $4::text[]) AS t(p, r, w)
            ON CONFLICT (district_id, person_id, role, post) DO UPDATE SET active = true
            """,
            district_id,
            [p.person_id for p in posts],
            [p.role for p in posts],
            [p.post for p in posts],
        )

    async def _replace(
        self, conn: Conn, district_id: str, role: Role, post: str, people: Iterable[str]
    ) -> None:
        """The people holding ``role`` at ``post`` are ``people`` now (and only they)."""
        await self._drop(conn, district_id, role=role.value, post=post)
        await self._put(
            conn, district_id, [Post(p, role.value, post) for p in dict.fromkeys(people)]
        )

    async def _drop(self, conn: Conn, district_id: str, **match: str) -> None:
        where, args = _where(match)
        await conn.execute(
            f"DELETE FROM {self.table} WHERE district_id = $1{where}", district_id, *args
        )

    async def _leave(self, conn: Conn, district_id: str, **match: str) -> None:
        """The matching posts are held no more (the rows stay, inactive: history)."""
        where, args = _where(match)
        await conn.execute(
            f"UPDATE {self.table} SET active = false WHERE district_id = $1{where}",
            district_id,
            *args,
        )


def _where(match: dict[str, str]) -> tuple[str, list[str]]:
    columns = sorted(match)
    assert set(columns) <= {"person_id", "role", "post"}
    return "".join(f" AND {c} = ${i}" for i, c in enumerate(columns, start=2)), [
        match[c] for c in columns
    ]


def _member_posts(event: StaffMemberRegistered) -> list[Post]:
    """A registered member holds their role (commissioner, district office), and acts for
    their department when they name one (the ``department`` role needs a department)."""
    posts = []
    if event.role.value != Role.DEPARTMENT.value:
        posts.append(Post(event.staff_id, event.role.value, _MEMBER_POST))
    if event.department_code:
        posts.append(Post(event.staff_id, Role.DEPARTMENT.value, _MEMBER_POST))
    return posts


# --------------------------------------------------------------------------- the consumer


class RosterConsumer(Consumer):
    """A service's consumer that also keeps its :class:`StaffRoster`: every event of
    :data:`ROSTER_EVENTS` is folded into the roster in the handler's transaction, after
    the service's own handler of that type (or alone when the service has none), behind
    the same version gate. The service registers its handlers as on any consumer."""

    def __init__(self, name: str, *, roster: StaffRoster, **options: Any) -> None:
        super().__init__(name, **options)
        self.roster: Final = roster

        @self.also(*ROSTER_EVENTS)
        async def fold(event: Event, ctx: HandlerContext) -> None:
            await roster.fold(ctx.conn, event)

    async def prepare(self) -> None:
        """Fill an empty roster from the store (:meth:`StaffRoster.refill`) before the
        first record is consumed, then create the topics."""
        await self.roster.refill(self._pool, self._store)
        await super().prepare()


# --------------------------------------------------------------------------- the HTTP edge


def known_bearer(
    settings: Settings, roster: StaffRoster, pool_of: Callable[[Request], asyncpg.Pool]
) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the caller's :class:`Principal` from ``Authorization: Bearer``
    (401 without a valid token), refused (401, :class:`NotActiveStaff`) when the person
    is not known, active staff of that role in that district by the service's roster."""

    async def principal(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        caller = principal_from_authorization(settings, authorization)
        assert caller is not None  # required: a missing header raised
        return await roster.check(pool_of(request), caller)

    return principal
