"""Staff accounts: invitations, passwords, sign-in with lock-out, sessions, retirement,
and the check that a token's or a session's person is still active staff.

An account belongs to a person the district knows ((district, person id, role): the
directory lists representatives, liaison officers and street supervisors; other roles
are known by their account alone). Passwords are hashed with argon2id
(``argon2-cffi``); invitation codes and session tokens are random and kept only as their
SHA-256. What matters for the audit trail is appended to the person's stream
``staff-<district>.<person>`` in the transaction that changes the table: invited,
password set, locked, retired. No secret goes into an event or a log.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contracts.base import Actor, ActorRole
from contracts.envelope import Envelope
from contracts.staff import StaffEvent, StaffInvited, StaffPasswordSet, StaffRetired
from eventkit.clock import Clock
from eventkit.db import ALL_DISTRICTS, Conn, district_transaction, scope
from eventkit.identity import Principal, Role
from eventkit.staff_rule import AccountStanding, Listing, NotActiveStaff, ensure_admitted
from eventkit.store import EventStore
from services.routing.district_context import DistrictContexts
from services.routing.settings import RoutingSettings
from services.routing.staff_rules import (
    Account,
    AccountLocked,
    InviteNotValid,
    LockoutPolicy,
    SignInFailed,
    UnknownPerson,
    WeakPassword,
    after_failure,
    password_problems,
)
from services.routing.staff_scope import listing, role_in_directory

_ACCOUNT_COLUMNS = """district_id, person_id, role, status, password_hash, failed_attempts,
    locked_until, version"""


def digest(secret: str) -> bytes:
    """What the tables keep of a code or a token."""
    return hashlib.sha256(secret.encode()).digest()


def _account(row: Any) -> Account:
    return Account(
        district_id=row["district_id"],
        person_id=row["person_id"],
        role=Role(row["role"]),
        status=row["status"],
        password_hash=row["password_hash"],
        failed_attempts=row["failed_attempts"],
        locked_until=row["locked_until"],
        version=row["version"],
    )


@dataclass(frozen=True)
class Invitation:
    """A one-time code for a person (shown once, to the one who invited)."""

    account: Account
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class StaffSession:
    """A signed-in person of the workbench."""

    principal: Principal
    token: str
    """The cookie's value (only its hash is stored)."""
    csrf_secret: str
    """What every form of this session carries."""


