"""A district's overrides of the rules and the templates, in schema ``notification``."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from eventkit.db import Conn
from services.notification.contact_book import Channel
from services.notification.errors import UnknownRule
from services.notification.messages import Template, default_template
from services.notification.rules import RULES_BY_NAME, RuleSetting


async def rule_settings(conn: Conn, district_id: str) -> dict[str, RuleSetting]:
    """The district's overrides of the rules (rules it did not touch are absent)."""
    rows = await conn.fetch(
        "SELECT rule, enabled, channels FROM notification.rule_overrides WHERE district_id = $1",
        district_id,
    )
    return {
        r["rule"]: RuleSetting(
            r["enabled"],
            tuple(cast(list[Channel], r["channels"])) if r["channels"] is not None else None,
        )
        for r in rows
    }


async def set_rule(
    conn: Conn,
    district_id: str,
    rule: str,
    setting: RuleSetting,
    actor: str,
    now: datetime,
) -> None:
    """Switch a rule on or off, or narrow its channels, for one district."""
    if rule not in RULES_BY_NAME:
        raise UnknownRule(rule)
    await conn.execute(
        """
        INSERT INTO notification.rule_overrides (district_id, rule, enabled, channels,
            updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (district_id, rule) DO UPDATE SET enabled = excluded.enabled,
            channels = excluded.channels, updated_at = excluded.updated_at,
            updated_by = excluded.updated_by
        """,
        district_id,
        rule,
        setting.enabled,
        list(setting.channels) if setting.channels is not None else None,
        now,
        actor,
    )


async def template(conn: Conn, district_id: str, name: str) -> Template:
    """The district's own template of ``name``, else the one shipped."""
    row = await conn.fetchrow(
        "SELECT subject, body FROM notification.template_overrides "
        "WHERE district_id = $1 AND template = $2",
        district_id,
        name,
    )
    if row is None:
        return default_template(name)
    return Template(row["subject"], row["body"])


async def set_template(
    conn: Conn, district_id: str, name: str, text: Template | None, actor: str, now: datetime
) -> None:
    """Override a template for one district (``None``: back to the one shipped)."""
    default_template(name)  # an unknown name is refused
    if text is None:
        await conn.execute(
            "DELETE FROM notification.template_overrides WHERE district_id = $1 AND template = $2",
            district_id,
            name,
        )
        return
    text.check()
    await conn.execute(
        """
        INSERT INTO notification.template_overrides (district_id, template, subject, body,
            updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (district_id, template) DO UPDATE SET subject = excluded.subject,
            body = excluded.body, updated_at = excluded.updated_at,
            updated_by = excluded.updated_by
        """,
        district_id,
        name,
        text.subject,
        text.body,
        now,
        actor,
    )
