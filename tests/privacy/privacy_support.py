"""Every service on one database, driven as production drives them but without Kafka:
intake's app takes residents' opinions over HTTP, and :meth:`System.pump` hands every new
event of the store to the consumers of intake, routing, notification and reporting, as
the relay and Kafka would. Residents' matters are then worked by staff (reply, resolve,
close), rated by the resident and notified to them by SMS (to the local sink)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from contracts import Actor, ActorRole
from eventkit.auth import issue_token
from eventkit.db import connect, scope
from eventkit.identity import Role
from eventkit.local import free_port
from eventkit.privacy import PersonalDataVault
from eventkit.settings import Settings
from eventkit.store import START, Checkpoint, EventStore, verify_chains
from minqing.privacy import ResidentRights
from minqing.sink import Sink
from minqing.system import DEMO_DISTRICT_FILE
from services.intake.app import create_app as intake_app
from services.intake.bootstrap import Intake
from services.intake.settings import IntakeSettings
from services.notification.bootstrap import Notification
from services.notification.bootstrap import bootstrap as notification_bootstrap
from services.notification.settings import NotificationSettings
from services.reporting.bootstrap import Reporting
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from services.routing.bootstrap import Routing
from services.routing.bootstrap import bootstrap as routing_bootstrap
from services.routing.classification import JiebaSegmenter
from services.routing.district_file import parse_district_file
from services.routing.ids import transferred_case_id
from services.routing.settings import RoutingSettings
from services.routing.staff_commands import BY_NAME

SHANGHAI = ZoneInfo("Asia/Shanghai")
A: Final = "demo"
B: Final = "west"
"""District B: the demo district's file under another code (the same station codes)."""
STATION: Final = "dh_donghu"
ADMIN_ID: Final = "admin_demo"
ADMIN = Actor(id=ADMIN_ID, role=ActorRole.DISTRICT_ADMIN)
VERIFIER = Actor(id="admin_verify", role=ActorRole.DISTRICT_ADMIN)
"""Closes (核实结项) what ADMIN resolved: the one who resolved may not verify."""
PASSWORD: Final = "privacy-test-password-2026"
SCHEMAS: Final = (
    "intake",
    "routing",
    "notification",
    "reporting",
    "reporting_asof",
    "privacy",
    "consumers",
)
"""Every schema holding the services' copies (all but the event store)."""


