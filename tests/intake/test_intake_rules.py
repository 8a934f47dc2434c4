"""Intake's rules without I/O: what a submission must be, where it belongs, who may make
it, the event it becomes; tracking codes; feedback and withdrawal; free text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import ActorRole, Channel, OnBehalfOf
from eventkit.http import status_of
from eventkit.identity import Principal, Role
from services.intake.errors import (
    AmbiguousStation,
    InvalidSubmission,
    NotAllowed,
    Refused,
    StaffTokenRequired,
    UnknownStation,
)
from services.intake.feedback_rules import FeedbackState, GiveFeedback, decide_feedback
from services.intake.submission_rules import (
    ApiClient,
    CleanSubmission,
    Contact,
    Place,
    StationInfo,
    SubmitOpinion,
    authorize,
    check_submission,
    locate,
    on_behalf_of,
    opinion_submitted,
)
from services.intake.text import mask_personal_numbers, normalise_phone
from services.intake.tracking_codes import (
    format_tracking_code,
    new_tracking_code,
    normalise_tracking_code,
)
from services.intake.withdrawal_rules import WithdrawalState, decide_withdrawal
from tests.intake.intake_support import DISTRICT, STATION

NOW = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)

HERE = StationInfo(DISTRICT, STATION, "中关村街道人大代表之家")


def submission(**overrides: object) -> SubmitOpinion:
    values: dict[str, object] = {
        "channel": Channel.QR,
        "text": "楼道里的灯坏了一个月了",
        "station_code": STATION,
    }
    values.update(overrides)
    return SubmitOpinion(**values)  # type: ignore[arg-type]


def codes(error: InvalidSubmission) -> list[str]:
    return [e.code for e in error.errors]


# --- checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13912345678", "13912345678"),
        ("139 1234 5678", "13912345678"),
        ("139-1234-5678", "13912345678"),
        ("+86 139 1234 5678", "13912345678"),
        ("008613912345678", "13912345678"),
        ("8613912345678", "13912345678"),
        ("19912345678", "19912345678"),
    ],
)
def test_a_mainland_mobile_number_is_accepted_in_its_usual_spellings(
    raw: str, expected: str
) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["1391234567", "139123456789", "12912345678", "23912345678", "010-62345678", "1391234567x"],
)
def test_numbers_that_are_not_mainland_mobiles_are_refused(raw: str) -> None:
    assert normalise_phone(raw) is None
    with pytest.raises(InvalidSubmission) as refused:
        check_submission(submission(contact=Contact(phone=raw), consent=True))
    assert codes(refused.value) == ["invalid-phone"]
    assert raw not in str(refused.value.detail) + str(refused.value.detail_en)


def test_text_must_have_five_to_four_thousand_characters() -> None:
    with pytest.raises(InvalidSubmission) as short:
        check_submission(submission(text="  灯坏了  "))
    assert codes(short.value) == ["text-too-short"]
    with pytest.raises(InvalidSubmission) as long:
        check_submission(submission(text="灯" * 4001))
    assert codes(long.value) == ["text-too-long"]
    assert "4001" in (long.value.detail or "")
    assert check_submission(submission(text="灯" * 4000)).text == "灯" * 4000
    assert check_submission(submission(text=" 灯坏了五天 ")).text == "灯坏了五天"


def test_every_problem_of_a_submission_is_reported_at_once() -> None:
    with pytest.raises(InvalidSubmission) as refused:
        check_submission(
            submission(
                text="灯",
                contact=Contact(phone="123"),
                attachments=tuple(f"http://img.example.cn/{i}.jpg" for i in range(10)),
                lat=39.9,
            )
        )
    found = codes(refused.value)
    assert found[:3] == ["text-too-short", "invalid-phone", "consent-required"]
    assert "too-many-attachments" in found
    assert "attachment-not-https" in found
    assert "incomplete-position" in found
    assert refused.value.code == "invalid-opinion"


@pytest.mark.parametrize(
    "url", ["http://img.example.cn/1.jpg", "ftp://img.example.cn/1.jpg", "img.example.cn/1.jpg"]
)
def test_an_attachment_must_be_an_https_url(url: str) -> None:
    with pytest.raises(InvalidSubmission) as refused:
        check_submission(submission(attachments=(url,)))
    assert codes(refused.value) == ["attachment-not-https"]


def test_nine_https_attachments_are_fine_and_ten_are_too_many() -> None:
    nine = tuple(f"https://img.example.cn/{i}.jpg" for i in range(9))
    assert check_submission(submission(attachments=nine)).attachments == nine
    with pytest.raises(InvalidSubmission) as refused:
        check_submission(submission(attachments=(*nine, "https://img.example.cn/9.jpg")))
    assert codes(refused.value) == ["too-many-attachments"]


def test_contact_details_on_a_public_channel_need_the_residents_consent() -> None:
    with pytest.raises(InvalidSubmission) as refused:
        check_submission(submission(contact=Contact(name="王女士")))
    assert codes(refused.value) == ["consent-required"]
    assert (
        check_submission(submission(contact=Contact(name="王女士"), consent=True)).name == "王女士"
    )
    # A clerk registering a walk-in asks in person: no consent flag needed.
    walk_in = submission(channel=Channel.WALK_IN, contact=Contact(phone="13912345678"))
    assert check_submission(walk_in).phone == "13912345678"


def test_an_anonymous_submission_is_welcome() -> None:
    clean = check_submission(submission(contact=Contact(name=" ", phone="")))
    assert clean.name is None
    assert clean.phone is None


def test_a_submission_names_a_station_or_a_district() -> None:
    with pytest.raises(InvalidSubmission) as refused:
        check_submission(submission(station_code=None))
    assert codes(refused.value) == ["place-required"]


# --- where and who -------------------------------------------------------------------


def test_a_station_code_is_found_in_its_district() -> None:
    place = locate(submission(), stations=[HERE], district_known=False)
    assert place == Place(DISTRICT, HERE)
    with pytest.raises(UnknownStation):
        locate(submission(station_code="nowhere"), stations=[], district_known=False)


def test_a_station_code_used_in_two_districts_needs_the_district() -> None:
    elsewhere = StationInfo("other", STATION, "另一个区的代表之家")
    with pytest.raises(AmbiguousStation):
        locate(submission(), stations=[HERE, elsewhere], district_known=False)
    place = locate(submission(district_id="other"), stations=[HERE, elsewhere], district_known=True)
    assert place.district_id == "other"


def test_a_retired_station_takes_no_more_submissions() -> None:
    retired = StationInfo(DISTRICT, STATION, "旧站", retired=True)
    with pytest.raises(UnknownStation):
        locate(submission(), stations=[retired], district_known=False)


def staff(role: Role, district: str = DISTRICT, subject: str = "staff_0012") -> Principal:
    return Principal(subject=subject, role=role, district_id=district)


PLACE = Place(DISTRICT, HERE)


@pytest.mark.parametrize(
    "channel",
    [Channel.WALK_IN, Channel.SPOKESPERSON, Channel.VISIT, Channel.HOTLINE_12345, Channel.OPEN311],
)
def test_staff_channels_need_a_staff_token(channel: Channel) -> None:
    with pytest.raises(StaffTokenRequired) as refused:
        authorize(submission(channel=channel), None, PLACE)
    assert status_of(refused.value) == 401
    actor = authorize(submission(channel=channel), staff(Role.LIAISON), PLACE)
    assert actor.role is ActorRole.LIAISON


def test_public_channels_need_no_token() -> None:
    for channel in (Channel.QR, Channel.ONLINE):
        assert authorize(submission(channel=channel), None, PLACE).role is ActorRole.RESIDENT


def test_staff_act_only_in_their_own_district() -> None:
    with pytest.raises(NotAllowed) as refused:
        authorize(submission(channel=Channel.WALK_IN), staff(Role.LIAISON, "other"), PLACE)
    assert refused.value.code == "wrong-district"
    assert status_of(refused.value) == 403


def test_an_auditor_only_reads() -> None:
    with pytest.raises(NotAllowed) as refused:
        authorize(submission(channel=Channel.WALK_IN), staff(Role.AUDITOR), PLACE)
    assert refused.value.code == "role-may-not-submit"


def test_a_spokesperson_submits_on_behalf_of_a_resident_as_themself() -> None:
    caller = staff(Role.SPOKESPERSON, subject="sp_0031")
    command = submission(channel=Channel.SPOKESPERSON)
    assert authorize(command, caller, PLACE).role is ActorRole.SPOKESPERSON
    assert on_behalf_of(command, caller) == OnBehalfOf(role="spokesperson", staff_id="sp_0031")
    someone_else = submission(
        channel=Channel.SPOKESPERSON,
        on_behalf_of=OnBehalfOf(role="spokesperson", staff_id="sp_0099"),
    )
    with pytest.raises(NotAllowed):
        authorize(someone_else, caller, PLACE)
    # A liaison officer registers what a spokesperson collected.
    assert authorize(someone_else, staff(Role.LIAISON), PLACE).role is ActorRole.LIAISON


def test_an_open311_api_key_submits_only_open311_requests_of_its_district() -> None:
    client = ApiClient("open311:abc", DISTRICT)
    command = submission(channel=Channel.OPEN311)
    assert authorize(command, client, PLACE).role is ActorRole.EXTERNAL
    with pytest.raises(NotAllowed):
        authorize(submission(channel=Channel.WALK_IN), client, PLACE)
    with pytest.raises(NotAllowed):
        authorize(command, ApiClient("open311:abc", "other"), PLACE)


def test_the_event_carries_the_subject_and_never_the_contact_in_clear() -> None:
    from contracts.intake import SubmitterRef

    clean: CleanSubmission = check_submission(
        submission(contact=Contact("王女士", "13912345678"), consent=True, lat=39.9, long=116.3)
    )
    ref = SubmitterRef(subject_id="subj_x", name_ciphertext="mq1.a", phone_ciphertext="mq1.b")
    event = opinion_submitted(
        clean,
        opinion_id="op_1",
        place=PLACE,
        actor=authorize(clean.command, None, PLACE),
        submitter=ref,
        behalf=None,
        now=NOW,
    )
    text = event.model_dump_json()
    assert "13912345678" not in text
    assert "王女士" not in text
    assert event.actor.id == "subj_x"
    assert event.location.station_code == STATION
    assert event.occurred_at == NOW


# --- tracking codes ------------------------------------------------------------------


def test_tracking_codes_carry_sixty_random_bits_in_crockford_base32() -> None:
    asked: list[int] = []

    def bits(n: int) -> int:
        asked.append(n)
        return (1 << n) - 1

    assert new_tracking_code(bits) == "Z" * 12
    assert asked == [60]
    sample = {new_tracking_code() for _ in range(5000)}
    assert len(sample) == 5000
    assert all(len(c) == 12 and set(c) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for c in sample)


def test_a_typed_tracking_code_is_forgiven_case_dashes_and_look_alike_letters() -> None:
    code = "A1B2C3D4E5F0"
    assert format_tracking_code(code) == "A1B2-C3D4-E5F0"
    assert normalise_tracking_code("a1b2-c3d4-e5f0") == code
    assert normalise_tracking_code(" AIB2 C3D4 E5FO ") == code
    assert normalise_tracking_code("A1B2-C3D4") is None
    assert normalise_tracking_code("../../etc/passwd") is None


# --- feedback and withdrawal --------------------------------------------------------


def state(**overrides: object) -> FeedbackState:
    values: dict[str, object] = {
        "opinion_id": "op_1",
        "district_id": DISTRICT,
        "case_id": "case_1",
        "resolved": True,
        "resolution_seq": 1,
    }
    values.update(overrides)
    return FeedbackState(**values)  # type: ignore[arg-type]


def test_feedback_opens_once_the_case_is_resolved() -> None:
    with pytest.raises(Refused) as refused:
        decide_feedback(state(resolved=False), GiveFeedback(5, True), now=NOW)
    assert refused.value.code == "feedback-not-open"
    event = decide_feedback(state(), GiveFeedback(4, True, " 很快 "), now=NOW)
    assert (event.case_id, event.resolution_seq, event.satisfaction) == ("case_1", 1, 4)
    assert event.comment == "很快"


def test_feedback_is_given_once_per_resolution() -> None:
    with pytest.raises(Refused) as refused:
        decide_feedback(state(rated=frozenset({1})), GiveFeedback(5, True), now=NOW)
    assert refused.value.code == "feedback-already-given"
    assert status_of(refused.value) == 409
    again = decide_feedback(
        state(resolution_seq=2, rated=frozenset({1})), GiveFeedback(2, False), now=NOW
    )
    assert again.resolution_seq == 2


def test_satisfaction_is_one_to_five() -> None:
    for bad in (0, 6):
        with pytest.raises(InvalidSubmission):
            decide_feedback(state(), GiveFeedback(bad, True), now=NOW)


def test_a_matter_can_be_withdrawn_once_and_only_before_it_is_handled() -> None:
    open_matter = WithdrawalState("op_1", DISTRICT, withdrawn=False, finished=False)
    event = decide_withdrawal(open_matter, " 已经修好了 ", now=NOW)
    assert (event.opinion_id, event.reason, event.actor.role) == (
        "op_1",
        "已经修好了",
        ActorRole.RESIDENT,
    )
    for state, code in (
        (WithdrawalState("op_1", DISTRICT, withdrawn=True, finished=False), "already-withdrawn"),
        (WithdrawalState("op_1", DISTRICT, withdrawn=False, finished=True), "withdraw-too-late"),
    ):
        with pytest.raises(Refused) as refused:
            decide_withdrawal(state, None, now=NOW)
        assert refused.value.code == code
    with pytest.raises(InvalidSubmission):
        decide_withdrawal(open_matter, "因" * 501, now=NOW)


# --- control characters --------------------------------------------------------------


def test_control_characters_are_stripped_from_every_free_text_field() -> None:
    clean = check_submission(
        submission(
            text="楼道里\x01的灯坏了\x7f一个月了\n第二行\t完",
            category_hint="municipal.\x02road",
            community="中关村\x1b社区",
            address="东门\x00",
            contact=Contact("王\x0b秀英", "139\x0c1234 5678"),
            consent=True,
        )
    )
    assert clean.text == "楼道里的灯坏了一个月了\n第二行\t完"
    assert clean.category_hint == "municipal.road"
    assert clean.community == "中关村社区"
    assert clean.address == "东门"
    assert clean.name == "王秀英"
    assert clean.phone == "13912345678"
    event = decide_feedback(state(), GiveFeedback(4, True, "很\x08快\x7f"), now=NOW)
    assert event.comment == "很快"
    open_matter = WithdrawalState("op_1", DISTRICT, withdrawn=False, finished=False)
    assert decide_withdrawal(open_matter, "修\x1f好了", now=NOW).reason == "修好了"


def test_public_text_has_phone_and_id_numbers_masked() -> None:
    text = "我是13912345678，身份证110105199003071234，门牌12号"
    assert mask_personal_numbers(text) == "我是139****5678，身份证110105********1234，门牌12号"
