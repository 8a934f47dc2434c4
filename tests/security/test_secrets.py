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
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import structlog
from starlette.requests import Request

from eventkit.auth import AuthError, issue_token, verify_token
from eventkit.db import district_transaction
from eventkit.http.sessions import CsrfRefused, PreSessionForms, SessionCookie
from eventkit.identity import Role
from eventkit.keys import (
    DevelopmentSecretsRefused,
    KeyRing,
    KeyRingError,
    is_loopback,
    refuse_development_secrets,
)
from eventkit.privacy import PersonalDataVault, VaultKeyMissing, wrapped_with
from eventkit.service import check_development_secrets
from eventkit.settings import Settings, mask_url_password
from minqing.system import local_stack_environment
from services.intake.errors import IdempotencyKeyReused
from services.intake.idempotency import IdempotencyKey, stored_answer
from services.intake.settings import IntakeSettings
from services.notification import subscriptions
from services.notification.channels import Delivered, Outcome, Outgoing, SmsGateway
from services.notification.messages import Message
from services.notification.settings import NotificationSettings
from services.notification.signing import KEY_ID_HEADER, signed_headers
from services.notification.signing import verify as verify_signature
from services.notification.subscriptions import sealed_with
from services.routing.settings import RoutingSettings
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


DEPLOYED_DB = "postgresql://minqing_intake:db-pw-5d1e9a@db.internal:5432/minqing"


def test_a_loopback_process_given_a_database_of_its_own_refuses_development_secrets() -> None:
    # 127.0.0.1 behind a reverse proxy on the same host is on the network all the same.
    with pytest.raises(DevelopmentSecretsRefused) as refused:
        refuse_development_secrets(
            "127.0.0.1", DEFAULTS.development_secrets(), database_url=DEPLOYED_DB
        )
    assert "MINQING_DATABASE_URL" in str(refused.value)
    assert "MINQING_JWT_SECRET" in str(refused.value)
    assert "db-pw-5d1e9a" not in str(refused.value)  # never quotes the URL


def test_the_local_stacks_children_keep_the_development_secrets_on_loopback() -> None:
    refuse_development_secrets(
        "127.0.0.1", DEFAULTS.development_secrets(), database_url=DEPLOYED_DB, local_stack=True
    )
    # ... but not beyond loopback, flag or no flag.
    with pytest.raises(DevelopmentSecretsRefused):
        refuse_development_secrets(
            "0.0.0.0", DEFAULTS.development_secrets(), database_url=DEPLOYED_DB, local_stack=True
        )


def test_a_public_address_that_is_not_this_machine_refuses_development_secrets() -> None:
    with pytest.raises(DevelopmentSecretsRefused) as refused:
        refuse_development_secrets(
            "127.0.0.1",
            DEFAULTS.development_secrets(),
            public_base_url="https://minqing.example.cn",
            local_stack=True,
        )
    assert "MINQING_PUBLIC_BASE_URL" in str(refused.value)
    for local in ("http://127.0.0.1:8001", "http://localhost:8001/", "http://[::1]:8001"):
        refuse_development_secrets(
            "127.0.0.1", DEFAULTS.development_secrets(), public_base_url=local
        )


