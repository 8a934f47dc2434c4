"""``minqing privacy reindex`` and ``minqing privacy lookup-key``: the blind index's key
(``minqing/privacy_reindex.py``, docs/privacy.md "The blind index's key").

Both run as the database owner (the owner's ``MINQING_DATABASE_URL``, as for ``minqing
db migrate`` and ``minqing keys rewrap``): the services' roles may not rewrite the key
table. No command prints a number; ``lookup-key legacy`` prints the database's former
key, for the deployment's Secret, and nothing else.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import click

from eventkit.db import create_pool
from eventkit.keys import KeyRingError
from eventkit.local import NoDatabase, database_url
from eventkit.loop import run as run_loop
from eventkit.privacy import VaultKeyMissing
from eventkit.settings import Settings
from minqing.privacy_reindex import LookupReindex

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[LookupReindex], Awaitable[T]]) -> T:
    async def main() -> T:
        pool = await create_pool(database_url(settings), role=None, max_size=2)
        try:
            return await work(
                LookupReindex(pool, settings.privacy_keys(), settings.privacy_lookup_keys())
            )
        finally:
            await pool.close()

    try:
        return run_loop(main())
    except (NoDatabase, VaultKeyMissing, KeyRingError) as exc:
        raise click.ClickException(str(exc)) from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        raise click.ClickException(
            "须以数据库属主运行（与 `minqing db migrate` 相同的 MINQING_DATABASE_URL）/ run it as "
            "the database owner (the MINQING_DATABASE_URL of `minqing db migrate`)"
        ) from exc


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


@click.command("reindex")
@click.option("--district", default=None, help="只处理此区 / only this district (default: all)")
@click.option("--by", "requested_by", default=None, help="办理人 / who runs it (default: login)")
@click.pass_obj
def reindex(settings: Settings, district: str | None, requested_by: str | None) -> None:
    """用当前索引密钥重建手机号索引 / Re-hash the phone numbers' blind index with
    MINQING_PRIVACY_LOOKUP_KEY.

    Run it after rotating the index key, and once after the upgrade that moved the key
    out of the database; safe to stop and to run again. When no row is left with the
    database's former key, that key is dropped from the database."""
    runs = _run(settings, lambda r: r.run(district, requested_by=requested_by or _operator()))
    if not runs:
        click.echo("没有需要重建的索引 / no index to re-hash")
    for run in runs:
        click.echo(
            f"区 {run.district_id}：{run.rehashed} 个已用密钥 {run.key_id} 重建，"
            f"{len(run.unreadable)} 个无法打开号码 / district {run.district_id}: "
            f"{run.rehashed} re-hashed with key {run.key_id}, {len(run.unreadable)} whose "
            f"number could not be opened"
        )
        for subject in run.unreadable:
            click.echo(f"  未重建 / not re-hashed: {subject}")
    left = _run(settings, lambda r: r.legacy_left())
    if left:
        click.echo(
            f"仍有 {left} 个索引使用数据库中的旧密钥，旧密钥保留 / {left} row(s) still use the "
            "database's former key: it stays until they are re-hashed"
        )
    else:
        click.echo("数据库中已没有索引密钥 / the database holds no key of the index any more")


@click.group("lookup-key")
def lookup_key() -> None:
    """索引密钥 / The blind index's key (MINQING_PRIVACY_LOOKUP_KEY)."""


@lookup_key.command("legacy")
@click.pass_obj
def lookup_key_legacy(settings: Settings) -> None:
    """打印数据库中的旧索引密钥 / Print the database's former key as an entry of
    MINQING_PRIVACY_LOOKUP_PREVIOUS_KEYS.

    Optional, before `minqing privacy reindex` drops it: kept in the Secret, it lets staff
    find by tracking code the cases submitted before the upgrade (their events carry refs
    made with it)."""
    key = _run(settings, lambda r: r.legacy_key())
    if key is None:
        raise click.ClickException(
            "数据库中没有旧索引密钥 / the database holds no former key of the index"
        )
    click.echo(json.dumps({"legacy": key.hex()}))


COMMANDS = [reindex, lookup_key]
