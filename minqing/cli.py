"""The ``minqing`` command: run the stack, migrate, relay, audit (``minqing.audit_cli``),
residents' rights (``minqing.privacy_cli``), handle dead letters."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from eventkit.identity import Role
from eventkit.logging import configure_logging
from eventkit.loop import run as run_loop
from eventkit.settings import Settings, get_settings

T = TypeVar("T")


def _run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return run_loop(main())


def database_url(settings: Settings) -> str:
    """The database to use (see :func:`eventkit.local.database_url`), as a CLI message
    when there is none."""
    from eventkit.local import NoDatabase
    from eventkit.local import database_url as resolve

    try:
        return resolve(settings)
    except NoDatabase as exc:
        raise click.ClickException(str(exc)) from exc


async def until_signalled(work: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``work(stop)``; SIGINT or SIGTERM sets ``stop`` for a clean shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await work(stop)


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """民情 Minqing: residents' opinions, routed, answered and audited."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


@main.command()
@click.pass_obj
def up(settings: Settings) -> None:
    """启动本地系统 / Start PostgreSQL, the broker, the relay and every service."""
    from minqing.stack import run_stack

    sys.exit(run_stack(settings))


@main.command()
@click.pass_obj
def down(settings: Settings) -> None:
    """停止本地系统 / Stop what `minqing up` started."""
    from minqing.stack import stop_stack

    if not stop_stack(settings):
        click.echo("本地系统未在运行 / the local stack is not running")


@main.command()
def sink() -> None:
    """本地发件箱 / Take and show what notification sends (development only).

    SMTP on ``MINQING_SINK_SMTP_PORT`` (1025) and HTTP on ``MINQING_SINK_HTTP_PORT`` (8025)
    of ``MINQING_SINK_HOST`` (127.0.0.1); ``minqing up`` runs one.
    """
    from minqing.sink import main as run_sink

    run_sink()


@main.group()
def db() -> None:
    """数据库 / The database."""


@db.command("migrate")
@click.pass_obj
def db_migrate(settings: Settings) -> None:
    """应用迁移 / Apply the migrations not applied yet (safe to repeat)."""
    from eventkit.db import migrate
    from minqing.system import migration_packages

    applied = _run(migrate(database_url(settings), migration_packages()))
    if applied:
        for name in applied:
            click.echo(f"applied {name}")
    else:
        click.echo("数据库已是最新 / the database is up to date")


@main.group()
def relay() -> None:
    """事件转发 / The relay from the event store to Kafka."""


@relay.command("run")
@click.pass_obj
def relay_run(settings: Settings) -> None:
    """Publish the store's events to Kafka until stopped (one leader per store); the
    leader also seals every district each ``MINQING_AUDIT_SEAL_INTERVAL`` seconds."""
    from eventkit.audit.sealing import Sealer
    from eventkit.audit.settings import AuditSettings
    from eventkit.db import create_pool
    from eventkit.relay import Relay
    from eventkit.store import EventStore

    # The leader runs the sealer too, so the relay runs as the audit category's owner.
    audit_settings = AuditSettings(database_url=database_url(settings))

    async def work(stop: asyncio.Event) -> None:
        assert audit_settings.database_url
        pool = await create_pool(
            audit_settings.database_url, role=audit_settings.database_role, max_size=3
        )
        try:
            store = EventStore(pool)
            sealer = Sealer(store, max_events=audit_settings.audit_seal_max_events)
            await Relay(
                store,
                audit_settings,
                sealer=sealer,
                seal_interval=audit_settings.audit_seal_interval,
            ).run(stop)
        finally:
            await pool.close()

    run_loop(until_signalled(work))


@main.group()
def dlq() -> None:
    """死信 / Dead letters: records a consumer could not handle."""