def test_what_the_local_stack_gives_its_children_lets_them_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("MINQING_")]:
        monkeypatch.delenv(name)
    environment = local_stack_environment({})
    assert environment["MINQING_LOCAL_STACK"] == "1"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # The stack tells each child its database (minqing/stack.py).
    monkeypatch.setenv("MINQING_DATABASE_URL", "postgresql://postgres@/postgres?host=/tmp/x")
    check_development_secrets(Settings(), "127.0.0.1")
    monkeypatch.delenv("MINQING_LOCAL_STACK")
    with pytest.raises(DevelopmentSecretsRefused):
        check_development_secrets(Settings(), "127.0.0.1")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"MINQING_DATABASE_URL": DEPLOYED_DB}, "MINQING_DATABASE_URL"),
        ({"MINQING_PUBLIC_BASE_URL": "https://minqing.example.cn"}, "MINQING_PUBLIC_BASE_URL"),
    ],
)
def test_a_service_on_loopback_that_looks_deployed_refuses_to_start(
    extra: dict[str, str], named: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MINQING_")}
    done = subprocess.run(
        [sys.executable, "-m", "services.reporting"],
        env={**clean, "MINQING_HTTP_HOST": "127.0.0.1", "MINQING_LOG_FORMAT": "json", **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "拒绝启动" in done.stderr
    assert named in done.stderr
    assert "db-pw-5d1e9a" not in done.stderr
    assert '"event": "listening"' not in done.stderr


def test_a_printed_settings_object_masks_the_password_of_a_url() -> None:
    shown = Settings(database_url=DEPLOYED_DB)
    assert "db-pw-5d1e9a" not in repr(shown)
    assert "db-pw-5d1e9a" not in str(shown)
    assert "minqing_intake:********@db.internal:5432" in repr(shown)
    assert mask_url_password("postgresql://u@h/d") == "postgresql://u@h/d"
    assert mask_url_password("http://127.0.0.1:8001") == "http://127.0.0.1:8001"


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


# --- the other signing and hashing keys: ids and overlapping rotation ------------------

OLD_FORM = "form-old-0123456789abcdef0123456789"
NEW_FORM = "form-new-0123456789abcdef0123456789"


def _form_request(nonce: str) -> Request:
    cookie = f"minqing_workbench_form={nonce}".encode()
    scope = {
        "type": "http",
        "scheme": "http",
        "path": "/",
        "query_string": b"",
        "headers": [(b"cookie", cookie)],
    }
    return Request(scope)


def _forms(keys: KeyRing) -> PreSessionForms:
    return PreSessionForms(keys, SessionCookie("minqing_workbench_form"))


def test_a_form_token_names_its_key_and_stays_valid_after_the_form_secret_rotates() -> None:
    request = _form_request("nonce-of-this-browser")
    token, _ = _forms(KeyRing("2026-06", OLD_FORM)).token(request)
    assert token.startswith("2026-06:")
    rotated = _forms(KeyRing("2026-12", NEW_FORM, {"2026-06": OLD_FORM}))
    rotated.check(request, token)  # drawn before the rotation: accepted
    fresh, _ = rotated.token(request)
    assert fresh.startswith("2026-12:")
    rotated.check(request, fresh)
    retired = _forms(KeyRing("2026-12", NEW_FORM))
    with pytest.raises(CsrfRefused):
        retired.check(request, token)
    # A token naming a key it was not signed with is refused.
    with pytest.raises(CsrfRefused):
        rotated.check(request, "2026-12:" + token.partition(":")[2])


def test_routing_reads_the_form_keys_from_its_settings() -> None:
    ring = RoutingSettings(
        routing_form_secret=NEW_FORM,
        routing_form_key_id="2026-12",
        routing_form_previous_secrets={"2026-06": OLD_FORM},
    ).form_keys()
    assert ring.get("2026-06") == OLD_FORM
    assert ring.current_id == "2026-12"
    sneaky = RoutingSettings(
        routing_form_secret=NEW_FORM,
        routing_form_previous_secrets={"k0": RoutingSettings().routing_form_secret},
    )
    assert "routing_form_previous_secrets" in sneaky.development_secrets()


class _CapturedSms(SmsGateway):
    def __init__(self, keys: KeyRing) -> None:
        super().__init__("http://gateway.invalid/sms", keys, timeout=1)
        self.sent: list[tuple[dict[str, str], bytes]] = []

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        self.sent.append((headers, body))
        return Delivered()


async def _sms_with(keys: KeyRing) -> tuple[dict[str, str], bytes, int]:
    gateway = _CapturedSms(keys)
    at = datetime.now(UTC)
    outgoing = Outgoing(uuid.uuid4(), Message("【民情】", "测试"), at, "13912345678")
    await gateway.send(outgoing)
    headers, body = gateway.sent[0]
    return headers, body, int(at.timestamp())


async def test_sms_requests_are_signed_with_the_previous_key_too_until_it_is_dropped() -> None:
    old, new = "sms-old-0123456789abcdef0123456789", "sms-new-0123456789abcdef0123456789"
    headers, body, now = await _sms_with(KeyRing("2026-12", new, {"2026-06": old}))
    assert headers[KEY_ID_HEADER] == "2026-12 2026-06"
    assert verify_signature(old, headers, body, now)  # a gateway not yet switched
    assert verify_signature(new, headers, body, now)  # a gateway already switched
    headers, body, now = await _sms_with(KeyRing("2026-12", new))
    assert headers[KEY_ID_HEADER] == "2026-12"
    assert not verify_signature(old, headers, body, now)  # the retired key signs nothing


def test_notification_reads_the_sms_keys_from_its_settings() -> None:
    ring = NotificationSettings(
        sms_gateway_key="sms-new-0123456789abcdef0123456789",
        sms_gateway_key_id="2026-12",
        sms_gateway_previous_keys={"2026-06": "sms-old-0123456789abcdef0123456789"},
    ).sms_gateway_keys()
    assert [kid for kid, _ in ring.all()] == ["2026-12", "2026-06"]


async def test_a_retry_hashed_with_the_previous_intake_hash_key_is_still_recognised(
    pool: asyncpg.Pool,
) -> None:
    old, new = b"hash-old-0123456789abcdef0123456789", b"hash-new-0123456789abcdef0123456789"
    payload = {"text": "楼道灯坏了", "contact": {"phone": "13912345678"}}
    before = IdempotencyKey.of("public", "retry-0001", payload, secret=old)
    async with district_transaction(pool, "demo") as conn:
        await conn.execute(
            "INSERT INTO intake.idempotency_keys "
            "(scope, key, request_hash, status, response, district_id) "
            "VALUES ($1, $2, $3, 201, $4, 'demo')",
            before.scope,
            before.key,
            before.request_hash,
            {"tracking_code": "T-1"},
        )
    rotated = IntakeSettings(
        intake_hash_key=new.decode(),
        intake_hash_key_id="2026-12",
        intake_hash_previous_keys={"2026-06": old.decode()},
    )
    assert rotated.intake_hash_secrets == (new, old)
    after = IdempotencyKey.of("public", "retry-0001", payload, secret=rotated.intake_hash_secrets)
    async with pool.acquire() as conn:
        assert await stored_answer(conn, after) == {"tracking_code": "T-1"}
    retired = IdempotencyKey.of("public", "retry-0001", payload, secret=(new,))
    async with pool.acquire() as conn:
        with pytest.raises(IdempotencyKeyReused):
            await stored_answer(conn, retired)
    # What is stored from now on is hashed with the current key.
    assert after.request_hash == IdempotencyKey.of("public", "k", payload, secret=new).request_hash


# --- webhook subscription secrets: sealed in the database -------------------------------


async def test_a_webhook_secret_is_sealed_in_the_database_and_still_signs(
    pool: asyncpg.Pool,
) -> None:
    keys = KeyRing("v1", "vault-one-0123456789abcdef0123456789")
    now = datetime.now(UTC)
    async with district_transaction(pool, "demo") as conn:
        created = await subscriptions.create(
            conn, "demo", "12345", "https://hook.example.cn/x", [], "admin_demo", now, keys=keys
        )
    stored = await every_district(pool).fetchval(
        "SELECT secret FROM notification.subscriptions WHERE subscription_id = $1",
        created.subscription_id,
    )
    assert created.secret.startswith("whsec_")
    assert stored != created.secret
    assert created.secret not in stored
    assert sealed_with(stored) == "v1"
    async with district_transaction(pool, "demo") as conn:
        found = await subscriptions.get(conn, "demo", created.subscription_id)
    signing = found.secrets_at(now, keys)
    assert signing == [created.secret]
    body = b'{"specversion": "1.0"}'
    headers = signed_headers(signing, int(now.timestamp()), body)
    assert verify_signature(created.secret, headers, body, int(now.timestamp()))
    # Without the vault key that sealed it, nothing signs (a copy of the database alone).
    with pytest.raises(VaultKeyMissing):
        found.secrets_at(now, KeyRing("v2", "vault-two-0123456789abcdef0123456789"))


async def test_a_webhook_secret_in_clear_still_signs_and_is_sealed_on_the_next_write_or_rewrap(
    pool: asyncpg.Pool, database_url: str
) -> None:
    first = KeyRing("v1", "vault-one-0123456789abcdef0123456789")
    now = datetime.now(UTC)
    for sid in ("sub_legacy_one", "sub_legacy_two"):
        await every_district(pool).execute(
            "INSERT INTO notification.subscriptions (subscription_id, district_id, name, url, "
            "secret, status, created_at, created_by, updated_at) "
            "VALUES ($1, 'demo', 'old', 'https://hook.example.cn/y', $2, 'active', $3, 'a', $3)",
            sid,
            f"whsec_clear_{sid}",
            now,
        )
    async with district_transaction(pool, "demo") as conn:
        legacy = await subscriptions.get(conn, "demo", "sub_legacy_one")
        assert legacy.secrets_at(now, first) == ["whsec_clear_sub_legacy_one"]
        await subscriptions.set_status(conn, "demo", "sub_legacy_one", "paused", now, keys=first)

    def stored(sid: str) -> Any:
        return every_district(pool).fetchval(
            "SELECT secret FROM notification.subscriptions WHERE subscription_id = $1", sid
        )

    assert sealed_with(await stored("sub_legacy_one")) == "v1"
    assert await stored("sub_legacy_two") == "whsec_clear_sub_legacy_two"

    # The vault key rotates: `minqing keys rewrap` seals the rest, and seals again.
    second = KeyRing("v2", "vault-two-0123456789abcdef0123456789", {"v1": first.current})
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
    assert "2 webhook" in done.stdout
    only_new = KeyRing("v2", second.current)
    for sid in ("sub_legacy_one", "sub_legacy_two"):
        assert sealed_with(await stored(sid)) == "v2"
        async with district_transaction(pool, "demo") as conn:
            found = await subscriptions.get(conn, "demo", sid)
        assert found.secrets_at(now, only_new) == [f"whsec_clear_{sid}"]


async def test_a_rotated_webhook_secret_keeps_both_secrets_sealed(pool: asyncpg.Pool) -> None:
    keys = KeyRing("v1", "vault-one-0123456789abcdef0123456789")
    now = datetime.now(UTC)
    async with district_transaction(pool, "demo") as conn:
        created = await subscriptions.create(
            conn, "demo", "12345", "https://hook.example.cn/z", [], "a", now, keys=keys
        )
        rotated = await subscriptions.rotate(
            conn, "demo", created.subscription_id, timedelta(hours=24), now, keys=keys
        )
    row = await every_district(pool).fetchrow(
        "SELECT secret, previous_secret FROM notification.subscriptions WHERE subscription_id = $1",
        created.subscription_id,
    )
    assert row is not None
    assert sealed_with(row["secret"]) == "v1"
    assert sealed_with(row["previous_secret"]) == "v1"
    assert rotated.previous_secret == created.secret
    async with district_transaction(pool, "demo") as conn:
        found = await subscriptions.get(conn, "demo", created.subscription_id)
    assert found.secrets_at(now, keys) == [rotated.secret, created.secret]


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