@dataclass
class Clock:
    """The one clock of every service, moved by hand (Tuesday 29 September 2026, 10:00)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class Resident:
    """Who writes in, and what is unique to them (to be looked for everywhere)."""

    name: str
    phone: str
    text: str
    reply: str
    result: str
    comment: str
    attachment: str
    evidence: str
    """A photograph of the resolution (staff's evidence)."""
    action: str
    """What a summoned department says it did."""


@dataclass
class Matter:
    """A resident's opinion as it went through the system."""

    resident: Resident
    district: str
    opinion_id: str
    tracking_code: str
    case_id: str = ""


MATTERS: Final = {
    "甲": "小区东门的路灯坏了三个多月，晚上老人出门很不方便",
    "乙": "垃圾站每天下午才清运，夏天气味很大，希望改在早上清运",
    "丙": "夜里工地施工噪音太大，已经连续一周影响休息",
    "旧": "楼道里的消防通道被电动车堵住了，存在安全隐患",
    "西": "公交站的候车亭顶棚破了，下雨天没法等车",
    "近": "社区卫生服务站周末不开门，老人看病不方便",
    "开": "菜市场门口占道经营，早高峰车辆无法通行",
    "转": "小区门口的下水道井盖丢失，夜里行人容易踩空",
    "续": "河道边的护栏松动多处，孩子放学经过很危险",
    "公": "小区南门的路灯坏了两个多月，晚上老人出门很不方便",
    "部": "商铺油烟直排进居民楼，窗户都不敢打开",
}
"""What each resident writes about: different matters, so that none is taken for a
duplicate of another."""


def resident(tag: str, phone: str) -> Resident:
    """A resident whose every text carries ``tag``."""
    return Resident(
        name=f"居民{tag}",
        phone=phone,
        text=f"{tag}：{MATTERS[tag]}",
        reply=f"{tag}：已联系城管，本周内修复路灯",
        result=f"{tag}：路灯已修复",
        comment=f"{tag}：修得很快，谢谢",
        attachment=f"https://img.example.cn/{tag.encode().hex()}.jpg",
        evidence=f"https://img.example.cn/evidence/{tag.encode().hex()}.jpg",
        action=f"{tag}：城管执法队已到现场责令整改",
    )


@dataclass
class System:
    """The four services on the test's database, and the residents' rights on it."""

    settings: Settings
    store: EventStore
    clock: Clock
    client: httpx.AsyncClient
    intake: Intake
    routing: Routing
    notification: Notification
    reporting: Reporting
    sink: Sink
    rights: ResidentRights
    checkpoint: Checkpoint = START

    async def pump(self) -> None:
        """Hand every event not handed yet to every service's consumer, until none is
        left (a consumer's reaction appends events of its own)."""
        consumers = [
            self.intake.consumer,
            self.routing.consumer,
            self.notification.consumer,
            self.reporting.consumer,
        ]
        while batch := await self.store.read_all(self.checkpoint, limit=500):
            for recorded in batch:
                envelope = recorded.envelope()
                for consumer in consumers:
                    await consumer.apply(envelope)
                self.checkpoint = recorded.checkpoint

    async def submit(self, who: Resident, district: str) -> Matter:
        """The resident writes in on the QR form's API, with their contact and consent."""
        answer = await self.client.post(
            "/api/v1/opinions",
            json={
                "channel": "qr",
                "district": district,
                "station_code": STATION,
                "text": who.text,
                "location": {"community": "东湖社区", "address": "东门 3 号楼"},
                "contact": {"name": who.name, "phone": who.phone},
                "consent": True,
                "attachments": [who.attachment],
            },
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        await self.pump()
        case_id = await self._case_of(district, body["opinion_id"])
        code = body["tracking_code"].replace("-", "")  # as stored; the page takes both
        return Matter(who, district, body["opinion_id"], code, case_id)

    async def _case_of(self, district: str, opinion_id: str) -> str:
        async with self.routing.pool.acquire() as conn, conn.transaction():
            await scope(conn, district)
            case_id = await conn.fetchval(
                "SELECT case_id FROM routing.cases WHERE opinion_id = $1", opinion_id
            )
        assert case_id, "routing opened no case"
        return str(case_id)

    async def act(self, matter: Matter, command: str, actor: Actor, **body: Any) -> None:
        """A staff command on the matter's case, as the workbench's API runs it."""
        row = BY_NAME[command]
        await self.routing.casework.run(
            row, matter.district, matter.case_id, actor, row.body(**body), None
        )
        await self.pump()

    async def work_through(
        self, matter: Matter, *, public: bool = False, rate: bool = True
    ) -> None:
        """Accepted, replied, resolved, told by SMS, rated by the resident, closed (核实结项).
        ``public``: staff mark the reply and the resolution (with its evidence) public;
        ``rate``: the resident rates it through the tracking link (which follows a
        transfer: the rating names the case continued in the other district)."""
        who = matter.resident
        assert await self.status(matter) == "assigned", "routing classified and assigned it"
        await self.act(matter, "accept", ADMIN)
        await self.act(matter, "reply", ADMIN, message=who.reply, public=public)
        await self.act(
            matter, "resolve", ADMIN, result=who.result, evidence_urls=[who.evidence],
            public=public,
        )  # fmt: skip
        await self.notification.sender.send_due()
        if rate:
            rated = await self.client.post(
                f"/api/v1/track/{matter.tracking_code}/feedback",
                json={"satisfaction": 5, "resolved": True, "comment": who.comment},
            )
            assert rated.status_code == 201, rated.text
            await self.pump()
        status = await self.status(matter)
        if status == "resolved":
            await self.act(matter, "close", VERIFIER)
        await self.notification.sender.send_due()
        await self.pump()

    async def transfer(self, matter: Matter, to_district: str) -> Matter:
        """转办 to another district: the matter continues there as a case of its own."""
        await self.act(
            matter, "transfer", ADMIN, reason="属外区管辖，转办", to_district_id=to_district
        )
        there = Matter(
            matter.resident,
            to_district,
            matter.opinion_id,
            matter.tracking_code,
            transferred_case_id(matter.case_id, to_district),
        )
        assert await self.status(matter) == "transferred_out"
        return there

    async def open311(self, district: str, *, days: int = 89) -> str:
        """Everything Open311 publishes for the district over the last ``days`` (requests,
        each request alone, service request updates), as one text."""
        now = self.clock.now
        window = {
            "jurisdiction_id": district,
            "start_date": (now - timedelta(days=days)).isoformat(),
            "end_date": (now + timedelta(minutes=1)).isoformat(),
        }
        answers: list[Any] = []
        for path in ("requests", "servicerequestupdates"):
            response = await self.client.get(f"/open311/v2/{path}.json", params=window)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        for request in answers[0]:
            one = await self.client.get(
                f"/open311/v2/requests/{request['service_request_id']}.json",
                params={"jurisdiction_id": district},
            )
            assert one.status_code == 200, one.text
            answers.append(one.json())
        return json.dumps(answers, ensure_ascii=False)

    async def status(self, matter: Matter) -> str:
        async with self.routing.pool.acquire() as conn, conn.transaction():
            await scope(conn, matter.district)
            return str(
                await conn.fetchval(
                    "SELECT status FROM routing.cases WHERE case_id = $1", matter.case_id
                )
            )

    def staff_headers(self, district: str = A) -> dict[str, str]:
        token = issue_token(
            self.settings, role=Role.LIAISON, district_id=district, subject="lo_dh_02"
        )
        return {"Authorization": f"Bearer {token}"}


def _district_b() -> Any:
    text = DEMO_DISTRICT_FILE.read_text(encoding="utf-8").replace("code: demo", f"code: {B}", 1)
    return parse_district_file(text, source=f"{B}.yaml")


@contextlib.asynccontextmanager
async def running_system(
    settings: Settings, pool: asyncpg.Pool, segmenter: JiebaSegmenter
) -> AsyncIterator[System]:
    """Every service from its composition root on the test's pool, nothing in the
    background, both districts imported, an active district admin in each."""
    clock = Clock()
    sink = Sink(smtp_port=free_port(), http_port=free_port())
    await sink.start()
    own = settings.model_dump()
    intake_settings = IntakeSettings(
        **{
            **own,
            "public_base_url": "https://minqing.example.cn",
            "rate_submit_per_minute": 100_000,
            "rate_submit_burst": 100_000,
            "rate_read_per_minute": 100_000,
            "rate_read_burst": 100_000,
        }
    )
    routing_settings = RoutingSettings(
        **{
            **own,
            "routing_consume": False,
            "routing_scan_interval": 0,
            "routing_reception_plan_interval": 0,
            "routing_district_files": [],
            "routing_argon2_time_cost": 1,
            "routing_argon2_memory_kib": 8,
        }
    )
    notification_settings = NotificationSettings(
        **{
            **own,
            "notification_consume": False,
            "notification_send": False,
            "sms_gateway_url": f"http://127.0.0.1:{sink.http_port}/sms",
            "smtp_port": sink.smtp_port,
            "delivery_timeout": 2.0,
            "delivery_backoff": 0.01,
            "delivery_max_attempts": 2,
        }
    )
    reporting_settings = ReportingSettings(**own, reporting_consume=False)
    app = intake_app(intake_settings, pool=pool, clock=clock, background=False)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://intake.test"
            ) as client,
            routing_bootstrap(
                routing_settings, pool=pool, clock=clock, segmenter=segmenter, background=False
            ) as routing,
            notification_bootstrap(
                notification_settings, pool=pool, clock=clock, background=False
            ) as notification,
            reporting_bootstrap(
                reporting_settings, pool=pool, clock=clock, background=False
            ) as reporting,
        ):
            store = EventStore(pool)
            system = System(
                settings=settings,
                store=store,
                clock=clock,
                client=client,
                intake=app.state.intake,
                routing=routing,
                notification=notification,
                reporting=reporting,
                sink=sink,
                rights=ResidentRights(pool, PersonalDataVault(pool), clock),
            )
            await routing.directory.change(
                A,
                parse_district_file(
                    DEMO_DISTRICT_FILE.read_text(encoding="utf-8"), source="demo.yaml"
                ),
                ADMIN,
            )
            await routing.directory.change(B, _district_b(), ADMIN)
            for district in (A, B):
                for person in (ADMIN.id, VERIFIER.id):
                    invitation = await routing.accounts.invite(
                        district, person, Role.DISTRICT_ADMIN, ADMIN
                    )
                    await routing.accounts.accept_invitation(invitation.code, PASSWORD, PASSWORD)
            await system.pump()
            yield system
    finally:
        await sink.stop()


