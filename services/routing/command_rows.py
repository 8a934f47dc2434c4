"""The shape of a row of the staff command table, its request bodies' base, and the
role groups the rows name (:mod:`services.routing.staff_commands` holds the table)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints

from eventkit.identity import Role
from services.routing.casework import Planned, Step

B = TypeVar("B", bound=BaseModel)

READERS = frozenset(
    {
        Role.LIAISON,
        Role.REPRESENTATIVE,
        Role.STREET_SUPERVISOR,
        Role.DISTRICT_ADMIN,
        Role.AUDITOR,
        Role.HOTLINE,
        Role.COMMUNITY_COMMISSIONER,
        Role.DISTRICT_OFFICE,
    }
)
"""May read the district's cases and directory."""
CASEWORKERS = frozenset(
    {
        Role.LIAISON,
        Role.REPRESENTATIVE,
        Role.STREET_SUPERVISOR,
        Role.DISTRICT_ADMIN,
        Role.DISTRICT_OFFICE,
    }
)
"""May work a case (a representative only the cases assigned to them)."""
COORDINATORS = frozenset(
    {Role.LIAISON, Role.STREET_SUPERVISOR, Role.DISTRICT_ADMIN, Role.DISTRICT_OFFICE}
)
"""May route, verify and reopen cases."""
ADMINS = frozenset({Role.DISTRICT_ADMIN})
"""May change the directory."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


@dataclass(frozen=True)
class StaffCommand(Generic[B]):
    """One row of the table (see :mod:`services.routing.staff_commands`)."""

    name: str
    """The command's name: the last segment of its URL and its key in ``ALLOWED``."""
    summary: str
    """What it is called, in Chinese and English (the OpenAPI summary)."""
    body: type[B]
    roles: frozenset[Role]
    build: Callable[[Step, B], Awaitable[Planned]]


# --------------------------------------------------------------------------- bodies


class CommandBody(BaseModel):
    """A staff command's request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class NoBody(CommandBody):
    """For a command that needs nothing but the case (no body is read)."""


def row(
    name: str,
    summary: str,
    body: type[B],
    roles: frozenset[Role],
    build: Callable[[Step, B], Awaitable[Planned]],
) -> StaffCommand[Any]:
    """A row of the table (typed by its body)."""
    return StaffCommand(name, summary, body, roles, build)
