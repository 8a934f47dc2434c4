"""The authorization matrix of docs/security.md, row by row, against the API.

Each row names a role, the case's relation to the person (their station or street,
another one, their own case or someone else's, the district, another district) and an
action; the test opens a fresh case at the Donghu home station (东湖街道代表之家), brings
it to a status where the action is allowed (so that only who asks decides), asks through
the API with a bearer token, and checks the status of the answer.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import pytest_asyncio

from eventkit.identity import Principal, Role
from services.routing.district_file import parse_district_file
from services.routing.staff_commands import BY_NAME
from tests.every_district import every_district
from tests.routing.routing_support import ADMIN
from tests.workbench.conftest import ADMIN_ID, AUDITOR_ID, PASSWORD, Bench

pytestmark = pytest.mark.asyncio(loop_scope="module")

HERE = "dh_home"
"""The station of the cases: 东湖街道代表之家, liaison officer lo_dh_01, street dh."""

OTHER_DISTRICT = """
district: {code: other, name_zh: 邻区}
streets:
  - code: hx
    name_zh: 河西街道
    communities: [{name: 河西社区, electoral_district: 第一选区}]
stations:
  - {code: hx_home, name_zh: 河西街道人大代表之家, kind: home, street: hx,
     communities: [河西社区], liaison_officers: [lo_hx_01]}
representatives:
  - {id: h001, name_zh: 周建平, level: district, electoral_district: 第一选区,
     residence_community: 河西社区, stations: [hx_home]}
