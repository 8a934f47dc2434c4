"""Intake's part of the liaison work: the QR page lists the station's coming reception
days (leading cadres' days marked, cancelled and moved ones said so) and counts its views,
recorded as ``QrScansRecorded`` with the QR opinions of the day; an opinion answered at
the desk; a suggestion's answer on the resident's tracking page."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from contracts import (
    CaseConvertedToSuggestion,
    ReceptionDayCancelled,
    ReceptionDayMoved,
    ReceptionDayScheduled,
    RepresentativeLevel,
    RepresentativeRegistered,
    SuggestionAnswered,
)
from eventkit.clock import utc_now
from eventkit.consumer import Consumer
from eventkit.identity import Role
from eventkit.sealed_texts import SEALED_MARK
from eventkit.store import EventStore
from services.intake.scans import QrScans
from services.intake.settings import IntakeSettings
from tests.intake.intake_support import (
    ADMIN,
    DISTRICT,
    LIAISON,
    REPRESENTATIVE,
    STATION,
    Known,
    case_events,
    now,
    opinion_body,
    publish,
    token,
)
from tests.intake.test_intake_tracking import code_of, submit, track
from tests.sealed_support import opened

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_the_qr_page_lists_the_coming_reception_days(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    today = now().astimezone(SHANGHAI).date()
    common = {"district_id": DISTRICT, "occurred_at": now(), "actor": ADMIN}
    day = {**common, "representative_id": REPRESENTATIVE, "station_code": STATION}
    await publish(
        store,
        consumer,
        [
            RepresentativeRegistered(
                **common,
                representative_id=REPRESENTATIVE,
                name_zh="李建华",
                level=RepresentativeLevel.MUNICIPAL,
                leading_cadre=True,
            ),
            ReceptionDayScheduled(**day, day=today + timedelta(days=2)),
            ReceptionDayScheduled(**day, day=today + timedelta(days=9)),
            ReceptionDayScheduled(**day, day=today + timedelta(days=16)),
            ReceptionDayScheduled(**day, day=today + timedelta(days=90)),  # too far ahead
            ReceptionDayCancelled(**day, day=today + timedelta(days=9), reason="外出学习"),
            ReceptionDayMoved(
                **day, day=today + timedelta(days=16), to_day=today + timedelta(days=17)
            ),
        ],
    )

    page = await client.get(f"/q/{STATION}?district={DISTRICT}")

    assert page.status_code == 200
    html = page.text
    assert "近期代表接待日" in html
    assert html.count('data-status="scheduled"') == 2  # the first day, and the moved one
    assert 'data-status="cancelled"' in html
    assert 'data-status="moved"' in html
    assert "领导干部接待日" in html
    assert f'data-day="{today + timedelta(days=90)}"' not in html


async def test_the_qr_page_s_views_are_counted_and_recorded_with_the_day_s_opinions(
    client: httpx.AsyncClient, store: EventStore, pool: asyncpg.Pool
) -> None:
    for _ in range(3):
        assert (await client.get(f"/q/{STATION}?district={DISTRICT}")).status_code == 200
    await submit(client)  # a QR opinion of the station
    scans = QrScans(pool, store, utc_now)

    assert await scans.record() == 1
    assert await scans.record() == 0  # nothing changed: nothing recorded again
    await client.get(f"/q/{STATION}?district={DISTRICT}")
    assert await scans.record() == 1

    recorded = await store.read_stream(f"qrscans-{DISTRICT}.{STATION}")
    totals = [(r.data["scans"], r.data["opinions"]) for r in recorded]
    assert totals == [(3, 1), (4, 1)]
    assert recorded[-1].data["day"] == now().astimezone(SHANGHAI).date().isoformat()


async def test_an_opinion_answered_at_the_desk_carries_the_answer_and_who_gave_it(
    client: httpx.AsyncClient, intake_settings: IntakeSettings, store: EventStore, known: Known
) -> None:
    await known(Role.HOTLINE)
    body = opinion_body(channel="walk_in", answered_on_the_spot="已当场告知办理居住证所需材料")
    liaison = {"Authorization": token(intake_settings, Role.LIAISON, subject="lo_dh_01")}

    answered = await client.post("/api/v1/opinions", json=body, headers=liaison)
    hotline = await client.post(
        "/api/v1/opinions",
        json=opinion_body(channel="hotline_12345", answered_on_the_spot="已答复"),
        headers={"Authorization": token(intake_settings, Role.HOTLINE)},
    )
    resident = await client.post(
        "/api/v1/opinions", json=opinion_body(answered_on_the_spot="已答复")
    )

    assert answered.status_code == 201, answered.text
    [stored] = await store.read_stream(f"opinion-{answered.json()['opinion_id']}")
    # The answer travels sealed with the opinion's words (it may quote the resident).
    assert stored.data["on_the_spot"]["answer"] == SEALED_MARK
    assert (await opened(store.pool, stored.data))["on_the_spot"] == {
        "answer": "已当场告知办理居住证所需材料",
        "role": "liaison",
        "staff_id": "lo_dh_01",
    }
    assert hotline.status_code == 403
    assert hotline.json()["type"].endswith("/on-the-spot-needs-desk-staff")
    assert hotline.json()["title_en"].startswith("Only a liaison officer")
    assert resident.status_code in (401, 403)


async def test_the_resident_sees_the_answer_to_their_suggestion(
    client: httpx.AsyncClient, store: EventStore, consumer: Consumer
) -> None:
    receipt = await submit(client)
    e = case_events("case_sg1", receipt["opinion_id"], start=now())
    common = {"district_id": DISTRICT, "case_id": "case_sg1", "actor": LIAISON}
    converted = CaseConvertedToSuggestion(
        **common,
        occurred_at=now() + timedelta(minutes=3),
        representative_id=REPRESENTATIVE,
        title="关于增设公交站点的建议",
        reply_due=now() + timedelta(days=90),
    )
    answered = SuggestionAnswered(
        **common,
        occurred_at=now() + timedelta(minutes=4),
        answer="已纳入明年公交线网优化方案",
        answered_by="区交通运输局",
    )
    await publish(store, consumer, [e["opened"], e["assigned"], e["accepted"], converted, answered])

    view = await track(client, code_of(receipt))

    assert (
        view["timeline"][-1]["text_zh"]
        == "代表建议已由区交通运输局答复：已纳入明年公交线网优化方案"
    )