@dlq.command("list")
@click.option("--topic", required=True, help="e.g. minqing.cases.v1 (without .dlq)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.pass_obj
def dlq_list(settings: Settings, topic: str, as_json: bool) -> None:
    """列出死信 / List the dead letters of a topic."""
    from eventkit.dlq import list_dead_letters

    letters = _run(list_dead_letters(settings, topic))
    if not letters:
        click.echo(f"{topic}: 没有死信 / no dead letters")
        return
    for letter in letters:
        info = letter.info
        row = {
            "partition": letter.partition,
            "offset": letter.offset,
            "status": "redriven" if letter.redriven else "pending",
            "stream": info.get("ce_subject"),
            "version": info.get("ce_streamversion"),
            "type": info.get("ce_type"),
            "handler": info.get("dlq_handler"),
            "attempts": info.get("dlq_attempts"),
            "failed_at": info.get("dlq_failed_at"),
            "error": info.get("dlq_error"),
        }
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(
                f"{row['partition']}:{row['offset']} [{row['status']}] {row['type']} "
                f"{row['stream']} v{row['version']} handler={row['handler']} "
                f"attempts={row['attempts']}\n    {row['error']}"
            )


@dlq.command("redrive")
@click.option("--topic", required=True, help="e.g. minqing.cases.v1 (without .dlq)")
@click.pass_obj
def dlq_redrive(settings: Settings, topic: str) -> None:
    """重新投递 / Send the pending dead letters back to their topic."""
    from eventkit.dlq import redrive

    sent = _run(redrive(settings, topic))
    click.echo(f"重新投递 / redriven: {len(sent)}")


@main.group()
def token() -> None:
    """工作人员令牌 / Staff tokens."""


@token.command("issue")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--district", required=True, help="district code, e.g. demo")
@click.option("--subject", required=True, help="the staff member's id")
@click.option("--hours", type=float, default=None, help="validity (default: settings)")
@click.option(
    "--local",
    is_flag=True,
    help="本机开发：允许用开发密钥签发 / for this machine: sign with the development key",
)
@click.pass_obj
def token_issue(
    settings: Settings, role: str, district: str, subject: str, hours: float | None, local: bool
) -> None:
    """签发令牌 / Print a signed token, alone, on standard output.

    With the development key (MINQING_JWT_SECRET unset) it signs only for the local stack
    (MINQING_DATABASE_URL unset) or with --local: such a token is good for no deployment.
    """
    from eventkit.auth import issue_token

    if "jwt_secret" in settings.development_secrets() and not (
        local or settings.database_url is None
    ):
        raise click.ClickException(
            "MINQING_JWT_SECRET 仍是开发用的默认值，不签发令牌：请设置部署所用的密钥，"
            "或在本机开发时加 --local。\n"
            "MINQING_JWT_SECRET is the development default: set the deployment's key, or "
            "pass --local for a token for this machine."
        )
    click.echo(
        issue_token(
            settings, role=Role(role), district_id=district, subject=subject, ttl_hours=hours
        )
    )


@main.group()
def keys() -> None:
    """密钥 / Keys and secrets (docs/security.md, "Secrets")."""


@keys.command("new")
def keys_new() -> None:
    """生成随机密钥 / Print a fresh random value for any key or secret setting."""
    from eventkit.keys import new_secret

    click.echo(new_secret())


@keys.command("rewrap")
@click.pass_obj
def keys_rewrap(settings: Settings) -> None:
    """用当前密钥重新包裹居民密钥 / Wrap every resident's key with MINQING_PRIVACY_KEY.

    Run it after rotating the vault's key, as the database owner (MINQING_DATABASE_URL of
    the owner, as for `minqing db migrate`); then the previous key can be dropped from
    MINQING_PRIVACY_PREVIOUS_KEYS. The matters' text keys are wrapped again, and the
    webhook subscriptions' secrets sealed again, with it too.
    """
    from eventkit.db import create_pool
    from eventkit.privacy import PersonalDataVault, VaultKeyMissing
    from eventkit.sealed_texts import TextKeys
    from services.notification.subscriptions import rewrap_secrets

    async def work() -> tuple[int, int, int]:
        pool = await create_pool(database_url(settings), role=None, max_size=2)
        try:
            keys = settings.privacy_keys()
            return (
                await PersonalDataVault(pool, keys).rewrap(),
                await TextKeys(keys).rewrap(pool),
                await rewrap_secrets(pool, keys),
            )
        finally:
            await pool.close()

    try:
        count, texts, sealed = _run(work())
    except VaultKeyMissing as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"已用密钥 {settings.privacy_key_id} 重新包裹 {count} 个居民密钥 / "
        f"{count} residents' keys wrapped with key {settings.privacy_key_id}"
    )
    click.echo(
        f"已重新包裹 {texts} 个事项文本密钥 / {texts} matters' text keys wrapped with key "
        f"{settings.privacy_key_id}"
    )
    click.echo(
        f"已重新封存 {sealed} 个订阅的签名密钥 / {sealed} webhook subscriptions' secrets "
        f"sealed with key {settings.privacy_key_id}"
    )


@main.group()
def contracts() -> None:
    """事件契约 / The event contracts."""


@contracts.command("schemas")
@click.option("--check", is_flag=True, help="fail if the committed schemas are stale")
def contracts_schemas(check: bool) -> None:
    """生成 JSON Schema / Write the JSON Schemas into contracts/schemas/."""
    from contracts import jsonschema

    sys.exit(jsonschema.main(["--check"] if check else []))


def _add_audit_commands() -> None:
    from minqing.audit_cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


def _add_privacy_commands() -> None:
    """``minqing privacy``: residents' rights span every service, so the group is the
    system's, added after the services' own commands (none may shadow it)."""
    from minqing.privacy_cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


def _add_service_commands() -> None:
    """Each present service may bring commands: ``services/<name>/cli.py`` lists them in
    ``COMMANDS`` (click commands or groups), added at the top level of ``minqing``."""
    import importlib

    from minqing.system import existing_services

    for spec in existing_services():
        name = f"{spec.module}.cli"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_add_audit_commands()
_add_service_commands()
_add_privacy_commands()

if __name__ == "__main__":
    main()
