"""``minqing staff …``: staff accounts of the workbench, from the command line.

- ``minqing staff invite --district D --person P [--role R]``: a one-time link for the
  person to set their password (their role comes from the directory; name it for a role
  the directory does not list, such as ``district_admin`` or ``auditor``);
- ``minqing staff retire --district D --person P --reason TEXT``: close the account (its
  sessions end, its tokens stop working).
"""

from __future__ import annotations

import click

from contracts.base import Actor, ActorRole
from eventkit.identity import Role
from eventkit.local import NoDatabase
from eventkit.loop import run as run_loop
from eventkit.refusals import Refusal
from services.routing.bootstrap import bootstrap
from services.routing.settings import RoutingSettings
from services.routing.staff_accounts import Invitation

CLI_ACTOR = Actor(id="minqing-cli", role=ActorRole.DISTRICT_ADMIN)


def welcome_link(settings: RoutingSettings, invitation: Invitation) -> str:
    """The address of an invitation's first sign-in."""
    return f"{settings.routing_workbench_url}/workbench/welcome?code={invitation.code}"


async def invite_people(
    settings: RoutingSettings, district_id: str, people: list[tuple[str, Role | None]], actor: Actor
) -> list[tuple[Invitation, str]]:
    """An invitation for each (person, role), with its link."""
    async with bootstrap(settings, background=False) as routing:
        made = []
        for person_id, role in people:
            invitation = await routing.accounts.invite(district_id, person_id, role, actor)
            made.append((invitation, welcome_link(settings, invitation)))
        return made


@click.group()
def staff() -> None:
    """工作人员账号 / Staff accounts of the workbench."""


@staff.command("invite")
@click.option("--district", required=True, help="district code, e.g. demo")
@click.option("--person", required=True, help="the person's id in the directory, e.g. lo_dh_01")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=None,
    help="only for roles the directory does not list (district_admin, auditor, hotline)",
)
def staff_invite(district: str, person: str, role: str | None) -> None:
    """发送邀请 / Print a one-time link for the person to set their password."""
    settings = RoutingSettings()
    try:
        made = run_loop(
            invite_people(settings, district, [(person, Role(role) if role else None)], CLI_ACTOR)
        )
    except (NoDatabase, Refusal) as exc:
        raise click.ClickException(str(exc)) from exc
    invitation, link = made[0]
    click.echo(
        f"{invitation.account.person_id}（{invitation.account.role.value}）"
        f"首次登录链接，{invitation.expires_at:%Y-%m-%d %H:%M} 前有效，只能使用一次 / "
        "one-time link, valid until then:"
    )
    click.echo(link)


@staff.command("retire")
@click.option("--district", required=True)
@click.option("--person", required=True)
@click.option("--reason", required=True, help="why the account is closed")
def staff_retire(district: str, person: str, reason: str) -> None:
    """停用账号 / Close an account: its sessions end and its tokens stop working."""

    async def work() -> bool:
        async with bootstrap(RoutingSettings(), background=False) as routing:
            return await routing.accounts.retire(district, person, reason, CLI_ACTOR)

    try:
        closed = run_loop(work())
    except (NoDatabase, Refusal) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("已停用 / closed" if closed else "早已停用 / already closed")
