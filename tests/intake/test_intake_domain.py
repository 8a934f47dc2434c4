"""Intake's decisions without I/O: checks, permissions, codes, feedback, progress, formats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest

from contracts import ActorRole, Channel, OnBehalfOf
from contracts.cases import CaseEvent
from eventkit.auth import Principal, Role
from eventkit.privacy import SealError, SubjectKey, new_key, open_value, seal_value
from services.intake import open311_format as fmt
from services.intake.domain import (
    AmbiguousStation,
    ApiClient,
    CleanSubmission,
    Contact,
    FeedbackState,
    GiveFeedback,
    InvalidSubmission,
    NotAllowed,
    Place,
    Refused,
    StaffTokenRequired,
    StationInfo,
    SubmitOpinion,
    UnknownStation,
    authorize,
    check_submission,
    decide_feedback,
    format_tracking_code,
    locate,
    mask_personal_numbers,
    new_tracking_code,
    normalise_phone,
    normalise_tracking_code,
    on_behalf_of,
    opinion_submitted,
)
from services.intake.hotline import RowRejected, parse_time, parse_work_order
from services.intake.progress import (
    CaseProgress,
    Names,
    Stage,
    Step,
    UpdateStatus,
    describe,
    evolve,
    open311_status,
)
from services.intake.ratelimit import RateLimiter, client_address, retry_after_header
from services.intake.settings import IntakeSettings
from services.intake.taxonomy import parse_taxonomy
from tests.intake.intake_support import (
    DISTRICT,
    REPRESENTATIVE,
    STATION,
    TAXONOMY_YAML,
    case_events,
)

NOW = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
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
    assert refused.value.status == 401
    actor = authorize(submission(channel=channel), staff(Role.LIAISON), PLACE)
    assert actor.role is ActorRole.LIAISON


def test_public_channels_need_no_token() -> None:
    for channel in (Channel.QR, Channel.ONLINE):
        assert authorize(submission(channel=channel), None, PLACE).role is ActorRole.RESIDENT


def test_staff_act_only_in_their_own_district() -> None:
    with pytest.raises(NotAllowed) as refused:
        authorize(submission(channel=Channel.WALK_IN), staff(Role.LIAISON, "other"), PLACE)
    assert refused.value.code == "wrong-district"
    assert refused.value.status == 403


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


# --- feedback ------------------------------------------------------------------------


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
    assert refused.value.status == 409
    again = decide_feedback(
        state(resolution_seq=2, rated=frozenset({1})), GiveFeedback(2, False), now=NOW
    )
    assert again.resolution_seq == 2


def test_satisfaction_is_one_to_five() -> None:
    for bad in (0, 6):
        with pytest.raises(InvalidSubmission):
            decide_feedback(state(), GiveFeedback(bad, True), now=NOW)


# --- progress ------------------------------------------------------------------------


def fold(*events: CaseEvent) -> tuple[CaseProgress, list[Step]]:
    progress: CaseProgress | None = None
    steps = []
    for event in events:
        progress, step = evolve(progress, event, str(uuid.uuid4()))
        steps.append(step)
    assert progress is not None
    return progress, steps


def test_a_case_goes_from_opened_to_closed_with_open311_statuses() -> None:
    e = case_events("case_1", "op_1")
    progress, steps = fold(
        e["opened"], e["assigned"], e["accepted"], e["replied"], e["resolved"], e["closed"]
    )
    assert [s.status for s in steps] == [
        UpdateStatus.OPEN,
        UpdateStatus.INVESTIGATING,
        UpdateStatus.IN_PROGRESS,
        UpdateStatus.IN_PROGRESS,
        UpdateStatus.FIXED,
        UpdateStatus.CLOSED,
    ]
    assert progress.stage is Stage.CLOSED
    assert progress.resolved
    assert progress.resolution_seq == 1
    assert (progress.station_code, progress.representative_id) == (STATION, REPRESENTATIVE)
    assert open311_status(progress.stage) == "closed"
    assert CaseProgress.from_json(progress.to_json()) == progress
    assert [Step.from_json(s.to_json()) for s in steps] == steps


def test_a_reopened_case_is_open_again_until_its_next_resolution() -> None:
    e = case_events("case_1", "op_1")
    progress, steps = fold(e["opened"], e["resolved"], e["reopened"])
    assert progress.stage is Stage.IN_PROGRESS
    assert not progress.resolved
    assert steps[-1].status is UpdateStatus.REOPEN
    assert open311_status(progress.stage) == "open"
    progress, _ = evolve(progress, e["resolved_again"], "x")
    assert progress.resolved
    assert progress.resolution_seq == 2


def test_a_case_event_before_its_opening_is_refused() -> None:
    from services.intake.progress import NotOpened

    with pytest.raises(NotOpened):
        evolve(None, case_events("case_1", "op_1")["assigned"], "x")


def test_steps_are_told_in_plain_words() -> None:
    e = case_events("case_1", "op_1")
    _, steps = fold(e["opened"], e["assigned"], e["accepted"], e["resolved"])
    names = Names(
        stations={STATION: "中关村街道人大代表之家"},
        representatives={REPRESENTATIVE: "李建华"},
        categories={"municipal.street_light": ("路灯照明", "Street lights")},
    )
    words = [describe(s, names) for s in steps]
    assert words[0][0].startswith("已受理，归入「路灯照明」类，应于")
    assert words[1] == (
        "已分派至中关村街道人大代表之家，由李建华代表办理",
        "Assigned to 中关村街道人大代表之家, handled by representative 李建华",
    )
    assert words[2][0] == "李建华代表已接手办理"
    assert words[3][0] == "已办结：三盏路灯已更换为LED灯具"


def test_a_transfer_to_another_district_is_not_this_districts_responsibility() -> None:
    from contracts import CaseTransferred

    e = case_events("case_1", "op_1")
    transfer = CaseTransferred(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        to_district_id="chaoyang",
        reason="属地在朝阳区",
    )
    progress, steps = fold(e["opened"], transfer)
    assert steps[-1].status is UpdateStatus.NOT_COUNCILS_RESPONSIBILITY
    assert progress.stage is Stage.TRANSFERRED_OUT
    assert describe(steps[-1], Names(districts={"chaoyang": "朝阳区"}))[0] == "已转交朝阳区办理"


def test_a_duplicate_is_merged_and_reported_as_such() -> None:
    from contracts import CaseLinked

    e = case_events("case_1", "op_1")
    link = CaseLinked(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        related_case_id="case_0",
        relation="duplicate",
        reason="同一处路灯",
    )
    progress, steps = fold(e["opened"], link)
    assert steps[-1].status is UpdateStatus.DUPLICATE
    assert progress.stage is Stage.MERGED
    assert open311_status(progress.stage) == "closed"


# --- limits --------------------------------------------------------------------------


def test_the_token_bucket_allows_a_burst_then_one_per_interval() -> None:
    clock = [0.0]
    limiter = RateLimiter(per_minute=6, burst=2, clock=lambda: clock[0])
    assert limiter.take("1.2.3.4") == 0.0
    assert limiter.take("1.2.3.4") == 0.0
    wait = limiter.take("1.2.3.4")
    assert wait == pytest.approx(10.0)
    assert retry_after_header(wait) == "10"
    assert limiter.take("5.6.7.8") == 0.0  # another address has its own bucket
    clock[0] = 10.0
    assert limiter.take("1.2.3.4") == 0.0


def test_the_client_address_is_read_through_trusted_proxies_only() -> None:
    settings = IntakeSettings(trusted_proxies=["10.0.0.0/8"])
    trusted = settings.trusted_proxy_networks
    assert client_address("10.1.2.3", "203.0.113.9, 10.0.0.5", trusted) == "203.0.113.9"
    # A client cannot pick its own bucket by sending the header itself.
    assert client_address("198.51.100.7", "203.0.113.9", trusted) == "198.51.100.7"
    assert client_address("10.1.2.3", None, trusted) == "10.1.2.3"


def test_open311_api_keys_are_per_district() -> None:
    settings = IntakeSettings(open311_api_keys={DISTRICT: ["k1"]})
    assert settings.api_key_valid(DISTRICT, "k1")
    assert not settings.api_key_valid(DISTRICT, "k2")
    assert not settings.api_key_valid("other", "k1")


# --- formats -------------------------------------------------------------------------


def test_open311_errors_are_an_errors_document_in_both_formats() -> None:
    xml = fmt.render_errors("xml", [(403, "Invalid api_key received")])
    assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(xml)
    assert root.tag == "errors"
    assert [(e.findtext("code"), e.findtext("description")) for e in root] == [
        ("403", "Invalid api_key received")
    ]
    assert fmt.render_errors("json", [(403, "x")]) == b'[{"code": 403, "description": "x"}]'


def test_open311_nested_lists_use_the_specifications_element_names() -> None:
    document = fmt.discovery("https://m.example.cn", "联络办", NOW, SHANGHAI)
    root = ET.fromstring(fmt.render_object("xml", "discovery", document))
    endpoint = root.find("endpoints/endpoint")
    assert endpoint is not None
    assert endpoint.findtext("url") == "https://m.example.cn/open311/v2"
    assert [f.text for f in endpoint.findall("formats/format")] == [
        "text/xml",
        "application/json",
    ]
    assert root.findtext("changeset") == "2025-03-14T09:30:00+08:00"


def test_open311_dates_are_w3c_with_their_offset() -> None:
    assert fmt.w3c(NOW, SHANGHAI) == "2025-03-14T09:30:00+08:00"
    assert fmt.parse_w3c("2025-03-14T01:30:00Z", SHANGHAI) == NOW
    assert fmt.parse_w3c("2025-03-14", SHANGHAI) == datetime(2025, 3, 14, tzinfo=SHANGHAI)
    assert fmt.parse_w3c("2025-03-14T09:30:00", SHANGHAI) == NOW
    with pytest.raises(ValueError, match="Invalid isoformat"):
        fmt.parse_w3c("yesterday", SHANGHAI)


def test_public_text_has_phone_and_id_numbers_masked() -> None:
    text = "我是13912345678，身份证110105199003071234，门牌12号"
    assert mask_personal_numbers(text) == "我是139****5678，身份证110105********1234，门牌12号"


def test_the_taxonomy_file_gives_categories_with_their_groups() -> None:
    import yaml

    taxonomy = parse_taxonomy(DISTRICT, yaml.safe_load(TAXONOMY_YAML))
    assert [c.code for c in taxonomy.categories] == [
        "municipal.street_light",
        "municipal.road",
        "property.elevator",
    ]
    light = taxonomy.get("municipal.street_light")
    assert light is not None
    assert (light.group, light.keywords) == ("市政设施", ("路灯", "不亮", "照明"))
    assert parse_taxonomy(DISTRICT, {"unexpected": True}).categories == ()


# --- 12345 rows ----------------------------------------------------------------------


def test_a_work_order_row_is_checked_on_its_own() -> None:
    fields = {
        "number": "2025031400731",
        "called_at": "2025-03-14 09:30:00",
        "text": "小区门口井盖松动",
        "attachments": "https://img.example.cn/1.jpg; https://img.example.cn/2.jpg",
        "lat": "39.9",
        "long": "116.3",
    }
    order = parse_work_order(2, fields, tz=SHANGHAI, now=NOW + timedelta(hours=1))
    assert order.called_at == NOW
    assert order.attachments == ("https://img.example.cn/1.jpg", "https://img.example.cn/2.jpg")
    command = order.command(DISTRICT)
    assert command.channel is Channel.HOTLINE_12345
    assert command.external_ref == "2025031400731"
    with pytest.raises(RowRejected, match="call time"):
        parse_work_order(3, {**fields, "called_at": "昨天"}, tz=SHANGHAI, now=NOW)
    with pytest.raises(RowRejected, match="number is missing"):
        parse_work_order(4, {**fields, "number": " "}, tz=SHANGHAI, now=NOW)
    with pytest.raises(RowRejected, match="future"):
        parse_work_order(5, fields, tz=SHANGHAI, now=NOW - timedelta(days=1))


def test_call_times_are_read_as_the_hotline_writes_them() -> None:
    for text in (
        "2025-03-14 09:30:00",
        "2025/03/14 09:30",
        "2025年3月14日 9:30",
        "2025-03-14T01:30Z",
    ):
        assert parse_time(text, SHANGHAI) == NOW


# --- sealing -------------------------------------------------------------------------


def test_a_sealed_value_opens_only_for_its_subject_and_field() -> None:
    subject = SubjectKey("subj_a", new_key())
    token = seal_value(subject, "phone", "13912345678")
    assert token.startswith("mq1.")
    assert "13912345678" not in token
    assert open_value(subject, "phone", token) == "13912345678"
    with pytest.raises(SealError):
        open_value(subject, "name", token)  # moved to another field
    with pytest.raises(SealError):
        open_value(SubjectKey("subj_b", subject.key), "phone", token)  # to another subject
    with pytest.raises(SealError):
        open_value(SubjectKey("subj_a", new_key()), "phone", token)  # another key
    assert "key" not in repr(subject).replace("SubjectKey", "")


def test_a_reclassified_case_keeps_its_status_and_takes_the_new_deadline() -> None:
    from contracts import CaseClassified, Priority

    e = case_events("case_1", "op_1")
    later = NOW + timedelta(days=5)
    change = CaseClassified(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        category_code="safety",
        priority=Priority.URGENT,
        reason="涉及燃气",
        resolution_due=later,
    )
    progress, steps = fold(e["opened"], e["assigned"], change)
    assert steps[-1].status is UpdateStatus.INVESTIGATING
    assert (progress.category_code, progress.priority) == ("safety", "urgent")
    assert progress.resolution_due == later
    words = describe(steps[-1], Names(categories={"safety": ("安全隐患", "Safety hazards")}))
    assert words[0] == "已调整分类为「安全隐患」，应于2025年03月19日前办结"


def test_a_merged_case_and_a_withdrawn_one_are_closed_for_open311() -> None:
    from contracts import CaseClosed, CaseMerged

    e = case_events("case_1", "op_1")
    merged = CaseMerged(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        into_case_id="case_0",
        reason="同一处路灯",
    )
    progress, steps = fold(e["opened"], merged)
    assert (progress.stage, steps[-1].status) == (Stage.MERGED, UpdateStatus.DUPLICATE)
    assert progress.linked_case_id == "case_0"
    withdrawn = CaseClosed(
        district_id=DISTRICT,
        occurred_at=NOW,
        actor=e["opened"].actor,
        case_id="case_1",
        withdrawn=True,
    )
    progress, steps = fold(e["opened"], withdrawn)
    assert progress.stage is Stage.WITHDRAWN
    assert open311_status(progress.stage) == "closed"
    assert describe(steps[-1], Names())[0] == "已按您的要求撤回，不再办理"
    assert not progress.resolved


def test_a_matter_can_be_withdrawn_once_and_only_before_it_is_handled() -> None:
    from services.intake.domain import WithdrawalState, decide_withdrawal

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


# --- control characters ------------------------------------------------------------------


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
    from services.intake.domain import WithdrawalState, decide_withdrawal

    open_matter = WithdrawalState("op_1", DISTRICT, withdrawn=False, finished=False)
    assert decide_withdrawal(open_matter, "修\x1f好了", now=NOW).reason == "修好了"


def test_the_xml_writer_drops_characters_xml_does_not_allow() -> None:
    body = fmt.render_list(
        "xml", "service_requests", "request", [{"description": "坏\x01了\ufffe\x7f\n"}]
    )
    root = ET.fromstring(body)
    assert root.findtext("request/description") == "坏了\x7f\n"
