"""The HTTP edge every service shares: problems, request ids, body limit, roles."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import Depends, FastAPI

from eventkit.auth import issue_token
from eventkit.http import PROBLEM_JSON, Problem, bearer_principal, create_app, require_roles
from eventkit.identity import Principal, Role
from eventkit.settings import Settings

SETTINGS = Settings(
    jwt_secret="edge-test-secret-0123456789abcdef",
    privacy_key="edge-test-vault-0123456789abcdef",
    privacy_lookup_key="edge-test-index-0123456789abcdef",
)


def app() -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    service = create_app(service="test", title="test", lifespan=lifespan, max_body_bytes=1024)
    liaison_only = require_roles(bearer_principal(SETTINGS), Role.LIAISON)

    @service.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    @service.get("/conflict")
    async def conflict() -> None:
        raise Problem(409, "conflict", "状态冲突", "Conflict", "已办结", "Already resolved")

    @service.get("/mine")
    async def mine(who: Principal = Depends(liaison_only)) -> dict[str, str]:  # noqa: B008
        return {"subject": who.subject, "district": who.district_id}

    return service


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t")


async def test_a_request_id_is_echoed_or_made() -> None:
    async with client() as c:
        given = await c.post("/echo", json={"a": "b"}, headers={"X-Request-ID": "req-42"})
        made = await c.post("/echo", json={"a": "b"})
    assert given.headers["x-request-id"] == "req-42"
    assert len(made.headers["x-request-id"]) == 32


async def test_a_body_over_the_limit_is_refused_before_it_is_read() -> None:
    async with client() as c:
        response = await c.post(
            "/echo", content=b"x" * 2048, headers={"content-type": "text/plain"}
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["title"] == "请求内容过大"
    assert response.json()["title_en"] == "Request body too large"


async def test_problems_and_validation_errors_are_problem_documents_in_two_languages() -> None:
    async with client() as c:
        conflict = await c.get("/conflict")
        invalid = await c.post("/echo", json={"a": 1})
        missing = await c.get("/nowhere")
    assert conflict.status_code == 409
    assert conflict.json()["detail"] == "已办结"
    assert conflict.json()["detail_en"] == "Already resolved"
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "a"
    assert missing.status_code == 404
    assert missing.json()["title"] == "未找到"


async def test_roles_are_enforced_from_the_staff_token() -> None:
    def bearer(role: Role) -> dict[str, str]:
        token = issue_token(SETTINGS, role=role, district_id="demo", subject="s-1")
        return {"Authorization": f"Bearer {token}"}

    async with client() as c:
        anonymous = await c.get("/mine")
        forged = await c.get("/mine", headers={"Authorization": "Bearer not-a-token"})
        basic = await c.get("/mine", headers={"Authorization": "Basic dXNlcjpwdw=="})
        auditor = await c.get("/mine", headers=bearer(Role.AUDITOR))
        liaison = await c.get("/mine", headers=bearer(Role.LIAISON))
    assert anonymous.status_code == 401
    assert forged.status_code == 401
    assert forged.json()["title"] == "令牌无效或已过期"
    assert basic.status_code == 401
    assert basic.json()["title"] == "令牌格式不正确"
    assert anonymous.json()["title"] == "需要工作人员令牌"
    assert auditor.status_code == 403
    assert liaison.json() == {"subject": "s-1", "district": "demo"}


def test_secrets_left_at_their_development_default_are_named() -> None:
    from services.intake.settings import IntakeSettings

    default = Settings.model_fields["jwt_secret"].default
    assert "jwt_secret" in Settings(jwt_secret=default).development_secrets()
    assert SETTINGS.development_secrets() == []
    hash_default = IntakeSettings.model_fields["intake_hash_key"].default
    names = IntakeSettings(jwt_secret="x" * 40, intake_hash_key=hash_default).development_secrets()
    assert "intake_hash_key" in names
    assert "jwt_secret" not in names
