"""The history most reporting tests count on: a small district in March 2026, every
edge case of docs/metrics.md once, with the expected figures worked out by hand.

District ``demo`` (Asia/Shanghai): streets dh (东湖街道, supervisor ss_dh) and xs (西山街道,
supervisor ss_xs); stations dh_donghu (liaison lo_donghu, 4★), dh_home (lo_dh, 5★),
xs_home (lo_xs, 3★); representatives r1 (dh_donghu), r2 (dh_home), r3 and r4
(xs_home). District ``other`` receives one case transferred from demo.

March cohort (opened, i.e. recorded, in March local time):

- C1, dh_donghu/r1: accepted, replied, resolved, closed, rated 5. All three rates,
  satisfied.
- C2, dh_donghu/r1: response missed, accepted late, resolution missed, resolved late,
  rated 2 (unresolved), reopened, resolved again in time, rated 4. Response late;
  resolved; satisfied (the latest rating counts); overdue; reopened.
- C3, dh_home/r2, opened 31 March at 23:30 (+08:00), accepted 1 April, in progress.
  March's; response on time; resolution not settled yet.
- C5, xs_home/r3, transferred within the district to dh_home/r2, accepted, resolved,
  closed, rated 3. Counts for street dh, station dh_home and r2; not satisfied.
- C6, dh_home/r2, merged into C3: in no rate; in the hot spots.
- C7, dh_donghu/r1, withdrawn before any response: in no rate.
- C8, xs_home/r4, accepted, converted to a suggestion, answered on 10 April: in the
  response rate, not in resolution or satisfaction; a suggestion.
- C9, xs_home/r3, transferred to district ``other`` (C9X there): in no rate of demo,
  in no hot spot.
- C10, no station (triage), no category, no community; response and resolution
  missed: district only; response late; resolution settled, unresolved.
- C11, dh_home/r2, accepted, escalated, resolved, closed, unrated.

Outside March: C0 (20 Feb) and C12 (28 Feb 23:59) in 东湖社区/property (the previous
period of the hot spots; C12 accepted and resolved in March, r1's activity), C4 (1 April
00:30 +08:00, i.e. 31 March 16:30 UTC): April.
"""

from __future__ import annotations

from services.reporting.stats import CaseStats
from tests.reporting.history import History, local

DH_STREET = ("东湖街道", ["ss_dh"], ["东湖社区", "湖滨社区"])
XS_STREET = ("西山街道", ["ss_xs"], ["西山社区"])