class StaffAccounts:
    """See the module's note."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        districts: DistrictContexts,
        clock: Clock,
        settings: RoutingSettings,
    ) -> None:
        self._pool = pool
        self._store = store
        self._districts = districts
        self._clock = clock
        self._hasher = PasswordHasher(
            time_cost=settings.routing_argon2_time_cost,
            memory_cost=settings.routing_argon2_memory_kib,
            parallelism=1,
        )
        # A wrong account id costs as much time as a wrong password.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))
        self._lockout = LockoutPolicy(
            settings.routing_lockout_failures, timedelta(minutes=settings.routing_lockout_minutes)
        )
        self._invite_ttl = timedelta(hours=settings.routing_invite_hours)
        self._session_ttl = timedelta(hours=settings.routing_session_hours)
        self._session_idle = timedelta(minutes=settings.routing_session_idle_minutes)

    # ----------------------------------------------------------------- the person

    async def ensure_active(self, conn: Conn, principal: Principal) -> None:
        """Refuse (:class:`NotActiveStaff`) a principal who is not a known, active person
        of their role in their district: listed by the directory in that role, or, for
        a role the directory does not list, holding an account in it; never one whose
        account was retired."""
        account = await self._load(conn, principal.district_id, principal.subject)
        ctx = await self._districts.get(conn, principal.district_id)
        found = listing(ctx.directory if ctx else None, principal.subject, principal.role)
        standing = AccountStanding(account.role, account.retired) if account else None
        ensure_admitted(principal.role, found, standing)

    # ----------------------------------------------------------------- invitations

    async def invite(
        self, district_id: str, person_id: str, role: Role | None, actor: Actor
    ) -> Invitation:
        """A one-time code for the person to set their password (again). The role comes
        from the directory when not given; a role the directory lists must list them."""
        now = self._clock()
        async with district_transaction(self._pool, district_id) as conn:
            ctx = await self._districts.get(conn, district_id)
            directory = ctx.directory if ctx else None
            if role is None:
                role = role_in_directory(directory, person_id) if directory else None
                if role is None:
                    raise UnknownPerson(district_id, person_id)
            elif listing(directory, person_id, role) is Listing.NOT_LISTED and directory:
                raise UnknownPerson(district_id, person_id)
            # A district not in the directory yet (the local stack invites its demo
            # people before routing has imported the demo file): the person is checked
            # when the code is used, and at every request after.
            code = secrets.token_urlsafe(24)
            expires = now + self._invite_ttl
            event = StaffInvited(
                district_id=district_id,
                occurred_at=now,
                actor=actor,
                person_id=person_id,
                role=role.value,
                expires_at=expires,
            )
            version = await self._append(conn, event)
            row = await conn.fetchrow(
                f"""
                INSERT INTO routing.staff_accounts
                    (district_id, person_id, role, status, invited_at, version)
                VALUES ($1, $2, $3, 'invited', $4, $5)
                ON CONFLICT (district_id, person_id) DO UPDATE SET role = excluded.role,
                    status = CASE WHEN staff_accounts.status = 'retired'
                                  OR staff_accounts.role <> excluded.role
                                  THEN 'invited' ELSE staff_accounts.status END,
                    password_hash = CASE WHEN staff_accounts.role = excluded.role
                                  AND staff_accounts.status <> 'retired'
                                  THEN staff_accounts.password_hash END,
                    retired_at = NULL, invited_at = excluded.invited_at,
                    version = excluded.version
                RETURNING {_ACCOUNT_COLUMNS}
                """,
                district_id,
                person_id,
                role.value,
                now,
                version,
            )
            # Only the newest code works.
            await conn.execute(
                "UPDATE routing.staff_invites SET used_at = $3 "
                "WHERE district_id = $1 AND person_id = $2 AND used_at IS NULL",
                district_id,
                person_id,
                now,
            )
            await conn.execute(
                "INSERT INTO routing.staff_invites (code_hash, district_id, person_id, expires_at)"
                " VALUES ($1, $2, $3, $4)",
                digest(code),
                district_id,
                person_id,
                expires,
            )
        return Invitation(_account(row), code, expires)

    async def invited(self, code: str) -> Account:
        """The account an unused, unexpired code sets up (:class:`InviteNotValid`)."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._invited(conn, code, lock=False)

    async def _invited(self, conn: Conn, code: str, *, lock: bool) -> Account:
        """The code's account, the transaction scoped to its district from then on."""
        # The code is all the request has: the invitation is looked up by its hash in
        # every district (only the holder of 192 random bits can name the row), and the
        # rest of the transaction works in the district it belongs to.
        await scope(conn, ALL_DISTRICTS)
        row = await conn.fetchrow(
            f"""
            SELECT {", ".join("a." + c.strip() for c in _ACCOUNT_COLUMNS.split(","))},
                   i.expires_at AS invite_expires, i.used_at AS invite_used
              FROM routing.staff_invites i
              JOIN routing.staff_accounts a USING (district_id, person_id)
             WHERE i.code_hash = $1
            """
            + (" FOR UPDATE OF i, a" if lock else ""),
            digest(code),
        )
        if row is None or row["invite_used"] is not None or row["invite_expires"] <= self._clock():
            raise InviteNotValid()
        await scope(conn, row["district_id"])
        return _account(row)

    async def accept_invitation(self, code: str, password: str, confirm: str) -> StaffSession:
        """Set the password of the code's account (the code is spent) and sign in."""
        async with self._pool.acquire() as conn, conn.transaction():
            account = await self._invited(conn, code, lock=False)
        problems = password_problems(password, confirm, account.person_id)
        if problems:
            raise WeakPassword(problems)
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            account = await self._invited(conn, code, lock=True)
            principal = Principal(account.person_id, account.role, account.district_id)
            await self.ensure_active(conn, principal)
            event = StaffPasswordSet(
                district_id=account.district_id,
                occurred_at=now,
                actor=_actor(principal),
                person_id=account.person_id,
                role=account.role.value,
            )
            version = await self._append(conn, event)
            await conn.execute(
                "UPDATE routing.staff_invites SET used_at = $2 WHERE code_hash = $1",
                digest(code),
                now,
            )
            await conn.execute(
                """
                UPDATE routing.staff_accounts SET password_hash = $3, status = 'active',
                       password_set_at = $4, failed_attempts = 0, locked_until = NULL,
                       version = $5
                 WHERE district_id = $1 AND person_id = $2
                """,
                account.district_id,
                account.person_id,
                hashed,
                now,
                version,
            )
            # A new password ends the sessions of the old one.
            await self._end_sessions(conn, account.district_id, account.person_id, now)
            return await self._open_session(conn, principal, now)

    # ----------------------------------------------------------------- sign-in

    async def sign_in(self, district_id: str, person_id: str, password: str) -> StaffSession:
        """A session for the right password; :class:`SignInFailed` (or
        :class:`AccountLocked`) otherwise. Failures count towards a lock-out."""
        async with district_transaction(self._pool, district_id) as conn:
            account = await self._load(conn, district_id, person_id)
        now = self._clock()
        if account is not None and account.locked_at(now):
            assert account.locked_until is not None
            raise AccountLocked(account.locked_until)
        stored = account.password_hash if account and not account.retired else None
        good = await asyncio.to_thread(self._verify, stored or self._decoy, password)
        if account is None or stored is None:
            raise SignInFailed()
        if not good:
            async with district_transaction(self._pool, district_id) as conn:
                current = await self._load(conn, district_id, person_id, lock=True)
                assert current is not None
                refusal = await self._failed(conn, current, now)
            raise refusal
        async with district_transaction(self._pool, district_id) as conn:
            current = await self._load(conn, district_id, person_id, lock=True)
            assert current is not None
            principal = Principal(person_id, current.role, district_id)
            await self.ensure_active(conn, principal)
            await conn.execute(
                "UPDATE routing.staff_accounts SET failed_attempts = 0, last_sign_in_at = $3 "
                "WHERE district_id = $1 AND person_id = $2",
                district_id,
                person_id,
                now,
            )
            if self._hasher.check_needs_rehash(stored):
                rehashed = await asyncio.to_thread(self._hasher.hash, password)
                await conn.execute(
                    "UPDATE routing.staff_accounts SET password_hash = $3 "
                    "WHERE district_id = $1 AND person_id = $2",
                    district_id,
                    person_id,
                    rehashed,
                )
            return await self._open_session(conn, principal, now)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _failed(self, conn: Conn, account: Account, now: datetime) -> Exception:
        """Count a wrong password, lock the account when there were too many, and give
        the refusal to raise once this is committed."""
        failures, locked = after_failure(account, now, self._lockout, _actor_of(account))
        version = await self._append(conn, locked) if locked else account.version
        await conn.execute(
            "UPDATE routing.staff_accounts SET failed_attempts = $3, locked_until = $4, "
            "version = $5 WHERE district_id = $1 AND person_id = $2",
            account.district_id,
            account.person_id,
            failures,
            locked.until if locked else account.locked_until,
            version,
        )
        return AccountLocked(locked.until) if locked else SignInFailed()

    # ----------------------------------------------------------------- sessions

    async def _open_session(self, conn: Conn, principal: Principal, now: datetime) -> StaffSession:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        await conn.execute(
            """
            INSERT INTO routing.staff_sessions (token_hash, district_id, person_id, role,
                csrf_secret, created_at, last_seen_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
            """,
            digest(token),
            principal.district_id,
            principal.subject,
            principal.role.value,
            csrf,
            now,
            now + self._session_ttl,
        )
        return StaffSession(principal, token, csrf)

    async def session(self, token: str) -> StaffSession | None:
        """The live session of a cookie's token, its person still active staff (None:
        unknown, ended, expired, idle too long, or the person no longer active)."""
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            # The cookie's token is all the request has: the session is found by its hash
            # in every district (only the holder of 256 random bits can name the row),
            # and the rest of the transaction works in the session's district.
            await scope(conn, ALL_DISTRICTS)
            row = await conn.fetchrow(
                """
                UPDATE routing.staff_sessions SET last_seen_at = $2
                 WHERE token_hash = $1 AND ended_at IS NULL AND expires_at > $2
                   AND last_seen_at > $3
                RETURNING district_id, person_id, role, csrf_secret
                """,
                digest(token),
                now,
                now - self._session_idle,
            )
            if row is None:
                return None
            principal = Principal(row["person_id"], Role(row["role"]), row["district_id"])
            await scope(conn, principal.district_id)
            try:
                await self.ensure_active(conn, principal)
            except NotActiveStaff:
                await self._end_sessions(conn, principal.district_id, principal.subject, now)
                return None
        return StaffSession(principal, token, row["csrf_secret"])

    async def sign_out(self, token: str) -> None:
        """End the session of ``token`` (nothing when there is none)."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Found by the hash of its token, in whichever district it is (see session).
            await scope(conn, ALL_DISTRICTS)
            await conn.execute(
                "UPDATE routing.staff_sessions SET ended_at = $2 "
                "WHERE token_hash = $1 AND ended_at IS NULL",
                digest(token),
                self._clock(),
            )

    async def _end_sessions(
        self, conn: Conn, district_id: str, person_id: str, now: datetime
    ) -> None:
        await conn.execute(
            "UPDATE routing.staff_sessions SET ended_at = $3 "
            "WHERE district_id = $1 AND person_id = $2 AND ended_at IS NULL",
            district_id,
            person_id,
            now,
        )

    # ----------------------------------------------------------------- retirement

    async def retire(self, district_id: str, person_id: str, reason: str, actor: Actor) -> bool:
        """Close the account: its sessions end, its tokens stop working. False when it was
        closed already."""
        now = self._clock()
        async with district_transaction(self._pool, district_id) as conn:
            account = await self._load(conn, district_id, person_id, lock=True)
            if account is None:
                raise UnknownPerson(district_id, person_id)
            if account.retired:
                return False
            event = StaffRetired(
                district_id=district_id,
                occurred_at=now,
                actor=actor,
                person_id=person_id,
                reason=reason,
            )
            version = await self._append(conn, event)
            await conn.execute(
                "UPDATE routing.staff_accounts SET status = 'retired', retired_at = $3, "
                "password_hash = NULL, version = $4 WHERE district_id = $1 AND person_id = $2",
                district_id,
                person_id,
                now,
                version,
            )
            await self._end_sessions(conn, district_id, person_id, now)
            return True

    async def accounts(self, district_id: str) -> list[dict[str, Any]]:
        """The district's accounts (no secrets), for its administrators."""
        async with district_transaction(self._pool, district_id) as conn:
            rows = await conn.fetch(
                """
            SELECT person_id, role, status, locked_until, invited_at, password_set_at,
                   retired_at, last_sign_in_at
              FROM routing.staff_accounts WHERE district_id = $1 ORDER BY role, person_id
            """,
                district_id,
            )
        return [dict(r) for r in rows]

    # ----------------------------------------------------------------- storage

    async def _load(
        self, conn: Conn, district_id: str, person_id: str, *, lock: bool = False
    ) -> Account | None:
        row = await conn.fetchrow(
            f"SELECT {_ACCOUNT_COLUMNS} FROM routing.staff_accounts "
            "WHERE district_id = $1 AND person_id = $2" + (" FOR UPDATE" if lock else ""),
            district_id,
            person_id,
        )
        return _account(row) if row else None

    async def _append(self, conn: Conn, event: StaffEvent) -> int:
        """Append to the person's stream (the account's row lock orders its writers)."""
        result = await self._store.append(event.stream_id, [Envelope.wrap(event)], conn=conn)
        return int(result.stream_version)


def _actor(principal: Principal) -> Actor:
    return Actor(id=principal.subject, role=ActorRole(principal.role.value))


def _actor_of(account: Account) -> Actor:
    return Actor(id=account.person_id, role=ActorRole(account.role.value))