def minqing(*args: str, database_url: str, cwd: str) -> subprocess.CompletedProcess[str]:
    """The ``minqing`` command, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", *args],
        env={**os.environ, "MINQING_DATABASE_URL": database_url, "MINQING_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


async def rows_containing(database_url: str, needle: str, schemas: tuple[str, ...]) -> list[str]:
    """Every table of ``schemas`` with a row whose text contains ``needle`` (as the
    database's owner: no row is hidden)."""
    conn: asyncpg.Connection = await connect(database_url)
    try:
        tables = await conn.fetch(
            """
            SELECT table_schema, table_name FROM information_schema.tables
             WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'
            """,
            list(schemas),
        )
        found = []
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            count = await conn.fetchval(
                f"SELECT count(*) FROM {name} t WHERE t::text LIKE '%' || $1 || '%'", needle
            )
            if count:
                found.append(f"{name}: {count}")
        return found
    finally:
        await conn.close()


async def events_as_stored(database_url: str) -> list[tuple[object, ...]]:
    """Every event's id, data and hash, read as the database's owner (every district)."""
    conn: asyncpg.Connection = await connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT event_id, data, hash FROM eventstore.events ORDER BY global_position"
        )
        return [tuple(row) for row in rows]
    finally:
        await conn.close()


async def broken_chains(database_url: str) -> list[object]:
    """What ``verify_chains`` finds wrong, over every district."""
    conn: asyncpg.Connection = await connect(database_url)
    try:
        return list(await verify_chains(conn))
    finally:
        await conn.close()