"""

# Who asks: (role, subject, district); "assignee" is the case's own representative.
ASKERS: dict[str, tuple[Role, str, str]] = {
    "liaison, own station": (Role.LIAISON, "lo_dh_01", "demo"),
    "liaison, another station": (Role.LIAISON, "lo_xs_01", "demo"),
    "street supervisor, own street": (Role.STREET_SUPERVISOR, "ss_dh_01", "demo"),
    "street supervisor, another street": (Role.STREET_SUPERVISOR, "ss_xs_01", "demo"),
    "representative, own case": (Role.REPRESENTATIVE, "assignee", "demo"),
    "representative, another's case": (Role.REPRESENTATIVE, "r030", "demo"),
    "district admin, district": (Role.DISTRICT_ADMIN, ADMIN_ID, "demo"),
    "auditor, district": (Role.AUDITOR, AUDITOR_ID, "demo"),
    "hotline, district": (Role.HOTLINE, "hotline_12345", "demo"),
    "spokesperson": (Role.SPOKESPERSON, "sp_dh_01", "demo"),
    "district admin, another district": (Role.DISTRICT_ADMIN, "admin_other", "other"),
}

WORK = ("accept", "reply", "resolve", "escalate", "convert")
COORDINATE = ("transfer", "classify", "close", "reopen", "merge", "link")

# The matrix: for each asker, what reading and each group of actions answer.
MATRIX: dict[str, tuple[int, int, int]] = {
    #                                       read  work  coordinate
    "liaison, own station": (200, 200, 200),
    "liaison, another station": (403, 403, 403),
    "street supervisor, own street": (200, 200, 200),
    "street supervisor, another street": (403, 403, 403),
    "representative, own case": (200, 200, 403),
    "representative, another's case": (403, 403, 403),
    "district admin, district": (200, 200, 200),
    "auditor, district": (200, 403, 403),
    "hotline, district": (200, 403, 403),
    "spokesperson": (403, 403, 403),
    "district admin, another district": (404, 404, 404),
}

ROWS = [
    (asker, action, expected[0] if action == "read" else expected[1 if action in WORK else 2])
    for asker, expected in MATRIX.items()
    for action in ("read", *WORK, *COORDINATE)
]

BODIES: dict[str, dict[str, Any]] = {
    "accept": {},
    "reply": {"message": "已收到，正在联系物业"},
    "resolve": {"result": "路灯已修复"},
    "escalate": {"to_level": "department", "to_name": "区城管局", "reason": "需部门处理"},
    "convert": {"title": "关于老旧小区路灯改造的建议"},
    "transfer": {"reason": "更合适的代表", "to_station_code": "dh_donghu"},
    "classify": {"reason": "更正分类", "priority": "important"},
    "close": {"note": "回访核实"},
    "reopen": {"reason": "居民反映未修好"},
    "merge": {"reason": "同一件事"},
    "link": {"reason": "同一路段", "relation": "related"},
}

# The status each action needs, reached by these steps (by whom: admin or assignee).
PREPARE: dict[str, list[tuple[str, str]]] = {
    "read": [],
    "accept": [],
    "reply": [],
    "transfer": [],
    "classify": [],
    "merge": [],
    "link": [],
    "resolve": [("accept", "admin")],
    "escalate": [("accept", "admin")],
    "convert": [("accept", "admin")],
    "close": [("accept", "admin"), ("resolve", "assignee")],
    "reopen": [("accept", "admin"), ("resolve", "assignee")],
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix_bench(bench: Bench) -> Bench:
    """The bench with the accounts the matrix asks as, and a second district."""
    await bench.account("hotline_12345", Role.HOTLINE)
    other = parse_district_file(OTHER_DISTRICT)
    await bench.routing.directory.change("other", other, ADMIN)
    invitation = await bench.routing.accounts.invite(
        "other", "admin_other", Role.DISTRICT_ADMIN, ADMIN
    )
    await bench.routing.accounts.accept_invitation(invitation.code, PASSWORD, PASSWORD)
    return bench


async def prepared_case(bench: Bench, action: str) -> tuple[str, str]:
    """A fresh case at :data:`HERE` in a status allowing ``action``; its representative."""
    case_id = await bench.open_case("路灯坏了，晚上很黑", station_code=HERE)
    async with every_district(bench.routing.pool).acquire() as conn:
        state = await bench.routing.cases.load(conn, case_id)
    assert state is not None
    assert state.station_code == HERE
    assignee = state.representative_id
    assert assignee is not None, state
    assert assignee != "r030"
    for command, by in PREPARE[action]:
        who = (
            Principal(ADMIN_ID, Role.DISTRICT_ADMIN, "demo")
            if by == "admin"
            else Principal(assignee, Role.REPRESENTATIVE, "demo")
        )
        row = BY_NAME[command]
        await bench.routing.staff.run(who, row, case_id, row.body(**BODIES[command]))
    return case_id, assignee


@pytest.mark.parametrize(("asker", "action", "expected"), ROWS)
async def test_the_authorization_matrix_row_by_row(
    matrix_bench: Bench, asker: str, action: str, expected: int
) -> None:
    bench = matrix_bench
    case_id, assignee = await prepared_case(bench, action)
    role, subject, district = ASKERS[asker]
    headers = bench.bearer(role, assignee if subject == "assignee" else subject, district)
    if action == "read":
        response = await bench.client.get(f"/api/v1/cases/{case_id}", headers=headers)
    else:
        body = dict(BODIES[action])
        if action in ("merge", "link"):
            other = await bench.open_case("路灯又坏了", station_code=HERE)
            body["into_case_id" if action == "merge" else "related_case_id"] = other
        response = await bench.client.post(
            f"/api/v1/cases/{case_id}/{action}",
            json=body if BY_NAME[action].body.model_fields else None,
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
    assert response.status_code == expected, response.text
    if expected != 200:
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_lists_keep_to_the_scope_of_the_person(matrix_bench: Bench) -> None:
    bench = matrix_bench
    case_id, assignee = await prepared_case(bench, "read")
    seen = {}
    for asker in ("liaison, own station", "liaison, another station", "representative, own case"):
        role, subject, district = ASKERS[asker]
        headers = bench.bearer(role, assignee if subject == "assignee" else subject, district)
        listed = await bench.client.get("/api/v1/cases?limit=200", headers=headers)
        assert listed.status_code == 200
        seen[asker] = {c["case_id"] for c in listed.json()["cases"]}
    assert case_id in seen["liaison, own station"]
    assert case_id not in seen["liaison, another station"]
    assert case_id in seen["representative, own case"]


async def test_the_one_who_resolved_a_case_may_not_verify_it(matrix_bench: Bench) -> None:
    bench = matrix_bench
    case_id = await bench.open_case("楼道灯坏了", station_code=HERE)
    headers = bench.bearer(Role.LIAISON, "lo_dh_01")
    for action, body in (("accept", None), ("resolve", {"result": "已更换灯泡"})):
        done = await bench.client.post(
            f"/api/v1/cases/{case_id}/{action}", json=body, headers=headers
        )
        assert done.status_code == 200, done.text
    refused = await bench.client.post(
        f"/api/v1/cases/{case_id}/close", json={"note": "自己核实"}, headers=headers
    )
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/own-resolution")
    closed = await bench.client.post(
        f"/api/v1/cases/{case_id}/close",
        json={"note": "站长核实"},
        headers=bench.bearer(Role.STREET_SUPERVISOR, "ss_dh_01"),
    )
    assert closed.status_code == 200, closed.text
