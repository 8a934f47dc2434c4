"""Known, active staff: the one rule of who may use a staff token.

A valid signature is not enough. A token's subject must be, at the moment of the
request, a person the district knows in the token's role, and their account, if they
have one, must not be retired (docs/security.md):

- for a role the directory lists people in (:data:`DIRECTORY_ROLES`), the directory
  must list them in it now: a representative not retired, a liaison officer of an open
  station, a supervisor of a street, a spokesperson on a station's roster, a department's
  duty staff or registered staff, a registered commissioner or district office member;
- for any other role (a district administrator, an auditor, the 12345 hotline's
  account), holding an account in that role is what makes them known.

Who is listed is asked of the directory where it is kept: routing asks its directory
snapshot (``services.routing.staff_scope.listing``), the other services the roster they
fold from the directory's events (:mod:`eventkit.staff_roster`). Both give the answer to
:func:`admitted`, so the decision is made here only.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from eventkit.identity import Role
from eventkit.refusals import Unauthenticated

DIRECTORY_ROLES: Final = frozenset(
    {
        Role.REPRESENTATIVE,
        Role.LIAISON,
        Role.STREET_SUPERVISOR,
        Role.SPOKESPERSON,
        Role.DEPARTMENT,
        Role.COMMUNITY_COMMISSIONER,
        Role.DISTRICT_OFFICE,
    }
)
"""The roles the directory lists people for; a person of another role (a district
administrator, an auditor, the hotline's machine account) is known by their account."""


class Listing(Enum):
    """What the directory says about a person in a role."""

    HOLDS = "holds"
    """Listed, active, in that role."""
    NOT_LISTED = "not_listed"
    """The directory lists this role and this person is not (or no longer) in it."""
    UNLISTED_ROLE = "unlisted_role"
    """The directory lists nobody in this role: the account decides."""


@dataclass(frozen=True)
class AccountStanding:
    """What the rule needs of a person's account: its role, and whether it was closed."""

    role: Role
    retired: bool


def admitted(role: Role, found: Listing, account: AccountStanding | None) -> bool:
    """Whether a person the directory answers ``found`` about, holding ``account`` (or
    none), is known, active staff in ``role``: never with a retired account; listed in
    the role when the directory lists it; else holding an account in the role."""
    if account is not None and account.retired:
        return False
    if found is Listing.HOLDS:
        return True
    return found is Listing.UNLISTED_ROLE and account is not None and account.role is role


class NotActiveStaff(Unauthenticated):
    """The token's or session's person is not (or no longer) staff of that role here."""

    code = "not-active-staff"

    def __init__(self) -> None:
        super().__init__(
            "此账号不是本区在职工作人员",
            "This account is not active staff of the district",
            "人员已离任、调整岗位或账号已停用，请联系区管理员",
            "The person left, changed role, or the account was closed; ask the district "
            "administrator",
        )


def ensure_admitted(role: Role, found: Listing, account: AccountStanding | None) -> None:
    """:func:`admitted`, refusing with :class:`NotActiveStaff`."""
    if not admitted(role, found, account):
        raise NotActiveStaff()
