"""The contact book in schema ``notification``: owned here, never in events or on Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from eventkit.db import Conn, district_transaction
from services.notification.contact_book import ContactEntry, ContactFile
from services.notification.errors import ContactNotFound

_COLUMNS = (
    "staff_id",
    "name",
    "role",
    "email",
    "mobile",
    "wecom_user",
    "wecom_robot",
    "dingtalk_user",
    "dingtalk_robot",
    "dingtalk_secret",
    "webhook_url",
    "preferred",
    "active",
)


def _values(entry: ContactEntry) -> list[Any]:
    data = entry.model_dump(mode="json")
    return [data[c] for c in _COLUMNS]


def entry_of(row: Any) -> ContactEntry:
    """A contact from its row (or the row as JSON)."""
    return ContactEntry.model_validate({c: row[c] for c in _COLUMNS if row[c] is not None})


async def save(
    conn: Conn, district_id: str, entries: Sequence[ContactEntry], actor: str, now: datetime
) -> int:
    """Insert or replace ``entries``; returns how many rows changed."""
    changed = 0
    for entry in entries:
        placeholders = ", ".join(f"${i + 2}" for i in range(len(_COLUMNS)))
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "staff_id")
        distinct = " OR ".join(f"c.{c} IS DISTINCT FROM excluded.{c}" for c in _COLUMNS)
        status = await conn.execute(
            f"""
            INSERT INTO notification.contacts AS c (district_id, {", ".join(_COLUMNS)},
                updated_at, updated_by)
            VALUES ($1, {placeholders}, ${len(_COLUMNS) + 2}, ${len(_COLUMNS) + 3})
            ON CONFLICT (district_id, staff_id) DO UPDATE
               SET {updates}, updated_at = excluded.updated_at, updated_by = excluded.updated_by
             WHERE {distinct}
            """,
            district_id,
            *_values(entry),
            now,
            actor,
        )
        changed += int(status.rsplit(" ", 1)[-1])
    return changed


async def import_book(
    pool: asyncpg.Pool, book: ContactFile, actor: str, now: datetime
) -> dict[str, int]:
    """Import a whole contact file (only what differs is written): counts for a summary."""
    async with district_transaction(pool, book.district) as conn:
        before = await conn.fetchval(
            "SELECT count(*) FROM notification.contacts WHERE district_id = $1", book.district
        )
        changed = await save(conn, book.district, book.contacts, actor, now)
        after = await conn.fetchval(
            "SELECT count(*) FROM notification.contacts WHERE district_id = $1", book.district
        )
    return {"contacts": len(book.contacts), "added": after - before, "changed": changed}


async def load(conn: Conn, district_id: str, staff_ids: Iterable[str]) -> dict[str, ContactEntry]:
    """The contacts of ``staff_ids`` that the book has."""
    ids = sorted(set(staff_ids))
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT * FROM notification.contacts WHERE district_id = $1 AND staff_id = ANY($2)",
        district_id,
        ids,
    )
    return {r["staff_id"]: entry_of(r) for r in rows}


async def one(conn: Conn, district_id: str, staff_id: str) -> ContactEntry:
    """One contact, or :class:`ContactNotFound`."""
    found = await load(conn, district_id, [staff_id])
    if staff_id not in found:
        raise ContactNotFound(staff_id)
    return found[staff_id]


async def listing(conn: Conn, district_id: str) -> list[ContactEntry]:
    """Every contact of a district, by staff id."""
    rows = await conn.fetch(
        "SELECT * FROM notification.contacts WHERE district_id = $1 ORDER BY staff_id",
        district_id,
    )
    return [entry_of(r) for r in rows]


async def remove(conn: Conn, district_id: str, staff_id: str) -> None:
    """Take a contact out of the book (their past deliveries stay)."""
    status = await conn.execute(
        "DELETE FROM notification.contacts WHERE district_id = $1 AND staff_id = $2",
        district_id,
        staff_id,
    )
    if status.endswith(" 0"):
        raise ContactNotFound(staff_id)
