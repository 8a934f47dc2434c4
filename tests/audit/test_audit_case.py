"""A case's whole timeline: its opinion, its case and the case it was transferred to,
the notifications about them; the record checked; residents' data sealed unless opened,
and every opening recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts import (
    REGISTRY,
    Actor,
    ActorRole,
    CaseOpened,
    CaseResolved,
    CaseTransferred,
    DistrictRegistered,
    FeedbackSubmitted,
    NotificationSent,
    PersonalDataOpened,
    Priority,
    SubmitterRef,
)
from eventkit.audit.timeline import (
    SEALED,
    CaseTimeline,
    case_timeline,
    open_personal_data,
    timeline_json,
    timeline_lines,
)
from eventkit.db import Conn, district_transaction
from eventkit.privacy import PersonalDataVault
from eventkit.store import EventStore
from services.intake.text import mask_personal_numbers
from tests.audit.support import ROUTING, append_all, matter_events, tamper

WHEN = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
NAME, PHONE = "王秀英", "13900001111"


async def transferred_matter(store: EventStore, conn: Conn) -> tuple[str, str, str]:
    """A resident's matter opened in demo (time zone Urumqi, to see it used), transferred
    to haidian's case; the case ids and the resident's subject id."""
    async with district_transaction(store.pool, "demo") as own:
        sealed = await PersonalDataVault(store.pool).seal(
            "demo", {"name": NAME, "phone": PHONE}, identifier=PHONE, conn=own
        )
    submitter = SubmitterRef(
        subject_id=sealed.subject_id,
        name_ciphertext=sealed.values["name"],
        phone_ciphertext=sealed.values["phone"],
    )
    await append_all(
        store,
        [
            DistrictRegistered(
                district_id="demo", occurred_at=WHEN, actor=ROUTING, name_zh="示范区",
                timezone="Asia/Urumqi",
            )
        ],
    )  # fmt: skip
    matter, events = matter_events("demo", 1, WHEN, submitter=submitter)
    there = "c_there_" + uuid.uuid4().hex[:6]
    at = WHEN + timedelta(days=3)
    await append_all(
        store,
        [
            *events[:4],
            CaseTransferred(
                district_id="demo", occurred_at=at, actor=ROUTING, case_id=matter.case_id,
                to_district_id="haidian", to_case_id=there, reason="属海淀区管辖",
            ),
            CaseOpened(
                district_id="haidian", occurred_at=at, actor=ROUTING, case_id=there,
                opinion_id=matter.opinion_id, category_code="property",
                priority=Priority.NORMAL, transferred_from_case_id=matter.case_id,
                transferred_from_district_id="demo",
            ),
            CaseResolved(
                district_id="haidian", occurred_at=at + timedelta(days=1),
                actor=Actor(id="lo-hd-2", role=ActorRole.LIAISON), case_id=there,
                resolution_seq=1, result="已协调物业，业主电话 13812345678",
            ),
            NotificationSent(
                district_id="haidian", occurred_at=at + timedelta(days=1, minutes=1),
                actor=ROUTING, notification_id="n_there_" + there[-6:],
                source_event_id=uuid.uuid4(), recipient=sealed.subject_id, channel="sms",
                template="case_resolved", case_id=there, opinion_id=matter.opinion_id,
            ),
            FeedbackSubmitted(
                district_id="demo", occurred_at=at + timedelta(days=2),
                actor=Actor(id=sealed.subject_id, role=ActorRole.RESIDENT),
                opinion_id=matter.opinion_id, case_id=there, resolution_seq=1,
                satisfaction=5, resolved=True,
            ),
        ],
    )  # fmt: skip
    return matter.case_id, there, sealed.subject_id


async def test_a_case_timeline_follows_its_opinion_its_notifications_and_its_transfer(
    store: EventStore, conn: Conn
) -> None:
    here, there, _ = await transferred_matter(store, conn)
    timeline = await case_timeline(conn, here)
    assert timeline is not None
    assert timeline.case_ids == [here, there]
    assert [e.event_type for e in timeline.entries] == [
        "OpinionSubmitted",
        "CaseOpened",
        "CaseAssigned",
        "NotificationSent",
        "CaseTransferred",
        "CaseOpened",
        "CaseResolved",
        "NotificationSent",
        "FeedbackSubmitted",
    ]
    assert timeline.intact
    assert timeline.timezone == "Asia/Urumqi"
    assert timeline.entries[0].occurred_at.isoformat() == "2025-03-03T07:00:00+06:00"
    assert (timeline.entries[6].actor_id, timeline.entries[6].actor_role) == ("lo-hd-2", "liaison")
    # Asking from the other end gives the same matter.
    other = await case_timeline(conn, there)
    assert other is not None
    assert [e.event_id for e in other.entries] == [e.event_id for e in timeline.entries]


async def test_residents_data_stays_sealed_in_the_timeline_unless_opened(
    store: EventStore, conn: Conn
) -> None:
    here, _, subject = await transferred_matter(store, conn)
    timeline = await case_timeline(conn, here)
    assert timeline is not None
    text = "\n".join(timeline_lines(timeline, mask=mask_personal_numbers))
    document = str(timeline_json(timeline, mask=mask_personal_numbers))
    for shown in (text, document):
        assert NAME not in shown
        assert PHONE not in shown
        assert "13812345678" not in shown
        assert "138****5678" in shown
        assert subject in shown
        assert SEALED in shown
    assert "hashes: all 9 intact" in text


async def test_opening_a_residents_data_is_recorded_with_who_and_why(
    store: EventStore, conn: Conn
) -> None:
    here, _, subject = await transferred_matter(store, conn)
    timeline = await case_timeline(conn, here)
    assert timeline is not None
    opened = await open_personal_data(
        store, timeline, operator="auditor-li", reason="信访复核", clock=lambda: WHEN
    )
    assert opened == {subject: {"name": NAME, "phone": PHONE}}
    [record] = await store.read_stream("audit-demo.openings")
    event = record.envelope().event(REGISTRY)
    assert isinstance(event, PersonalDataOpened)
    assert (event.actor.id, event.actor.role, event.reason) == ("auditor-li", "auditor", "信访复核")
    assert (event.case_id, event.subject_ids) == (here, [subject])
    lines = "\n".join(timeline_lines(timeline, mask=mask_personal_numbers, revealed=opened))
    assert NAME in lines
    assert PHONE in lines


async def test_a_forgotten_resident_opens_as_erased(store: EventStore, conn: Conn) -> None:
    here, _, subject = await transferred_matter(store, conn)
    await PersonalDataVault(store.pool).forget(subject, requested_by="dpo")
    timeline = await case_timeline(conn, here)
    assert timeline is not None
    opened = await open_personal_data(
        store, timeline, operator="auditor-li", reason="复核", clock=lambda: WHEN
    )
    assert opened == {subject: None}
    assert "erased" in "\n".join(
        timeline_lines(timeline, mask=mask_personal_numbers, revealed=opened)
    )


async def test_a_tampered_event_is_flagged_in_the_timeline(
    store: EventStore, conn: Conn, database_url: str
) -> None:
    here, there, _ = await transferred_matter(store, conn)
    await tamper(
        database_url,
        (
            "UPDATE eventstore.events SET data = jsonb_set(data, '{result}', '\"已解决\"') "
            "WHERE stream_id = $1 AND stream_version = 2",
            f"case-{there}",
        ),
    )
    timeline = await case_timeline(conn, here)
    assert isinstance(timeline, CaseTimeline)
    assert not timeline.intact
    assert [e.event_type for e in timeline.entries if not e.hash_ok] == ["CaseResolved"]
    assert "1 of 9 BROKEN" in "\n".join(timeline_lines(timeline, mask=mask_personal_numbers))


async def test_an_unknown_case_has_no_timeline(conn: Conn) -> None:
    assert await case_timeline(conn, "c_nowhere") is None
