"""Secrets: development defaults never on the network, keys with ids that rotate without
downtime (staff tokens, the vault of residents' keys), and no secret in what the services
log, answer, document or record."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time

import asyncpg
import httpx
import jwt
import pytest
import structlog

from eventkit.auth import AuthError, issue_token, verify_token
from eventkit.db import district_transaction
from eventkit.identity import Role
from eventkit.keys import (
    DevelopmentSecretsRefused,
    KeyRing,
    KeyRingError,
    is_loopback,
    refuse_development_secrets,
)
from eventkit.privacy import PersonalDataVault, VaultKeyMissing, wrapped_with
from eventkit.settings import Settings
from tests.every_district import every_district
from tests.security.service_apps import SECRETS, admin_headers, build, prepare, secret_values

DEFAULTS = Settings()


def minqing(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MINQING_")}
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", *args],
        env={**clean, "MINQING_LOG_FORMAT": "json", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- development defaults ----------------------------------------------------------


def test_only_loopback_addresses_count_as_local() -> None:
    for host in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "intake.minqing.svc", ""):
        assert not is_loopback(host), host


def test_development_secrets_are_refused_beyond_loopback_and_named() -> None:
    refuse_development_secrets("127.0.0.1", DEFAULTS.development_secrets())  # fine locally
    with pytest.raises(DevelopmentSecretsRefused) as refused:
        refuse_development_secrets("0.0.0.0", DEFAULTS.development_secrets())
    assert "MINQING_JWT_SECRET" in str(refused.value)
    assert "MINQING_PRIVACY_KEY" in str(refused.value)
    set_all = Settings(**{k: v for k, v in SECRETS.items() if k in Settings.model_fields})
    refuse_development_secrets("0.0.0.0", set_all.development_secrets())
    # A development key kept as a "previous" key is as bad as the current one.
    sneaky = set_all.model_copy(update={"jwt_previous_secrets": {"k0": DEFAULTS.jwt_secret}})
    assert sneaky.development_secrets() == ["jwt_previous_secrets"]


def test_every_service_refuses_to_listen_beyond_loopback_with_a_development_secret() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MINQING_")}
    env = {
        **clean,
        "MINQING_HTTP_HOST": "0.0.0.0",
        "MINQING_LOG_FORMAT": "json",
        # Every shared secret set: each service still has one of its own at its default
        # (intake's hash key, routing's form secret, notification's SMS key) but reporting.
        "MINQING_JWT_SECRET": str(SECRETS["jwt_secret"]),
        "MINQING_PRIVACY_KEY": str(SECRETS["privacy_key"]),
        "MINQING_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    }
    expected = {
        "intake": "MINQING_INTAKE_HASH_KEY",
        "routing": "MINQING_ROUTING_FORM_SECRET",
        "notification": "MINQING_SMS_GATEWAY_KEY",
        "reporting": "MINQING_JWT_SECRET",
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env={
                **env,
                **({"MINQING_JWT_SECRET": DEFAULTS.jwt_secret} if name == "reporting" else {}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in expected
    }
    for name, process in processes.items():
        _, err = process.communicate(timeout=60)
        assert process.returncode != 0, name
        assert "拒绝启动" in err, err
        assert "Refusing to start" in err, err
        assert expected[name] in err, err
        assert '"event": "listening"' not in err, err


def test_token_issue_refuses_the_development_key_for_a_deployment() -> None:
    args = ("token", "issue", "--role", "liaison", "--district", "demo", "--subject", "lo-1")
    remote = minqing(*args, env={"MINQING_DATABASE_URL": "postgresql://db.example.cn/minqing"})
    assert remote.returncode != 0
    assert "MINQING_JWT_SECRET" in remote.stderr
    assert "--local" in remote.stderr
    assert remote.stdout == ""
    told = minqing(*args, "--local", env={"MINQING_DATABASE_URL": "postgresql://db/minqing"})
    assert told.returncode == 0, told.stderr
    local = minqing(*args, env={})  # the local stack's database
    assert local.returncode == 0, local.stderr
    assert verify_token(DEFAULTS, local.stdout.strip()).subject == "lo-1"
    real = minqing(
        *args,
        env={
            "MINQING_DATABASE_URL": "postgresql://db.example.cn/minqing",
            "MINQING_JWT_SECRET": str(SECRETS["jwt_secret"]),
            "MINQING_JWT_KEY_ID": "2026-12",
        },
    )
    assert real.returncode == 0, real.stderr
    assert jwt.get_unverified_header(real.stdout.strip())["kid"] == "2026-12"


def test_keys_new_prints_a_long_random_value() -> None:
    first, second = (minqing("keys", "new", env={}).stdout.strip() for _ in range(2))
    assert first != second
    assert len(first) >= 43


# --- staff tokens: key ids and rotation ----------------------------------------------


def test_a_token_names_its_key_and_stays_valid_after_the_key_rotates() -> None:
    old = Settings(jwt_secret="old-key-0123456789abcdef0123456789", jwt_key_id="2026-06")
    token = issue_token(old, role=Role.LIAISON, district_id="demo", subject="lo-1")
    assert jwt.get_unverified_header(token)["kid"] == "2026-06"

    rotated = Settings(
        jwt_secret="new-key-0123456789abcdef0123456789",
        jwt_key_id="2026-12",
        jwt_previous_secrets={"2026-06": "old-key-0123456789abcdef0123456789"},
    )
    assert verify_token(rotated, token).subject == "lo-1"
    fresh = issue_token(rotated, role=Role.LIAISON, district_id="demo", subject="lo-2")
    assert jwt.get_unverified_header(fresh)["kid"] == "2026-12"
    assert verify_token(rotated, fresh).subject == "lo-2"

    retired = rotated.model_copy(update={"jwt_previous_secrets": {}})
    with pytest.raises(AuthError, match="unknown or retired"):
        verify_token(retired, token)
    # The old key alone does not accept the new key's tokens.
    with pytest.raises(AuthError):
        verify_token(old, fresh)


def test_a_token_claiming_a_key_id_it_was_not_signed_with_is_refused() -> None:
    rotated = Settings(
        jwt_secret="new-key-0123456789abcdef0123456789",
        jwt_key_id="k2",
        jwt_previous_secrets={"k1": "old-key-0123456789abcdef0123456789"},
    )
    forged = jwt.encode(
        {"iss": "minqing", "sub": "x", "role": "district_admin", "district": "demo",
         "exp": int(time.time()) + 60},
        "guessed-key-0123456789abcdef012345",
        algorithm="HS256",
        headers={"kid": "k1"},
    )  # fmt: skip
    with pytest.raises(AuthError):
        verify_token(rotated, forged)
    # Tokens from before key ids (no kid) are tried against every configured key.
    legacy = jwt.encode(
        {"iss": "minqing", "sub": "x", "role": "liaison", "district": "demo",
         "exp": int(time.time()) + 60},
        "old-key-0123456789abcdef0123456789",
        algorithm="HS256",
    )  # fmt: skip
    assert verify_token(rotated, legacy).subject == "x"
    with pytest.raises(AuthError):
        verify_token(rotated, "not.a.token")


def test_key_ids_are_checked() -> None:
    with pytest.raises(KeyRingError):
        KeyRing("has space", "x")
    with pytest.raises(KeyRingError):
        KeyRing("k1", "x", {"k1": "y"})
    assert "x" not in repr(KeyRing("k1", "x-secret-value", {"k0": "y-secret"}))


# --- the vault's key: wrapping, rotation, rewrap ---------------------------------------


async def test_the_vault_key_rotates_without_losing_a_resident_and_rewrap_retires_it(
    pool: asyncpg.Pool, database_url: str
) -> None:
    first = KeyRing("v1", "vault-one-0123456789abcdef0123456789")
    async with district_transaction(pool, "demo") as conn:
        sealed = await PersonalDataVault(pool, first).seal(
            "demo", {"name": "王秀英", "phone": "13912345678"}, identifier="13912345678", conn=conn
        )
    stored = bytes(
        await every_district(pool).fetchval(
            "SELECT key FROM privacy.subject_keys WHERE subject_id = $1", sealed.subject_id
        )
    )
    assert wrapped_with(stored) == "v1"
    # A copy of the database alone opens nothing: the stored key is not the key.
    with pytest.raises(VaultKeyMissing):
        await PersonalDataVault(pool, KeyRing("other", "x" * 32)).open(
            sealed.subject_id, sealed.values
        )

    second = KeyRing("v2", "vault-two-0123456789abcdef0123456789", {"v1": first.current})
    vault = PersonalDataVault(pool, second)
    assert await vault.open(sealed.subject_id, sealed.values) == {
        "name": "王秀英",
        "phone": "13912345678",
    }
    async with district_transaction(pool, "demo") as conn:
        newcomer = await vault.seal("demo", {"name": "李四"}, identifier=None, conn=conn)
        # The same resident (same number) is found again across the rotation.
        again = await vault.seal("demo", {"name": "王"}, identifier="13912345678", conn=conn)
    assert again.subject_id == sealed.subject_id
    assert (
        wrapped_with(
            bytes(
                await every_district(pool).fetchval(
                    "SELECT key FROM privacy.subject_keys WHERE subject_id = $1",
                    newcomer.subject_id,
                )
            )
        )
        == "v2"
    )
    # A key stored in clear before wrapping existed still opens, and is wrapped below.
    legacy = os.urandom(32)
    await every_district(pool).execute(
        "INSERT INTO privacy.subject_keys (subject_id, district_id, key) VALUES ($1, $2, $3)",
        "subj_legacy",
        "demo",
        legacy,
    )
    assert (await vault.key("subj_legacy")) is not None

    # The services may not rewrite keys; the owner does, with the CLI.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await vault.rewrap()
    done = minqing(
        "keys",
        "rewrap",
        env={
            "MINQING_DATABASE_URL": database_url,
            "MINQING_PRIVACY_KEY": second.current,
            "MINQING_PRIVACY_KEY_ID": "v2",
            "MINQING_PRIVACY_PREVIOUS_KEYS": json.dumps({"v1": first.current}),
        },
    )
    assert done.returncode == 0, done.stderr
    assert "2 " in done.stdout  # the v1 key and the one in clear
    kids = {
        row["subject_id"]: wrapped_with(bytes(row["key"]))
        for row in await every_district(pool).fetch(
            "SELECT subject_id, key FROM privacy.subject_keys"
        )
    }
    assert set(kids.values()) == {"v2"}
    only_new = PersonalDataVault(pool, KeyRing("v2", second.current))
    assert (await only_new.open(sealed.subject_id, sealed.values) or {})["name"] == "王秀英"
    key = await only_new.key("subj_legacy")
    assert key is not None
    assert key.key == legacy
    # Without the key a key was wrapped with, the CLI says which one is missing.
    missing = minqing(
        "keys", "rewrap", env={"MINQING_DATABASE_URL": database_url, "MINQING_PRIVACY_KEY_ID": "v3"}
    )
    assert missing.returncode != 0
    assert "'v2'" in missing.stderr


# --- nothing secret in logs, answers, documents, events --------------------------------


def _problem_bodies(answers: list[httpx.Response]) -> list[str]:
    return [a.text for a in answers if a.headers.get("content-type", "").endswith("json")]


@pytest.mark.parametrize("service", ["intake", "routing", "notification", "reporting"])
async def test_no_secret_leaves_a_service_in_logs_answers_documents_or_events(
    service: str, settings: Settings, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    await prepare(settings, pool)
    service_settings, app = build(service, settings)
    secrets = secret_values()
    wrong_key = Settings(jwt_secret=str(SECRETS["privacy_key"]))  # signed with another secret
    forged = issue_token(wrong_key, role=Role.DISTRICT_ADMIN, district_id="demo", subject="x")
    caplog.set_level(logging.DEBUG)
    answers: list[httpx.Response] = []
    with structlog.testing.capture_logs() as logs:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://svc"
            ) as client,
        ):
            admin = admin_headers(service_settings)
            paths = [
                re.sub(r"\{(\w+)\}", lambda m: "demo" if "district" in m[1] else "x1", p)
                for p, item in app.openapi()["paths"].items()
                if "get" in item
            ]
            for path in paths[:14]:
                answers.append(await client.get(path, headers=admin))
                answers.append(
                    await client.get(path, headers={"Authorization": f"Bearer {forged}"})
                )
                answers.append(await client.get(path, headers={"Authorization": "Bearer x.y.z"}))
            answers.append(await client.post("/api/v1/opinions", content=b"{not json"))
            answers.append(await client.post("/api/v1/opinions", content=b"x" * 10_000_000))
            if service == "intake":
                answers.append(
                    await client.post(
                        "/api/v1/opinions",
                        json={
                            "channel": "qr",
                            "district": "demo",
                            "station_code": "dh_home",
                            "text": "楼道灯坏了，晚上看不见台阶",
                            "contact": {"name": "王秀英", "phone": "13912345678"},
                            "consent": True,
                        },
                    )
                )
                assert answers[-1].status_code == 201, answers[-1].text
            documents = [
                json.dumps(app.openapi(), ensure_ascii=False),
                (await client.get("/asyncapi")).text,
                (await client.get("/openapi.json")).text,
            ]
    assert any(a.status_code == 401 for a in answers)
    logged = json.dumps([str(entry) for entry in logs], ensure_ascii=False) + caplog.text
    events = "\n".join(
        f"{row['data']}{row['metadata']}"
        for row in await every_district(pool).fetch(
            "SELECT data::text, metadata::text FROM eventstore.events"
        )
    )
    for where, text in [
        ("logs", logged),
        ("answers", "\n".join(_problem_bodies(answers))),
        ("headers", "\n".join(str(dict(a.headers)) for a in answers)),
        ("documents", "\n".join(documents)),
        ("events", events),
    ]:
        for secret in secrets:
            assert secret not in text, f"a configured secret appears in {service}'s {where}"
        # Nor a resident's name and phone, which intake was given above.
        assert "13912345678" not in text or where == "answers", where
        assert "王秀英" not in text or where == "answers", where
