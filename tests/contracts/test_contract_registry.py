"""The event registry: every contract round-trips, is frozen, and old shapes are upcast."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from contracts import (
    REGISTRY,
    ActivityKind,
    ActivityRecorded,
    Actor,
    ActorRole,
    AuditSealed,
    CalendarYear,
    CallbackRecorded,
    CaseAccepted,
    CaseAssigned,
    CaseClassified,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseLinked,
    CaseMerged,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    Channel,
    ClassifierTrained,
    CommunityRegistered,
    DeadlinePair,
    DepartmentRated,
    DepartmentRegistered,
    DepartmentReportedIn,
    DepartmentResponded,
    DepartmentRetired,
    DistrictRegistered,
    Event,
    FeedbackSubmitted,
    LatLong,
    Location,
    Monthly,
    NotificationFailed,
    NotificationSent,
    OnBehalfOf,
    OpinionSubmitted,
    OpinionSubmittedV1,
    OpinionWithdrawn,
    PersonalDataOpened,
    Priority,
    PriorityDeadlines,
    QrScansRecorded,
    ReceptionDayCancelled,
    ReceptionDayMoved,
    ReceptionDayScheduled,
    ReceptionRule,
    ReceptionRulesPublished,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    RepresentativeLevel,
    RepresentativeRegistered,
    RepresentativeRetired,
    RoutingPolicyPublished,
    ScoredCandidate,
    ScoreWeights,
    SealedStream,
    SpokespersonRegistered,
    SpokespersonRetired,
    StaffMemberRegistered,
    StaffMemberRetired,
    StaffMemberRole,
    StationKind,
    StationMoved,
    StationRegistered,
    StationRetired,
    StorePosition,
    StreetRegistered,
    SubmitterRef,
    SuggestionAnswered,
    TaxonomyCategory,
    TaxonomyPublished,
    UnknownEventType,
    WorkCalendarPublished,
    serialize,
)
from contracts.envelope import Envelope, Metadata
from contracts.staff import (
    ResidentContactOpened,
    StaffInvited,
    StaffLocked,
    StaffPasswordSet,
    StaffRetired,
)
from eventkit.cloudevents import ce_type

BEIJING = timezone(timedelta(hours=8))
WHEN = datetime(2025, 3, 14, 9, 30, tzinfo=BEIJING)
DISTRICT = "haidian"
OPINION_ID = "op_20250314_0007"
CASE_ID = "case_20250314_0007"
STATION = "st_zgc_01"
REPRESENTATIVE = "rep_0042"
LIAISON = Actor(id="staff_0012", role=ActorRole.LIAISON)
SYSTEM = Actor(id="routing", role=ActorRole.SYSTEM)
RESIDENT = Actor(id="subj_7f3a9c", role=ActorRole.RESIDENT)


def _common(actor: Actor = LIAISON) -> dict[str, Any]:
    return {"district_id": DISTRICT, "occurred_at": WHEN, "actor": actor}


def opinion_submitted() -> OpinionSubmitted:
    return OpinionSubmitted(
        **_common(RESIDENT),
        opinion_id=OPINION_ID,
        channel=Channel.QR,
        text="小区东门的三盏路灯坏了三个多月，晚上老人出门买菜很不方便，希望尽快修好。",
        category_hint="市政设施",
        location=Location(
            station_code=STATION,
            community="中关村南路社区",
            address="海淀区中关村南大街12号院东门",
            lat=39.9621,
            long=116.3245,
        ),
        submitter=SubmitterRef(
            subject_id="subj_7f3a9c", name_ciphertext="gAAAAB...", phone_ciphertext="gAAAAC..."
        ),
        on_behalf_of=OnBehalfOf(role="spokesperson", staff_id="sp_0031"),
        attachments=["https://files.minqing.cn/haidian/op_20250314_0007/1.jpg"],
        external_ref="12345-20250314-000731",
    )


def opinion_withdrawn() -> OpinionWithdrawn:
    return OpinionWithdrawn(
        **_common(RESIDENT), opinion_id=OPINION_ID, reason="物业已经自行修好了，不再需要处理。"
    )


def feedback_submitted() -> FeedbackSubmitted:
    return FeedbackSubmitted(
        **_common(RESIDENT),
        opinion_id=OPINION_ID,
        case_id=CASE_ID,
        resolution_seq=1,
        satisfaction=5,
        resolved=True,
        comment="代表第二天就来现场看了，一周内修好，非常满意。",
    )


def case_opened() -> CaseOpened:
    return CaseOpened(
        **_common(SYSTEM),
        case_id=CASE_ID,
        opinion_id=OPINION_ID,
        category_code="municipal.street_light",
        matched_keywords=["路灯", "坏了"],
        priority=Priority.IMPORTANT,
        response_due=WHEN + timedelta(days=1),
        resolution_due=WHEN + timedelta(days=15),
        deadlines_provisional=False,
    )


def case_assigned() -> CaseAssigned:
    return CaseAssigned(
        **_common(SYSTEM),
        case_id=CASE_ID,
        station_code=STATION,
        representative_id=REPRESENTATIVE,
        queue="representative",
        reason="代表居住在该社区，且熟悉市政设施类问题。",
        candidates=[
            ScoredCandidate(
                representative_id=REPRESENTATIVE,
                score=0.87,
                components={"proximity": 0.5, "expertise": 0.3, "load": 0.07},
            ),
            ScoredCandidate(
                representative_id="rep_0057", score=0.61, components={"proximity": 0.4}
            ),
        ],
    )


def case_accepted() -> CaseAccepted:
    return CaseAccepted(
        **_common(Actor(id=REPRESENTATIVE, role=ActorRole.REPRESENTATIVE)), case_id=CASE_ID
    )


def case_transferred() -> CaseTransferred:
    return CaseTransferred(
        **_common(),
        case_id=CASE_ID,
        to_district_id="chaoyang",
        to_station_code="st_wj_02",
        to_representative_id=None,
        reason="路灯归属朝阳区市政管理，转交属地处理。",
    )


def case_escalated() -> CaseEscalated:
    return CaseEscalated(
        **_common(),
        case_id=CASE_ID,
        to_level="street",
        to_name="中关村街道城市管理办公室",
        due=WHEN + timedelta(days=3),
        reason="涉及线路改造，需要街道协调供电公司。",
    )


def case_replied() -> CaseReplied:
    return CaseReplied(
        **_common(),
        case_id=CASE_ID,
        message="您好，已联系街道城管办，维修人员将于本周五前到场检修。",
    )


def case_resolved() -> CaseResolved:
    return CaseResolved(
        **_common(),
        case_id=CASE_ID,
        resolution_seq=1,
        result="三盏路灯已全部更换为LED灯具，经夜间巡查确认正常照明。",
        evidence_urls=["https://files.minqing.cn/haidian/case_20250314_0007/after.jpg"],
    )


def case_closed() -> CaseClosed:
    return CaseClosed(**_common(), case_id=CASE_ID, note="居民回访满意，核实结项。")


def case_reopened() -> CaseReopened:
    return CaseReopened(
        **_common(RESIDENT),
        case_id=CASE_ID,
        reason="修好两天后又不亮了。",
        representative_id=REPRESENTATIVE,
    )


def case_overdue() -> CaseOverdue:
    return CaseOverdue(
        **_common(SYSTEM),
        case_id=CASE_ID,
        deadline="response",
        due=WHEN + timedelta(days=1),
        escalated_to="中关村街道人大工委",
    )


def case_linked() -> CaseLinked:
    return CaseLinked(
        **_common(),
        case_id=CASE_ID,
        related_case_id="case_20250310_0003",
        relation="duplicate",
        reason="同一处路灯，此前已有居民反映。",
    )


def case_converted_to_suggestion() -> CaseConvertedToSuggestion:
    return CaseConvertedToSuggestion(
        **_common(Actor(id=REPRESENTATIVE, role=ActorRole.REPRESENTATIVE)),
        case_id=CASE_ID,
        representative_id=REPRESENTATIVE,
        title="关于加快老旧小区公共照明改造的建议",
        reply_due=WHEN + timedelta(days=90),
    )


def district_registered() -> DistrictRegistered:
    return DistrictRegistered(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        name_zh="海淀区",
        name_en="Haidian District",
        timezone="Asia/Shanghai",
    )


def station_registered() -> StationRegistered:
    return StationRegistered(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        station_code=STATION,
        name_zh="中关村街道人大代表之家",
        kind=StationKind.HOME,
        street_code="zgc",
        street_name_zh="中关村街道",
        communities=["中关村南路社区", "科育社区"],
        address="海淀区中关村南大街12号",
        position=LatLong(lat=39.9601, long=116.3229),
        star_rating=4,
    )


def representative_registered() -> RepresentativeRegistered:
    return RepresentativeRegistered(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        representative_id=REPRESENTATIVE,
        name_zh="李建华",
        level=RepresentativeLevel.DISTRICT,
        electoral_district="第十二选区",
        residence_community="中关村南路社区",
        expertise=["市政设施", "老旧小区改造"],
        contact_point=STATION,
        leading_cadre=False,
    )


def representative_joined_station() -> RepresentativeJoinedStation:
    return RepresentativeJoinedStation(
        **_common(), representative_id=REPRESENTATIVE, station_code=STATION
    )


def representative_left_station() -> RepresentativeLeftStation:
    return RepresentativeLeftStation(
        **_common(), representative_id=REPRESENTATIVE, station_code=STATION
    )


def reception_day_scheduled() -> ReceptionDayScheduled:
    return ReceptionDayScheduled(
        **_common(),
        representative_id=REPRESENTATIVE,
        station_code=STATION,
        day=date(2025, 3, 20),
        starts_at=time(9, 0),
        ends_at=time(11, 30),
    )


def case_classified() -> CaseClassified:
    return CaseClassified(
        **_common(),
        case_id=CASE_ID,
        category_code="municipal.street_light",
        priority=Priority.URGENT,
        reason="路灯倒伏压住电线，存在触电危险，升为要事。",
        response_due=WHEN + timedelta(hours=2),
        resolution_due=WHEN + timedelta(hours=24),
    )


def case_merged() -> CaseMerged:
    return CaseMerged(
        **_common(),
        case_id="case_20250315_0002",
        into_case_id=CASE_ID,
        reason="同一处路灯的重复反映，并入原件办理。",
    )


def station_moved() -> StationMoved:
    return StationMoved(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        station_code=STATION,
        street_code="zgc",
        communities=["中关村南路社区", "科育社区", "黄庄社区"],
        address="海淀区中关村南大街18号",
        position=LatLong(lat=39.9612, long=116.3237),
    )


def station_retired() -> StationRetired:
    return StationRetired(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        station_code="st_zgc_07",
        reason="并入中关村街道人大代表之家。",
    )


def representative_retired() -> RepresentativeRetired:
    return RepresentativeRetired(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        representative_id="rep_0057",
        reason="任期届满。",
    )


def street_registered() -> StreetRegistered:
    return StreetRegistered(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        street_code="zgc",
        name_zh="中关村街道",
        committee_name_zh="中关村街道人大工委",
        supervisors=["ss_zgc_01"],
    )


def community_registered() -> CommunityRegistered:
    return CommunityRegistered(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        community="中关村南路社区",
        street_code="zgc",
        electoral_district="第十二选区",
        position=LatLong(lat=39.9618, long=116.3241),
    )


def taxonomy_published() -> TaxonomyPublished:
    return TaxonomyPublished(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        version=3,
        categories=[
            TaxonomyCategory(
                code="municipal.street_light",
                name_zh="路灯照明",
                name_en="Street lighting",
                keywords=["路灯", "照明"],
                expertise=["市政设施"],
                deadlines=PriorityDeadlines(normal=DeadlinePair(response="1wd", resolution="10wd")),
            )
        ],
        urgent_keywords=["燃气泄漏", "着火", "电线裸露"],
        important_keywords=["老人", "学校"],
        urgent_category="municipal.street_light",
        default_deadlines=PriorityDeadlines(
            normal=DeadlinePair(response="2wd", resolution="15wd"),
            important=DeadlinePair(response="1wd", resolution="10wd"),
            urgent=DeadlinePair(response="2h", resolution="24h"),
        ),
    )


def work_calendar_published() -> WorkCalendarPublished:
    return WorkCalendarPublished(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        version=2,
        office_opens=time(8, 30),
        office_closes=time(17, 30),
        years=[
            CalendarYear(
                year=2027,
                complete=False,
                days_off=[date(2027, 1, 1), date(2027, 10, 1)],
                working_days=[],
                note="按法定节日预估，国务院公布安排后补全。",
            )
        ],
    )


def routing_policy_published() -> RoutingPolicyPublished:
    return RoutingPolicyPublished(
        **_common(Actor(id="admin_01", role=ActorRole.DISTRICT_ADMIN)),
        version=1,
        weights=ScoreWeights(expertise=4.0),
        max_open_cases=15,
        escalation_ladder=["station_head", "street", "district"],
        supervision="1wd",
    )


def notification_sent() -> NotificationSent:
    return NotificationSent(
        **_common(SYSTEM),
        notification_id="ntf_000913",
        source_event_id=UUID("0195a3c4-7d2e-7b61-9f0a-3c5d2e8b1a47"),
        recipient=REPRESENTATIVE,
        channel="sms",
        template="case_assigned",
        attempts=1,
    )


def notification_failed() -> NotificationFailed:
    return NotificationFailed(
        **_common(SYSTEM),
        notification_id="ntf_000914",
        source_event_id=UUID("0195a3c4-7d2e-7b61-9f0a-3c5d2e8b1a48"),
        recipient="staff_0012",
        channel="wecom",
        template="case_overdue",
        attempts=5,
        error="企业微信接口返回 errcode=60020：不可信的IP。",
    )


def classifier_trained() -> ClassifierTrained:
    return ClassifierTrained(
        **_common(Actor(id="admin-wang", role=ActorRole.DISTRICT_ADMIN)),
        version=2,
        taxonomy_version=3,
        method="char-ngram-tfidf+linear-svc+logistic-urgency",
        model_digest="7b" * 32,
        hyperparameters={"ngram_max": 2, "c": 1.0, "keyword_weight": 0.2},
        examples_digest="11" * 32,
        examples=945,
        corrections=37,
        corrections_digest="22" * 32,
        corrections_through=StorePosition(transaction_id=90211, global_position=188410),
        heldout_digest="33" * 32,
        heldout_accuracy=0.9295,
        heldout_urgent_recall=1.0,
        urgency_threshold=0.22,
        replaced_version=1,
        libraries={"scikit-learn": "1.7.2", "numpy": "2.3.4", "scipy": "1.16.3"},
    )


def audit_sealed() -> AuditSealed:
    return AuditSealed(
        **_common(Actor(id="sealer", role=ActorRole.SYSTEM)),
        seal_seq=2,
        after_transaction_id=7410,
        after_position=18233,
        through_transaction_id=7702,
        through_position=19011,
        events=2,
        total_events=920,
        previous_digest="3f" * 32,
        digest="a0" * 32,
        streams=[
            SealedStream(
                stream_id=f"case-{CASE_ID}", first_version=4, last_version=5, head_hash="5c" * 32
            ),
        ],
    )


def personal_data_opened() -> PersonalDataOpened:
    return PersonalDataOpened(
        **_common(Actor(id="auditor-li", role=ActorRole.AUDITOR)),
        case_id=CASE_ID,
        opinion_ids=[OPINION_ID],
        subject_ids=["subj_7f3a9c"],
        fields=["name", "phone"],
        reason="人大常委会信访复核",
    )


ADMIN_ACTOR = Actor(id="admin_demo", role=ActorRole.DISTRICT_ADMIN)


def staff_invited() -> StaffInvited:
    return StaffInvited(
        **_common(ADMIN_ACTOR),
        person_id="lo_dh_01",
        role="liaison",
        expires_at=datetime(2025, 3, 17, 9, 30, tzinfo=UTC),
    )


def staff_password_set() -> StaffPasswordSet:
    return StaffPasswordSet(**_common(), person_id="lo_dh_01", role="liaison")


def staff_locked() -> StaffLocked:
    return StaffLocked(
        **_common(),
        person_id="lo_dh_01",
        failures=5,
        until=datetime(2025, 3, 14, 10, 15, tzinfo=UTC),
    )


def staff_retired() -> StaffRetired:
    return StaffRetired(**_common(ADMIN_ACTOR), person_id="lo_dh_01", reason="调离联络站")


def resident_contact_opened() -> ResidentContactOpened:
    return ResidentContactOpened(
        **_common(),
        person_id="lo_dh_01",
        case_id=CASE_ID,
        opinion_id=OPINION_ID,
        subject_id="subj_7f3a9c",
        fields=["name", "phone"],
        reason="回访居民",
    )


def department_registered() -> DepartmentRegistered:
    return DepartmentRegistered(
        **_common(ADMIN_ACTOR),
        department_code="chengguan",
        name_zh="区城市管理局",
        duty_staff=["dept_chengguan", "cg_01"],
        report_in="1wd",
        respond_in="5wd",
        categories=["urban_management"],
    )


def department_retired() -> DepartmentRetired:
    return DepartmentRetired(
        **_common(ADMIN_ACTOR), department_code="chengguan", reason="机构改革并入综合执法局"
    )


def staff_member_registered() -> StaffMemberRegistered:
    return StaffMemberRegistered(
        **_common(ADMIN_ACTOR),
        staff_id="cm_zgc_01",
        role=StaffMemberRole.COMMUNITY_COMMISSIONER,
        name_zh="邵志强",
        street_code="zgc",
        communities=["中关村南路社区"],
    )


def staff_member_retired() -> StaffMemberRetired:
    return StaffMemberRetired(**_common(ADMIN_ACTOR), staff_id="cm_zgc_01", reason="岗位调整")


def spokesperson_registered() -> SpokespersonRegistered:
    return SpokespersonRegistered(
        **_common(),
        station_code=STATION,
        spokesperson_id="sp_zgc_01",
        name_zh="王桂英",
        community="中关村南路社区",
        appointed_on=date(2025, 3, 1),
    )


def spokesperson_retired() -> SpokespersonRetired:
    return SpokespersonRetired(
        **_common(), station_code=STATION, spokesperson_id="sp_zgc_01", reason="迁出本社区"
    )


def activity_recorded() -> ActivityRecorded:
    return ActivityRecorded(
        **_common(),
        station_code=STATION,
        activity_id="act_zgc_0301",
        kind=ActivityKind.RECEPTION,
        title="3月代表进站接待日",
        held_on=date(2025, 3, 13),
        starts_at=time(9, 0),
        ends_at=time(11, 30),
        representatives=[REPRESENTATIVE, "rep_0043"],
        spokespersons=["sp_zgc_01"],
        residents_met=9,
        opinions_taken=4,
        reception_day=date(2025, 3, 13),
        location="中关村街道人大代表之家接待室",
        summary="接待居民反映停车和加装电梯问题，当场答复3件",
    )


def reception_day_cancelled() -> ReceptionDayCancelled:
    return ReceptionDayCancelled(
        **_common(),
        representative_id=REPRESENTATIVE,
        station_code=STATION,
        day=date(2025, 3, 18),
        reason="代表外出学习",
    )


def reception_day_moved() -> ReceptionDayMoved:
    return ReceptionDayMoved(
        **_common(),
        representative_id=REPRESENTATIVE,
        station_code=STATION,
        day=date(2025, 3, 18),
        to_day=date(2025, 3, 20),
        starts_at=time(14, 0),
        ends_at=time(16, 30),
        reason="与区人代会会期冲突",
    )


def reception_rules_published() -> ReceptionRulesPublished:
    return ReceptionRulesPublished(
        **_common(ADMIN_ACTOR),
        representative_id=REPRESENTATIVE,
        rules=[
            ReceptionRule(
                station_code=STATION,
                monthly=Monthly(week=3, weekday=2),
                starts_at=time(14, 0),
                ends_at=time(17, 0),
            )
        ],
    )


DEPARTMENT_ACTOR = Actor(id="cg_01", role=ActorRole.DEPARTMENT)


def department_reported_in() -> DepartmentReportedIn:
    return DepartmentReportedIn(
        **_common(DEPARTMENT_ACTOR),
        case_id=CASE_ID,
        department_code="chengguan",
        whistle_seq=1,
        note="已派执法中队",
    )


def department_responded() -> DepartmentResponded:
    return DepartmentResponded(
        **_common(DEPARTMENT_ACTOR),
        case_id=CASE_ID,
        department_code="chengguan",
        whistle_seq=1,
        action="已取缔占道摊位并加强巡查",
        evidence_urls=["https://files.minqing.cn/haidian/after.jpg"],
    )


def department_rated() -> DepartmentRated:
    return DepartmentRated(
        **_common(),
        case_id=CASE_ID,
        department_code="chengguan",
        whistle_seq=1,
        rating=4,
        comment="响应及时",
    )


def callback_recorded() -> CallbackRecorded:
    return CallbackRecorded(
        **_common(),
        case_id=CASE_ID,
        resolution_seq=1,
        satisfaction=5,
        resolved=True,
        comment="居民表示路灯已修好",
    )


def suggestion_answered() -> SuggestionAnswered:
    return SuggestionAnswered(
        **_common(),
        case_id=CASE_ID,
        answer="已纳入明年道路照明改造计划",
        answered_by="区城市管理局",
    )


def qr_scans_recorded() -> QrScansRecorded:
    return QrScansRecorded(
        **_common(Actor(id="intake", role=ActorRole.SYSTEM)),
        station_code=STATION,
        day=date(2025, 3, 14),
        scans=153,
        opinions=4,
    )


FACTORIES: dict[str, Callable[[], Event]] = {
    "OpinionSubmitted": opinion_submitted,
    "OpinionWithdrawn": opinion_withdrawn,
    "FeedbackSubmitted": feedback_submitted,
    "CaseOpened": case_opened,
    "CaseAssigned": case_assigned,
    "CaseAccepted": case_accepted,
    "CaseTransferred": case_transferred,
    "CaseEscalated": case_escalated,
    "CaseReplied": case_replied,
    "CaseResolved": case_resolved,
    "CaseClosed": case_closed,
    "CaseReopened": case_reopened,
    "CaseOverdue": case_overdue,
    "CaseLinked": case_linked,
    "CaseConvertedToSuggestion": case_converted_to_suggestion,
    "CaseClassified": case_classified,
    "CaseMerged": case_merged,
    "StationMoved": station_moved,
    "StationRetired": station_retired,
    "RepresentativeRetired": representative_retired,
    "StreetRegistered": street_registered,
    "CommunityRegistered": community_registered,
    "TaxonomyPublished": taxonomy_published,
    "WorkCalendarPublished": work_calendar_published,
    "RoutingPolicyPublished": routing_policy_published,
    "DistrictRegistered": district_registered,
    "StationRegistered": station_registered,
    "RepresentativeRegistered": representative_registered,
    "RepresentativeJoinedStation": representative_joined_station,
    "RepresentativeLeftStation": representative_left_station,
    "ReceptionDayScheduled": reception_day_scheduled,
    "NotificationSent": notification_sent,
    "NotificationFailed": notification_failed,
    "ClassifierTrained": classifier_trained,
    "AuditSealed": audit_sealed,
    "PersonalDataOpened": personal_data_opened,
    "StaffInvited": staff_invited,
    "StaffPasswordSet": staff_password_set,
    "StaffLocked": staff_locked,
    "StaffRetired": staff_retired,
    "ResidentContactOpened": resident_contact_opened,
    "DepartmentRegistered": department_registered,
    "DepartmentRetired": department_retired,
    "StaffMemberRegistered": staff_member_registered,
    "StaffMemberRetired": staff_member_retired,
    "SpokespersonRegistered": spokesperson_registered,
    "SpokespersonRetired": spokesperson_retired,
    "ActivityRecorded": activity_recorded,
    "ReceptionDayCancelled": reception_day_cancelled,
    "ReceptionDayMoved": reception_day_moved,
    "ReceptionRulesPublished": reception_rules_published,
    "DepartmentReportedIn": department_reported_in,
    "DepartmentResponded": department_responded,
    "DepartmentRated": department_rated,
    "CallbackRecorded": callback_recorded,
    "SuggestionAnswered": suggestion_answered,
    "QrScansRecorded": qr_scans_recorded,
}

EVENT_TYPES = sorted(FACTORIES)
ALL_MODELS = list(REGISTRY.models())


def _over_the_wire(data: dict[str, Any]) -> dict[str, Any]:
    # What a consumer gets back: JSON text, as in the store's jsonb column or a Kafka value.
    result: dict[str, Any] = json.loads(json.dumps(data, ensure_ascii=False))
    return result


def test_there_is_a_factory_for_every_registered_event_type() -> None:
    registered = sorted(model.event_type for model in REGISTRY.current_models())
    assert registered == EVENT_TYPES


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_round_trips_through_serialize_and_parse(event_type: str) -> None:
    event = FACTORIES[event_type]()
    assert type(event) is REGISTRY.latest(event_type)

    parsed = REGISTRY.parse(event_type, event.schema_version, _over_the_wire(serialize(event)))

    assert type(parsed) is type(event)
    assert parsed == event
    assert serialize(parsed) == serialize(event)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_events_are_frozen(event_type: str) -> None:
    event = FACTORIES[event_type]()
    with pytest.raises(ValidationError, match="frozen"):
        event.district_id = "chaoyang"  # type: ignore[misc]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: f"{m.event_type}.v{m.schema_version}")
def test_every_event_carries_district_occurred_at_and_actor(model: type[Event]) -> None:
    for name in ("district_id", "occurred_at", "actor"):
        assert name in model.model_fields, f"{model.__name__} lacks {name}"
        assert model.model_fields[name].is_required(), f"{model.__name__}.{name} is optional"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_knows_its_stream(event_type: str) -> None:
    event = FACTORIES[event_type]()
    assert event.stream_id.startswith(f"{event.stream_category}-")
    assert event.stream_id != f"{event.stream_category}-"


def test_a_naive_occurred_at_is_rejected() -> None:
    data = serialize(case_closed())
    data["occurred_at"] = "2025-03-14T09:30:00"
    with pytest.raises(ValidationError, match="timezone"):
        REGISTRY.parse("CaseClosed", 1, data)


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: f"{m.event_type}.v{m.schema_version}")
def test_ce_type_names_context_event_and_version(model: type[Event]) -> None:
    value = ce_type(model.event_type, model.schema_version)
    assert re.fullmatch(
        r"cn\.minqing\.(intake|routing|directory|notification|audit)\.[A-Z][A-Za-z]+\.v[1-9][0-9]*",
        value,
    )
    assert value == f"cn.minqing.{model.context}.{model.event_type}.v{model.schema_version}"


def test_ce_type_examples() -> None:
    assert ce_type("CaseOpened", 1) == "cn.minqing.routing.CaseOpened.v1"
    assert ce_type("OpinionSubmitted", 1) == "cn.minqing.intake.OpinionSubmitted.v1"
    assert ce_type("OpinionSubmitted", 2) == "cn.minqing.intake.OpinionSubmitted.v2"


def test_ce_type_of_a_version_newer_than_this_code_keeps_its_context() -> None:
    # The relay must publish what a newer writer stored, never stall on it.
    assert ce_type("CaseOpened", 7) == "cn.minqing.routing.CaseOpened.v7"


def test_ce_type_of_a_type_this_code_never_heard_of_says_unknown() -> None:
    assert ce_type("CaseVanished", 1) == "cn.minqing.unknown.CaseVanished.v1"


def test_an_unknown_event_type_raises_unknown_event_type() -> None:
    with pytest.raises(UnknownEventType, match="CaseVanished"):
        REGISTRY.parse("CaseVanished", 1, serialize(case_closed()))
    assert not REGISTRY.knows("CaseVanished")


def test_a_schema_version_newer_than_known_raises() -> None:
    with pytest.raises(UnknownEventType, match="newer than this code knows"):
        REGISTRY.parse("CaseOpened", 2, serialize(case_opened()))
    with pytest.raises(UnknownEventType, match="newer than this code knows"):
        REGISTRY.parse("OpinionSubmitted", 4, serialize(opinion_submitted()))


@pytest.mark.parametrize(
    "district_id", ["", "Haidian", "hai-dian", "1haidian", "海淀", "h" * 33, "haidian "]
)
def test_an_invalid_district_id_is_rejected(district_id: str) -> None:
    data = serialize(case_closed())
    data["district_id"] = district_id
    with pytest.raises(ValidationError, match="district_id"):
        REGISTRY.parse("CaseClosed", 1, data)


def test_a_valid_district_id_is_accepted() -> None:
    data = serialize(case_closed())
    data["district_id"] = "xicheng_2"
    assert REGISTRY.parse("CaseClosed", 1, data).district_id == "xicheng_2"


def _stored_v1(**flat: Any) -> dict[str, Any]:
    """An OpinionSubmitted as stored before v2, in its JSON form."""
    data: dict[str, Any] = {
        "district_id": DISTRICT,
        "occurred_at": "2024-11-02T19:05:00+08:00",
        "actor": {"id": "subj_7f3a9c", "role": "resident"},
        "opinion_id": "op_20241102_0101",
        "channel": "walk_in",
        "text": "菜市场门口占道经营严重，早高峰电动车和行人挤在一起，存在安全隐患。",
        "category_hint": "市容环境",
        "submitter": {"subject_id": "subj_7f3a9c"},
        "on_behalf_of": None,
        "attachments": [],
        **flat,
    }
    # It was a valid v1 event: the historical model still accepts it.
    OpinionSubmittedV1.model_validate(data)
    return data


def test_a_stored_v1_opinion_is_upcast_with_its_location_gathered() -> None:
    data = _stored_v1(
        station_code=STATION,
        community="科育社区",
        address="海淀区科学院南路菜市场东门",
        lat=39.9785,
        long=116.3301,
    )

    event = REGISTRY.parse("OpinionSubmitted", 1, data)

    assert type(event) is OpinionSubmitted
    assert event.schema_version == 3
    assert event.location == Location(
        station_code=STATION,
        community="科育社区",
        address="海淀区科学院南路菜市场东门",
        lat=39.9785,
        long=116.3301,
    )
    assert event.text == data["text"]
    assert event.occurred_at == datetime(2024, 11, 2, 11, 5, tzinfo=UTC)
    assert event.submitter == SubmitterRef(subject_id="subj_7f3a9c")
    assert event.external_ref is None
    assert "station_code" not in serialize(event)
    assert "lat" not in serialize(event)


def test_a_stored_v1_opinion_with_some_location_fields_null_keeps_the_others() -> None:
    data = _stored_v1(station_code=None, community="科育社区", lat=None, long=None)

    event = REGISTRY.parse("OpinionSubmitted", 1, data)

    assert isinstance(event, OpinionSubmitted)
    assert event.location == Location(community="科育社区")


def test_a_stored_v1_opinion_without_location_fields_gets_an_empty_location() -> None:
    event = REGISTRY.parse("OpinionSubmitted", 1, _stored_v1())

    assert isinstance(event, OpinionSubmitted)
    assert event.location == Location()


def test_the_upcaster_leaves_the_stored_data_untouched() -> None:
    data = _stored_v1(station_code=STATION)
    before = json.dumps(data, sort_keys=True)

    REGISTRY.parse("OpinionSubmitted", 1, data)

    assert json.dumps(data, sort_keys=True) == before


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_envelope_wrap_then_event_round_trips(event_type: str) -> None:
    event = FACTORIES[event_type]()

    envelope = Envelope.wrap(event, metadata=Metadata(correlation_id="req-5f1c"))
    received = Envelope.model_validate_json(envelope.model_dump_json())

    assert envelope.event(REGISTRY) == event
    assert received.event(REGISTRY) == event
    assert received.event_type == event_type
    assert received.schema_version == event.schema_version
    assert received.stream_id == event.stream_id
    assert received.district_id == event.district_id
    assert received.occurred_at == event.occurred_at
    assert received.event_id == envelope.event_id
    assert received.metadata.correlation_id == "req-5f1c"


def test_an_envelope_holding_a_v1_opinion_gives_the_v2_event() -> None:
    data = _stored_v1(community="科育社区")
    envelope = Envelope(
        event_type="OpinionSubmitted",
        schema_version=1,
        stream_id="opinion-op_20241102_0101",
        district_id=DISTRICT,
        occurred_at=datetime(2024, 11, 2, 19, 5, tzinfo=BEIJING),
        data=data,
    )

    event = envelope.event(REGISTRY)

    assert isinstance(event, OpinionSubmitted)
    assert event.location == Location(community="科育社区")
    assert event.stream_id == envelope.stream_id


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_parse_json_gives_what_parse_gives(event_type: str) -> None:
    # Rebuilds validate events straight from the store's JSON text: the same event as
    # decoding the text first and validating the dict.
    event = FACTORIES[event_type]()
    text = json.dumps(serialize(event), ensure_ascii=False)

    from_text = REGISTRY.parse_json(event_type, event.schema_version, text)

    assert from_text == REGISTRY.parse(event_type, event.schema_version, json.loads(text))
    assert from_text == event


def test_parse_json_upcasts_an_older_version() -> None:
    data = _stored_v1(station_code=STATION, community="科育社区", lat=39.9785, long=116.3301)

    event = REGISTRY.parse_json("OpinionSubmitted", 1, json.dumps(data, ensure_ascii=False))

    assert event == REGISTRY.parse("OpinionSubmitted", 1, data)
    assert event.schema_version == 3


def test_parse_json_refuses_what_parse_refuses() -> None:
    event = FACTORIES["CaseOpened"]()
    data = {k: v for k, v in serialize(event).items() if k != "case_id"}

    with pytest.raises(ValidationError):
        REGISTRY.parse_json("CaseOpened", event.schema_version, json.dumps(data))
    with pytest.raises(ValidationError):
        REGISTRY.parse("CaseOpened", event.schema_version, data)
