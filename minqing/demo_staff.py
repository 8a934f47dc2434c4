"""The demo district's staff on the workbench: ``minqing up`` prints a one-time first
sign-in for a liaison officer and a representative of the demo district."""

from __future__ import annotations

from eventkit.loop import run as run_loop
from minqing.system import ServiceSpec

DEMO_STAFF = (
    ("lo_dh_01", "示范区联络员 / the demo liaison officer"),
    ("r001", "示范区代表 / the demo representative"),
)
"""Who ``minqing up`` invites to the workbench: the liaison officer of 东湖街道代表之家
and the station's head, a representative."""


def workbench_url(routing: ServiceSpec) -> str:
    return f"http://127.0.0.1:{routing.effective_port()}"


def workbench_sign_ins(database_url: str, routing: ServiceSpec) -> list[str]:
    """A one-time first sign-in for each of :data:`DEMO_STAFF` (a fresh code at every
    start; an earlier password keeps working until the code is used)."""
    from contracts.base import Actor, ActorRole
    from eventkit.identity import Role
    from services.routing.settings import RoutingSettings
    from services.routing.staff_cli import invite_people

    settings = RoutingSettings(
        database_url=database_url, routing_workbench_url=workbench_url(routing)
    )
    roles = {"lo_dh_01": Role.LIAISON, "r001": Role.REPRESENTATIVE}
    actor = Actor(id="minqing-up", role=ActorRole.SYSTEM)
    try:
        made = run_loop(
            invite_people(settings, "demo", [(p, roles[p]) for p, _ in DEMO_STAFF], actor)
        )
    except Exception as exc:  # noqa: BLE001 - the stack runs without the links
        return [f"(未能生成工作台登录链接 / no workbench sign-in links: {exc!r})"]
    return [
        f"{label} {invitation.account.person_id}: {link}"
        for (_, label), (invitation, link) in zip(DEMO_STAFF, made, strict=True)
    ]
