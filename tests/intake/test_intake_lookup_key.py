"""The blind index's key comes from the environment: a deployed process refuses its
development default, a rotation keeps finding and forgetting residents by phone before
and after ``minqing privacy reindex``, and after the upgrade's reindex a copy of the
database holds no key of the index (docs/privacy.md, "The blind index's key")."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from eventkit.blind_index import LEGACY, IndexKey, index_keys
from eventkit.db import connect, create_pool, district_transaction
from eventkit.keys import DevelopmentSecretsRefused, KeyRing, KeyRingError
from eventkit.keys import refuse_development_secrets as refuse
from eventkit.privacy import PersonalDataVault
from eventkit.settings import Settings
from minqing.privacy_reindex import LookupReindex
from services.intake.privacy import subjects_by_phone
from services.intake.settings import IntakeSettings
from tests.every_district import every_district
from tests.intake.conftest import MakeClient
from tests.intake.intake_support import DISTRICT, PHONE, opinion_body
from tests.security.service_apps import SECRETS

OLD = KeyRing("k1", "index-key-one-4e7a0c2f5b8d1e4a7c0f3b6d9e2a5c8f")
NEW = KeyRing("k2", "index-key-two-8d1f4a7c0e3b6d9f2a5c8e1b4d7f0a3c", {"k1": OLD.current})
NEW_ONLY = KeyRing("k2", NEW.current)


def test_a_deployed_process_refuses_the_default_lookup_key() -> None:
    others = {k: v for k, v in SECRETS.items() if k in Settings.model_fields}
    others.pop("privacy_lookup_key")
    left = Settings(**others)
    assert left.development_secrets() == ["privacy_lookup_key"]
    refuse("127.0.0.1", left.development_secrets())  # fine on a developer's machine
    with pytest.raises(DevelopmentSecretsRefused) as refused:
        refuse("0.0.0.0", left.development_secrets())
    assert "MINQING_PRIVACY_LOOKUP_KEY" in str(refused.value)


def test_the_default_lookup_key_kept_as_a_previous_key_is_refused_too() -> None:
    given = {k: v for k, v in SECRETS.items() if k in Settings.model_fields}
    sneaky = Settings(
        **{**given, "privacy_lookup_previous_keys": {"k0": Settings().privacy_lookup_key}}
    )
    assert sneaky.development_secrets() == ["privacy_lookup_previous_keys"]


def test_each_purpose_and_each_key_hashes_differently() -> None:
    one, two = index_keys(NEW)
    assert one.key_id == "k2"
    assert two.key_id == "k1"
    assert one.phone_hash(DISTRICT, PHONE) != two.phone_hash(DISTRICT, PHONE)
    assert one.phone != one.tracking  # a tracking ref is never a number's index
    assert one.tracking_ref("ABCDEFGHJKMN") != two.tracking_ref("ABCDEFGHJKMN")


def test_legacy_is_no_id_for_the_current_key_and_takes_only_32_bytes_of_hex() -> None:
    with pytest.raises(KeyRingError):
        index_keys(KeyRing(LEGACY, "x" * 40))
    with pytest.raises(KeyRingError):
        IndexKey.from_setting(LEGACY, "not hex")
    raw = secrets.token_bytes(32)
    assert IndexKey.from_setting(LEGACY, raw.hex()) == IndexKey.from_legacy(raw)


# --- on the database -------------------------------------------------------------------


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The database owner's pool: the reindex rewrites the key table, as the owner."""
    pool = await create_pool(database_url, role=None, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def submit(
    make_client: MakeClient, settings: IntakeSettings, ring: KeyRing, pool: asyncpg.Pool
) -> str:
    """A QR submission with the resident's phone by an intake running with ``ring``;
    the subject it was sealed for."""
    rotated = settings.model_copy(
        update={
            "privacy_lookup_key": ring.current,
            "privacy_lookup_key_id": ring.current_id,
            "privacy_lookup_previous_keys": dict(ring.previous),
        }
    )
    async for client in make_client(rotated):
        answer = await client.post(
            "/api/v1/opinions", json=opinion_body(contact={"phone": PHONE}, consent=True)
        )
        assert answer.status_code == 201, answer.text
        subject = await every_district(pool).fetchval(
            "SELECT subject_id FROM intake.opinions WHERE opinion_id = $1",
            answer.json()["opinion_id"],
        )
        return str(subject)
    raise AssertionError("no client")


async def found(pool: asyncpg.Pool, ring: KeyRing) -> list[str]:
    """What ``minqing privacy find --phone`` finds, with an index of ``ring``."""
    vault = PersonalDataVault(pool, lookup_keys=ring)
    async with district_transaction(pool, DISTRICT) as conn:
        return await subjects_by_phone(conn, vault, DISTRICT, PHONE)


async def key_ids(pool: asyncpg.Pool) -> list[str | None]:
    rows = await every_district(pool).fetch(
        "SELECT lookup_key_id FROM privacy.subject_keys WHERE lookup_hash IS NOT NULL"
    )
    return [row["lookup_key_id"] for row in rows]


async def test_a_rotated_lookup_key_finds_and_forgets_residents_before_and_after_reindex(
    directory: None,
    make_client: MakeClient,
    intake_settings: IntakeSettings,
    pool: asyncpg.Pool,
    owner: asyncpg.Pool,
) -> None:
    subject = await submit(make_client, intake_settings, OLD, pool)
    assert await key_ids(pool) == ["k1"]

    # Rotated: the new key current, the old one previous. Before any reindex the
    # resident is still found, and a new submission reuses their subject.
    assert await found(pool, NEW) == [subject]
    assert await submit(make_client, intake_settings, NEW, pool) == subject
    # Without the old key the row is not found: the reindex is what lets it go.
    assert await found(pool, NEW_ONLY) == []

    runs = await LookupReindex(owner, Settings().privacy_keys(), NEW).run(
        DISTRICT, requested_by="operator"
    )
    assert [(r.district_id, r.key_id, r.rehashed, r.unreadable) for r in runs] == [
        (DISTRICT, "k2", 1, [])
    ]
    assert await key_ids(pool) == ["k2"]
    again = await LookupReindex(owner, Settings().privacy_keys(), NEW).run(
        DISTRICT, requested_by="operator"
    )
    assert again[0].rehashed == 0  # resumable: what is done is not done again

    # The old key dropped: still found, still one subject, and forgotten by phone.
    assert await found(pool, NEW_ONLY) == [subject]
    assert await submit(make_client, intake_settings, NEW_ONLY, pool) == subject
    vault = PersonalDataVault(pool, lookup_keys=NEW_ONLY)
    async with district_transaction(pool, DISTRICT) as conn:
        [named] = await subjects_by_phone(conn, vault, DISTRICT, PHONE)
        assert await vault.forget(named, requested_by="admin_demo", conn=conn)
    assert await found(pool, NEW_ONLY) == []
    recorded = await every_district(pool).fetch(
        "SELECT outcome FROM privacy.rights_requests WHERE kind = 'reindex' ORDER BY requested_at"
    )
    assert [r["outcome"]["rehashed"] for r in recorded] == [1, 0]


async def make_legacy(database_url: str, subject: str) -> bytes:
    """The database as an earlier version left it: its own key in ``privacy.lookup_key``
    and the resident's hash made with it (marked ``legacy`` by migration 0010)."""
    raw = secrets.token_bytes(32)
    conn = await connect(database_url)
    try:
        await conn.execute(
            """
            CREATE TABLE privacy.lookup_key (
                singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                key       bytea   NOT NULL CHECK (length(key) = 32));
            GRANT SELECT ON privacy.lookup_key TO minqing_runtime;
            """
        )
        await conn.execute("INSERT INTO privacy.lookup_key (key) VALUES ($1)", raw)
        await conn.execute(
            "UPDATE privacy.subject_keys SET lookup_hash = $2, lookup_key_id = NULL "
            "WHERE subject_id = $1",
            subject,
            IndexKey.from_legacy(raw).phone_hash(DISTRICT, PHONE),
        )
    finally:
        await conn.close()
    return raw


async def test_after_the_upgrades_reindex_a_database_copy_holds_no_key_of_the_index(
    directory: None,
    make_client: MakeClient,
    intake_settings: IntakeSettings,
    pool: asyncpg.Pool,
    database_url: str,
) -> None:
    subject = await submit(make_client, intake_settings, NEW_ONLY, pool)
    raw = await make_legacy(database_url, subject)
    # Upgraded, not re-indexed yet: the database's key is read as 'legacy'.
    assert await found(pool, NEW_ONLY) == [subject]
    vault = PersonalDataVault(pool, lookup_keys=NEW_ONLY)
    async with district_transaction(pool, DISTRICT) as conn:
        refs = await vault.tracking_refs("ABCDEFGHJKMN", conn=conn)
    assert refs[-1] == IndexKey.from_legacy(raw).tracking_ref("ABCDEFGHJKMN")

    done = minqing_cli(
        "privacy",
        "reindex",
        env={
            "MINQING_DATABASE_URL": database_url,
            "MINQING_PRIVACY_LOOKUP_KEY": NEW_ONLY.current,
            "MINQING_PRIVACY_LOOKUP_KEY_ID": NEW_ONLY.current_id,
        },
    )
    assert done.returncode == 0, done.stderr
    assert f"district {DISTRICT}: 1 re-hashed with key k2" in done.stdout
    assert "holds no key of the index" in done.stdout

    assert await found(pool, NEW_ONLY) == [subject]
    assert await key_ids(pool) == ["k2"]
    conn = await connect(database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('privacy.lookup_key')") is None
        leaks = await rows_holding(conn, [raw.hex(), NEW_ONLY.current])
    finally:
        await conn.close()
    assert leaks == []


async def rows_holding(conn: asyncpg.Connection, needles: list[str]) -> list[str]:
    """Every table of every schema whose rows (as text, bytea as hex) hold a needle."""
    tables = await conn.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
        "('pg_catalog', 'information_schema')"
    )
    hits = []
    for table in tables:
        name = f'"{table["table_schema"]}"."{table["table_name"]}"'
        for needle in needles:
            if await conn.fetchval(
                f"SELECT count(*) FROM {name} t WHERE t::text LIKE '%' || $1 || '%'", needle
            ):
                hits.append(name)
    return hits


def minqing_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MINQING_")}
    return subprocess.run(
        [sys.executable, "-m", "minqing.cli", *args],
        env={**clean, "MINQING_LOG_FORMAT": "json", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


MIGRATION = Path(__file__).parents[2] / "services/intake/migrations/0010_lookup_key.sql"


async def as_before_0010(conn: asyncpg.Connection) -> None:
    """The privacy tables as migrations 0001–0009 left them."""
    await conn.execute(
        """
        ALTER TABLE privacy.subject_keys DROP COLUMN lookup_key_id;
        ALTER TABLE privacy.rights_requests DROP CONSTRAINT rights_requests_kind_check;
        ALTER TABLE privacy.rights_requests ADD CONSTRAINT rights_requests_kind_check
            CHECK (kind IN ('find', 'export', 'forget', 'retention'));
        CREATE TABLE privacy.lookup_key (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            key       bytea   NOT NULL CHECK (length(key) = 32));
        INSERT INTO privacy.lookup_key (key) VALUES (sha256(gen_random_uuid()::text::bytea));
        """
    )


@pytest.mark.parametrize("indexed", [True, False])
async def test_migration_0010_keeps_the_database_key_only_where_something_was_made_with_it(
    database_url: str, indexed: bool
) -> None:
    conn = await connect(database_url)
    try:
        async with conn.transaction():
            await as_before_0010(conn)
            if indexed:
                await conn.execute(
                    "INSERT INTO privacy.subject_keys (subject_id, district_id, key, lookup_hash) "
                    "VALUES ('subj_before', $1, $2, $3)",
                    DISTRICT,
                    secrets.token_bytes(32),
                    secrets.token_bytes(32),
                )
            await conn.execute(MIGRATION.read_text(encoding="utf-8"))
        kept = await conn.fetchval("SELECT to_regclass('privacy.lookup_key')")
        marked = await conn.fetch("SELECT lookup_key_id FROM privacy.subject_keys")
    finally:
        await conn.close()
    assert (kept is not None) is indexed
    assert [row["lookup_key_id"] for row in marked] == ([LEGACY] if indexed else [])
