"""Assignment (分派): which station, which representative, and why.

Station: the station whose QR code was scanned, else the station serving the community,
else the nearest station, else the district's triage queue.

Representative: every active representative of the station (grouped into it, or with
it as contact point) gets a score, the sum of weighted parts, each part between 0 and 1
before its weight (the district's policy sets the weights):

- ``electoral_district``: elected in the electoral district of the matter's community;
- ``residence``: lives in that community (1) or in a community the station serves (0.5);
- ``expertise``: an expertise tag fits the category;
- ``contact_point``: the station is the representative's contact point (包抓联系点);
- ``workload``: fewer open cases, more points (1 − open / max), for a fair spread;
- ``reception``: a reception day at the station soon (1 today, 0 beyond the horizon);
- ``leading_cadre``: a leading cadre, for important and urgent matters only.

The highest score wins; ties go to the fewer open cases, then the lower id, so the same
facts always give the same answer. The top three, with each weighted part, are recorded
in ``CaseAssigned``. A representative at the policy's maximum of open cases is not
available (except for urgent matters); nobody available → the station's liaison queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from contracts.cases import Priority, ScoredCandidate
from contracts.directory import RoutingPolicyPublished
from contracts.intake import OnBehalfOf, OnTheSpotAnswer
from services.routing.directory import Community, Directory, Representative, Station

NEAREST_COMMUNITY_M = 1000.0
"""A point this close to a community's centre is taken to be in it."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where the matter is, as the opinion told it."""

    station_code: str | None = None
    community: str | None = None
    point: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class StationChoice:
    """The station chosen (or none) and the rule that chose it."""

    station: Station | None
    rule: str
    """``qr``, ``community``, ``nearest`` or ``none``."""
    reason: str
    distance_m: float | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a case goes: a station's representative, its liaison queue, or triage."""

    station_code: str | None
    representative_id: str | None
    queue: str
    reason: str
    candidates: tuple[ScoredCandidate, ...] = ()


def choose_station(directory: Directory, place: Place) -> StationChoice:
    """The station for a matter at ``place`` (see the module's note for the order)."""
    scanned = directory.active_station(place.station_code)
    if scanned is not None:
        return StationChoice(
            scanned,
            "qr",
            f"扫码联络站：{scanned.name_zh} / station of the scanned QR code",
        )
    if place.community:
        serving = directory.stations_serving(place.community)
        if serving:
            return StationChoice(
                serving[0],
                "community",
                f"{place.community}所属联络站：{serving[0].name_zh} / "
                "the station serving the community",
            )
    if place.point is not None:
        nearest = directory.nearest_station(place.point)
        if nearest is not None:
            station, metres = nearest
            return StationChoice(
                station,
                "nearest",
                f"距离最近的联络站：{station.name_zh}（约{metres:.0f}米） / "
                f"nearest station, about {metres:.0f} m",
                distance_m=metres,
            )
    return StationChoice(
        None,
        "none",
        "无法确定联络站，进入区级分拣队列 / no station could be determined: district triage",
    )


def community_of(directory: Directory, place: Place) -> Community | None:
    """The community of the matter: as given, else the one around its point."""
    if place.community:
        return directory.communities.get(place.community) or Community(place.community, "")
    if place.point is not None:
        return directory.nearest_community(place.point, NEAREST_COMMUNITY_M)
    return None


@dataclass(frozen=True, slots=True)
class Matter:
    """What scoring needs to know about a case."""

    community: Community | None
    expertise: frozenset[str]
    priority: Priority
    today: date
    responsible: str | None = None
    """The representative who took the opinion down on a visit, or answered it at the
    desk (谁走访谁负责): the case is theirs unless they hand it on."""


def score(
    directory: Directory,
    station: Station,
    representative: Representative,
    matter: Matter,
    open_cases: int,
    policy: RoutingPolicyPublished,
) -> ScoredCandidate:
    """One representative's score for a matter at a station, part by part."""
    w = policy.weights
    community = matter.community
    electoral = (
        1.0
        if community is not None
        and community.electoral_district
        and representative.electoral_district == community.electoral_district
        else 0.0
    )
    if community is not None and representative.residence_community == community.name:
        residence = 1.0
    elif representative.residence_community in station.communities:
        residence = 0.5
    else:
        residence = 0.0
    expertise = 1.0 if representative.expertise & matter.expertise else 0.0
    contact = 1.0 if representative.contact_point == station.code else 0.0
    workload = max(0.0, 1.0 - open_cases / policy.max_open_cases)
    next_day = directory.next_reception(representative.id, station.code, matter.today)
    horizon = policy.reception_horizon_days
    reception = 0.0
    if next_day is not None and (next_day - matter.today).days < horizon:
        reception = 1.0 - (next_day - matter.today).days / horizon
    cadre = (
        1.0
        if representative.leading_cadre and matter.priority in (Priority.IMPORTANT, Priority.URGENT)
        else 0.0
    )
    parts = {
        "electoral_district": w.electoral_district * electoral,
        "residence": w.residence * residence,
        "expertise": w.expertise * expertise,
        "contact_point": w.contact_point * contact,
        "workload": w.workload * workload,
        "reception": w.reception * reception,
        "leading_cadre": w.leading_cadre * cadre,
    }
    components = {k: round(v, 3) for k, v in parts.items()}
    return ScoredCandidate(
        representative_id=representative.id,
        score=round(sum(components.values()), 3),
        components=components,
    )


