"""Names for people of the codes reports show: Simplified Chinese first, English second.

Pure.
"""

from __future__ import annotations

from typing import Final

Pair = tuple[str, str]

STEP_LABELS: Final[dict[str, Pair]] = {
    "assigned": ("分派", "assigned"),
    "accepted": ("报到", "accepted"),
    "replied": ("答复居民", "replied"),
    "responded": ("首次响应", "first response"),
    "transferred": ("转办他人", "transferred away"),
    "transferred_out": ("转外区", "transferred to another district"),
    "escalated": ("吹哨", "escalated"),
    "resolved": ("办结", "resolved"),
    "closed": ("核实结项", "closed"),
    "withdrawn": ("居民撤回", "withdrawn"),
    "reopened": ("重新办理", "reopened"),
    "overdue": ("超期督办", "deadline missed"),
    "merged": ("并案", "merged"),
    "converted": ("转代表建议", "made a suggestion"),
    "answered": ("建议已答复", "suggestion answered"),
    "activity": ("履职活动", "activity"),
}

STATION_KINDS: Final[dict[str, Pair]] = {
    "home": ("代表之家", "representatives' home"),
    "community": ("社区联络站", "community station"),
    "industry": ("行业/园区联络站", "industry station"),
    "contact_point": ("联系点", "contact point"),
}

LEVELS: Final[dict[str, Pair]] = {
    "national": ("全国人大代表", "national"),
    "provincial": ("省人大代表", "provincial"),
    "municipal": ("市人大代表", "municipal"),
    "district": ("区人大代表", "district"),
    "deliberative": ("议政代表", "deliberative"),
}

CHANNELS: Final[dict[str, Pair]] = {
    "qr": ("民情码", "QR code"),
    "walk_in": ("来访接待", "walk-in"),
    "spokesperson": ("群众代言员", "citizen spokesperson"),
    "visit": ("走访入户", "visit"),
    "hotline_12345": ("12345热线", "12345 hotline"),
    "online": ("网上信箱", "online"),
    "open311": ("Open311", "Open311"),
}

STATUSES: Final[dict[str, Pair]] = {
    "triage": ("待分拣", "awaiting triage"),
    "assigned": ("待报到", "assigned"),
    "in_progress": ("办理中", "in progress"),
    "escalated": ("已吹哨", "escalated"),
    "resolved": ("待核实", "resolved"),
    "closed": ("已结项", "closed"),
    "converted": ("已转代表建议", "suggestion"),
    "merged": ("已并案", "merged"),
    "transferred_out": ("已转外区", "transferred out"),
}

DEADLINES: Final[dict[str, Pair]] = {
    "response": ("响应时限", "response deadline"),
    "resolution": ("办结时限", "resolution deadline"),
    "escalation": ("督办时限", "supervision deadline"),
}

ESCALATION_LEVELS: Final[dict[str, Pair]] = {
    "department": ("职能部门", "department"),
    "station_head": ("站长", "station head"),
    "street": ("街道", "street"),
    "district": ("区", "district"),
}

UNKNOWN: Final[Pair] = ("未知", "unknown")
UNCATEGORISED: Final[Pair] = ("未分类", "uncategorised")
NO_COMMUNITY: Final[Pair] = ("社区未知", "community unknown")
NO_STREET: Final[Pair] = ("街道未知", "street unknown")


def label(table: dict[str, Pair], code: str | None, default: Pair = UNKNOWN) -> Pair:
    """The pair for ``code``, or ``default`` (with the code itself when it is unknown)."""
    if code is None:
        return default
    return table.get(code, (code, code))