def march_history() -> History:
    h = History()
    h.district(
        local(1, 5),
        "demo",
        "示范区",
        {"dh": DH_STREET, "xs": XS_STREET},
        [
            ("dh_donghu", "东湖社区代表联络站", "community", "dh", 4, ["lo_donghu"]),
            ("dh_home", "东湖街道人大代表之家", "home", "dh", 5, ["lo_dh"]),
            ("xs_home", "西山街道人大代表之家", "home", "xs", 3, ["lo_xs"]),
        ],
        [
            ("r1", "李秀英", "district", "dh_donghu"),
            ("r2", "王建国", "municipal", "dh_home"),
            ("r3", "张伟", "district", "xs_home"),
            ("r4", "陈静", "provincial", "xs_home"),
        ],
        [
            ("property", "物业管理", "property"),
            ("env", "环境卫生", "environment"),
            ("road", "道路交通", "roads"),
        ],
    )
    h.district(
        local(1, 6),
        "other",
        "邻区",
        {"ot": ("邻区街道", ["ss_ot"], ["邻区社区"])},
        [("ot_home", "邻区代表之家", "home", "ot", 4, ["lo_ot"])],
        [("q1", "赵敏", "district", "ot_home")],
        [("road", "道路交通", "roads")],
    )
    dh = {"community": "东湖社区", "street": "dh"}
    hb = {"community": "湖滨社区", "street": "dh"}
    xs = {"community": "西山社区", "street": "xs"}

    # February: the previous period.
    (
        h.case(
            "C0", local(2, 20), category="property", station="dh_donghu", representative="r1", **dh
        )
        .accept(local(2, 20, 10))
        .resolve(local(2, 22))
        .close(local(2, 23))
    )
    (
        h.case(
            "C12",
            local(2, 28, 23, 59),
            category="property",
            station="dh_donghu",
            representative="r1",
            **dh,
        )
        .accept(local(3, 1, 9))
        .resolve(local(3, 2))
        .close(local(3, 3))
    )

    # March.
    (
        h.case(
            "C1", local(3, 2), category="property", station="dh_donghu", representative="r1", **dh
        )
        .accept(local(3, 2, 10))
        .reply(local(3, 3))
        .resolve(local(3, 5))
        .close(local(3, 6))
        .rate(local(3, 7), 5)
    )
    (
        h.case(
            "C2",
            local(3, 3),
            category="property",
            station="dh_donghu",
            representative="r1",
            channel="hotline_12345",
            **dh,
        )
        .missed(local(3, 4, 9), "response")
        .accept(local(3, 4, 10))
        .missed(local(3, 10), "resolution")
        .resolve(local(3, 12))
        .rate(local(3, 13, 9), 2, resolved=False)
        .reopen(local(3, 13, 9, 1))
        .resolve(local(3, 15))
        .rate(local(3, 16), 4)
    )
    (
        h.case(
            "C3", local(3, 31, 23, 30), category="env", station="dh_home", representative="r2", **hb
        ).accept(local(4, 1, 9))
    )
    (
        h.case(
            "C4", local(4, 1, 0, 30), category="road", station="xs_home", representative="r3", **xs
        )
    )
    (
        h.case("C5", local(3, 10), category="road", station="xs_home", representative="r3", **xs)
        .transfer(local(3, 11, 9), "dh_home", "r2")
        .accept(local(3, 11, 10))
        .resolve(local(3, 14))
        .close(local(3, 15))
        .rate(local(3, 16, 10), 3)
    )
    (
        h.case(
            "C6", local(3, 12), category="env", station="dh_home", representative="r2", **hb
        ).merge(local(3, 12, 11), "C3")
    )
    (
        h.case(
            "C7", local(3, 15), category="property", station="dh_donghu", representative="r1", **dh
        ).withdraw(local(3, 16, 8))
    )
    (
        h.case("C8", local(3, 18), category="road", station="xs_home", representative="r4", **xs)
        .accept(local(3, 18, 10))
        .convert(local(3, 20), "r4", "关于增设路口信号灯的建议")
        .reply(local(4, 10), "已提交区交通委研究办理")
    )
    (
        h.case(
            "C9", local(3, 20), category="road", station="xs_home", representative="r3", **xs
        ).transfer_out(local(3, 21), "other", "C9X")
    )
    h.case(
        "C9X",
        local(3, 21, 0, 1),
        district="other",
        category="road",
        station="ot_home",
        representative="q1",
        community="邻区社区",
        street="ot",
        transferred_from="demo",
    )
    (
        h.case("C10", local(3, 25))
        .missed(local(3, 26, 10), "response")
        .missed(local(3, 30, 10), "resolution")
    )
    (
        h.case(
            "C11",
            local(3, 5),
            category="env",
            station="dh_home",
            representative="r2",
            channel="walk_in",
            **hb,
        )
        .accept(local(3, 5, 10))
        .escalate(local(3, 6))
        .resolve(local(3, 8))
        .close(local(3, 9))
    )
    return h


# Expected figures of March 2026, worked out from the table above.
MARCH_DISTRICT = CaseStats(
    received=10,  # C1 C2 C3 C5 C6 C7 C8 C9 C10 C11
    counted=7,  # less C6 (merged), C7 (withdrawn), C9 (transferred out)
    merged=1,
    withdrawn=1,
    transferred_out=1,
    suggestions=1,  # C8
    open=2,  # C3 in progress, C10 in triage
    response_settled=7,  # every counted case: responded, or its response missed (C10)
    response_on_time=5,  # C1 C3 C5 C8 C11 (C2 late, C10 never)
    resolution_settled=5,  # C1 C2 C5 C11 resolved, C10 missed; C3 pending; C8 a suggestion
    resolved=4,
    resolved_on_time=4,  # C2's latest resolution came in time after the reopening
    rated=3,  # C1 (5), C2 (latest 4), C5 (3); C11 unrated
    satisfied=2,
    satisfaction_sum=12,
    overdue=2,  # C2, C10
    reopened=1,  # C2
    escalated=1,  # C11
)
MARCH_STREETS: dict[str | None, tuple[int, int]] = {"dh": (7, 5), "xs": (2, 1), None: (1, 1)}
"""Street → (received, counted): C5 counts where its station is (dh), C10 has no street."""
MARCH_STATIONS: dict[str | None, tuple[int, int]] = {
    "dh_donghu": (3, 2),
    "dh_home": (4, 3),
    "xs_home": (2, 1),
}