_PART_ZH = {
    "electoral_district": "选区相符",
    "residence": "居住在附近社区",
    "expertise": "专长对口",
    "contact_point": "本站为其联系点",
    "workload": "在办件较少",
    "reception": "近期有接待日",
    "leading_cadre": "领导干部代表",
}


def responsible_for(
    directory: Directory,
    channel: str,
    collected_by: OnBehalfOf | None,
    on_the_spot: OnTheSpotAnswer | None = None,
) -> str | None:
    """谁走访谁负责: the active representative who collected the opinion on a visit, or
    answered it at the desk; None when the opinion came some other way."""
    candidate = None
    if on_the_spot is not None and on_the_spot.role == "representative":
        candidate = on_the_spot.staff_id
    elif channel == "visit" and collected_by is not None and collected_by.role == "representative":
        candidate = collected_by.staff_id
    rep = directory.representatives.get(candidate) if candidate else None
    return rep.id if rep is not None and rep.active else None


def _their_station(
    directory: Directory, rep: Representative, choice: StationChoice, matter: Matter
) -> Station | None:
    """Where a representative's own case sits: the chosen station if it is theirs, else
    their station serving the matter's community, else one of theirs."""
    chosen = choice.station
    if chosen is not None and (chosen.code in rep.stations or rep.contact_point == chosen.code):
        return chosen
    own = [s for code in sorted(rep.stations) if (s := directory.active_station(code)) is not None]
    if matter.community is not None:
        serving = [s for s in own if matter.community.name in s.communities]
        if serving:
            return serving[0]
    if own:
        return own[0]
    return directory.active_station(rep.contact_point) or chosen


def _to_responsible(
    directory: Directory,
    choice: StationChoice,
    matter: Matter,
    open_cases: Mapping[str, int],
    policy: RoutingPolicyPublished,
) -> Assignment:
    assert matter.responsible is not None
    rep = directory.representatives[matter.responsible]
    station = _their_station(directory, rep, choice, matter)
    top: tuple[ScoredCandidate, ...] = ()
    if station is not None:
        load = open_cases.get(rep.id, 0)
        top = (score(directory, station, rep, matter, load, policy),)
    return Assignment(
        station.code if station is not None else None,
        rep.id,
        "representative",
        f"谁走访谁负责：由收集此诉求的{rep.name_zh}代表负责办理 / "
        f"collected by representative {rep.id}: theirs to handle unless they hand it on",
        top,
    )


def assign(
    directory: Directory,
    choice: StationChoice,
    matter: Matter,
    *,
    classified: bool,
    open_cases: Mapping[str, int],
    policy: RoutingPolicyPublished,
) -> Assignment:
    """Where the case goes, with the scored candidates and a reason in words."""
    if matter.responsible is not None and matter.responsible in directory.representatives:
        return _to_responsible(directory, choice, matter, open_cases, policy)
    station = choice.station
    if station is None:
        return Assignment(None, None, "triage", choice.reason)
    if not classified:
        return Assignment(
            station.code,
            None,
            "triage",
            f"{choice.reason}；未能自动分类，由本站联络员分拣 / "
            "no category matched: the station's liaison officer triages it",
        )
    urgent = matter.priority is Priority.URGENT
    scored: list[tuple[ScoredCandidate, int]] = []
    for representative in directory.candidates_at(station.code):
        load = open_cases.get(representative.id, 0)
        if load >= policy.max_open_cases and not urgent:
            continue
        scored.append((score(directory, station, representative, matter, load, policy), load))
    scored.sort(key=lambda item: (-item[0].score, item[1], item[0].representative_id))
    top = tuple(candidate for candidate, _ in scored[:3])
    if not top:
        return Assignment(
            station.code,
            None,
            "liaison",
            f"{choice.reason}；本站暂无可分派的代表，转联络员处理 / "
            "no representative available: the station's liaison queue",
        )
    best = top[0]
    name = directory.representatives[best.representative_id].name_zh
    why = "、".join(_PART_ZH[k] for k, v in best.components.items() if v > 0) or "综合得分最高"
    return Assignment(
        station.code,
        best.representative_id,
        "representative",
        f"{choice.reason}；分派给{name}代表（得分{best.score:g}：{why}） / "
        f"assigned to representative {best.representative_id}, highest score {best.score:g}",
        top,
    )
