"""The rules of staff accounts: what an account is, when it locks, what a password must
be, and the refusals a person reads at the sign-in form.

Pure (no I/O, no clock): :mod:`services.routing.staff_accounts` loads the account, asks
these functions, and stores what they decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.base import Actor
from contracts.staff import StaffLocked
from eventkit.identity import Role
from eventkit.refusals import Forbidden, InvalidInput, NotFound, Unauthenticated

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128


@dataclass(frozen=True)
class LockoutPolicy:
    """How many wrong passwords in a row lock an account, and for how long."""

    max_failures: int = 5
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Account:
    """A staff account as routing keeps it (its secrets stay in the table)."""

    district_id: str
    person_id: str
    role: Role
    status: str
    """``invited`` (no password yet), ``active`` or ``retired``."""
    password_hash: str | None
    failed_attempts: int
    locked_until: datetime | None
    version: int

    @property
    def retired(self) -> bool:
        """Whether the account was closed."""
        return self.status == "retired"

    def locked_at(self, now: datetime) -> bool:
        """Whether sign-in is refused at ``now`` because of a lock-out."""
        return self.locked_until is not None and now < self.locked_until


def after_failure(
    account: Account, now: datetime, policy: LockoutPolicy, actor: Actor
) -> tuple[int, StaffLocked | None]:
    """The failure count after one more wrong password, and the lock it causes (the
    count starts again once the account locks)."""
    failures = account.failed_attempts + 1
    if failures < policy.max_failures:
        return failures, None
    locked = StaffLocked(
        district_id=account.district_id,
        occurred_at=now,
        actor=actor,
        person_id=account.person_id,
        failures=failures,
        until=now + policy.lock_for,
    )
    return 0, locked


def password_problems(password: str, confirm: str, person_id: str) -> list[tuple[str, str]]:
    """What is wrong with a new password, in Chinese and English (nothing: acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(
            (
                f"密码至少 {MIN_PASSWORD_LENGTH} 个字符",
                f"The password needs at least {MIN_PASSWORD_LENGTH} characters",
            )
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(
            (
                f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符",
                f"The password may not exceed {MAX_PASSWORD_LENGTH} characters",
            )
        )
    if person_id.lower() in password.lower():
        problems.append(("密码不能包含账号", "The password may not contain the account id"))
    if len(set(password)) < 4:
        problems.append(("密码过于简单", "The password is too simple"))
    if password != confirm:
        problems.append(("两次输入的密码不一致", "The two passwords differ"))
    return problems


# --------------------------------------------------------------------------- refusals


class SignInFailed(Unauthenticated):
    """Wrong account or password (never says which)."""

    code = "sign-in-failed"

    def __init__(self) -> None:
        super().__init__(
            "账号或密码不正确", "Wrong account or password", "请重新输入", "Please try again"
        )


class AccountLocked(Unauthenticated):
    """Too many wrong passwords: wait until the lock ends."""

    code = "account-locked"

    def __init__(self, until: datetime) -> None:
        local = until.strftime("%H:%M")
        super().__init__(
            "密码错误次数过多，账号已暂时锁定",
            "Too many wrong passwords: the account is locked for a while",
            f"请于 {local} 之后再试，或请管理员重新发送邀请",
            f"Try again after {local}, or ask an administrator for a new invitation",
        )
        self.until = until


class InviteNotValid(Forbidden):
    """The invitation code is unknown, used or expired."""

    code = "invite-not-valid"

    def __init__(self) -> None:
        super().__init__(
            "邀请码无效、已使用或已过期",
            "The invitation code is unknown, used or expired",
            "请向区管理员索取新的邀请",
            "Ask the district administrator for a new invitation",
        )


class UnknownPerson(NotFound):
    """The directory lists nobody of that id (in that role) in the district."""

    code = "unknown-person"

    def __init__(self, district_id: str, person_id: str) -> None:
        super().__init__(
            f"{district_id} 区的名录中没有在职人员 {person_id}",
            f"no active person {person_id} in the directory of {district_id}",
            "请先在名录中登记此人（代表、联络员、街道工委），或用 --role 指定区管理员、审计等角色",
            "Register the person in the directory first (representative, liaison officer, "
            "street supervisor), or name a role such as district_admin or auditor with --role",
        )


class WeakPassword(InvalidInput):
    """The new password breaks a rule of :func:`password_problems`."""

    code = "weak-password"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(
            "密码不符合要求",
            "The password does not meet the rules",
            "；".join(zh for zh, _ in problems),
            "; ".join(en for _, en in problems),
        )
