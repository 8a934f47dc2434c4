"""What intake holds of a resident, for their rights (docs/privacy.md): found by their
phone number, exported, erased when they are forgotten or their cases' retention ends.

Intake is where a resident is known by a number: it seals the contact and keeps the
opinions (with their texts, places and attachments), the tracking codes, the timeline
shown on the tracking page and the feedback. Every function runs in the caller's
transaction, scoped to the district (``eventkit.db.scope``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventkit.db import Conn
from eventkit.privacy import PersonalDataVault
from eventkit.privacy_rights import ERASED, Erasure
from eventkit.refusals import InvalidInput
from eventkit.sealed_texts import shred_texts
from services.intake.text import normalise_phone
from services.intake.tracking_codes import new_tracking_code


class NotAMobileNumber(InvalidInput):
    """A phone number that is not a mainland mobile number: it was never indexed."""

    code = "not-a-mobile-number"

    def __init__(self) -> None:
        super().__init__(
            "不是 11 位手机号码",
            "Not an 11-digit mainland mobile number",
            "只有手机号码可用于查找；座机等按原样登记的号码未建索引，请按居民编号办理。",
            "Only mobile numbers are indexed: a number taken as given (a landline) cannot "
            "be looked up; use the resident's subject id instead.",
        )


async def subjects_by_phone(
    conn: Conn, vault: PersonalDataVault, district_id: str, phone: str
) -> list[str]:
    """The subject a phone number names in the district ([] when none, or forgotten)."""
    number = normalise_phone(phone)
    if number is None:
        raise NotAMobileNumber()
    subject = await vault.subject_of(district_id, number, conn=conn)
    return [] if subject is None else [subject]


async def opinions_of(conn: Conn, subject_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The residents' opinions: when, where from, whether withdrawn (no text)."""
    rows = await conn.fetch(
        """
        SELECT opinion_id, subject_id, channel, station_code, submitted_at, withdrawn_at
          FROM intake.opinions WHERE subject_id = ANY($1::text[])
         ORDER BY submitted_at, opinion_id
        """,
        list(subject_ids),
    )
    return [dict(row) for row in rows]


async def export(conn: Conn, opinion_ids: Sequence[str]) -> dict[str, Any]:
    """Everything intake holds of these opinions: the opinions with their texts, places,
    attachments and tracking codes, the timeline the tracking page shows, the feedback."""
    ids = list(opinion_ids)
    opinions = await conn.fetch(
        """
        SELECT opinion_id, subject_id, tracking_code, channel, station_code, community,
               address, lat, long, category_hint, text, attachments, external_ref,
               submitted_at, withdrawn_at, withdraw_reason
          FROM intake.opinions WHERE opinion_id = ANY($1::text[])
         ORDER BY submitted_at, opinion_id
        """,
        ids,
    )
    steps = await conn.fetch(
        """
        SELECT case_id, opinion_id, district_id, occurred_at, step FROM intake.case_steps
         WHERE opinion_id = ANY($1::text[]) ORDER BY occurred_at, stream_version
        """,
        ids,
    )
    feedback = await conn.fetch(
        """
        SELECT case_id, opinion_id, resolution_seq, satisfaction, resolved, comment,
               submitted_at
          FROM intake.feedback WHERE opinion_id = ANY($1::text[])
         ORDER BY submitted_at
        """,
        ids,
    )
    return {
        "opinions": [
            {**dict(row), "attachments": list(row["attachments"] or ())} for row in opinions
        ],
        "timeline": [
            {
                "case_id": row["case_id"],
                "opinion_id": row["opinion_id"],
                "district_id": row["district_id"],
                "at": row["occurred_at"],
                "kind": row["step"].get("kind"),
                "status": row["step"].get("status"),
                "note": row["step"].get("note"),
                "media_url": row["step"].get("media_url"),
                "public": bool(row["step"].get("public")),
            }
            for row in steps
        ],
        "feedback": [dict(row) for row in feedback],
    }


async def replace_tracking_codes(conn: Conn, opinion_ids: Sequence[str]) -> int:
    """Give these opinions fresh tracking codes that no one was ever given: the codes the
    resident holds open nothing any more (the tracking page, feedback, withdrawal), while
    staff still reach the opinion by its id. For a resident who asked to be forgotten."""
    ids = list(opinion_ids)
    await conn.executemany(
        "UPDATE intake.opinions SET tracking_code = $2 WHERE opinion_id = $1",
        [(opinion_id, new_tracking_code()) for opinion_id in ids],
    )
    return len(ids)


async def erase(conn: Conn, erasure: Erasure) -> dict[str, int]:
    """Erase the texts of these opinions (their words, address, point, attachments,
    withdrawal reason, the notes and evidence links of their timeline, their cases'
    latest and public notes, the comments of their feedback) and delete the keys that
    seal their texts inside their events. Idempotent: counts what
    changed. In the caller's district scope: a transferred matter's rows in another
    district (its cases, steps and feedback there) are erased in that district's scope."""
    ids = list(erasure.opinion_ids)
    opinions = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE intake.opinions
               SET text = $2, address = NULL, lat = NULL, long = NULL, attachments = '{}',
                   withdraw_reason = CASE WHEN withdraw_reason IS NULL THEN NULL ELSE $2 END
             WHERE opinion_id = ANY($1::text[])
               AND (text <> $2 OR address IS NOT NULL OR lat IS NOT NULL
                    OR attachments <> '{}' OR withdraw_reason <> $2)
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        ids,
        ERASED,
    )
    # A step's note (a reply, a result) and its evidence link (a resolution's photograph,
    # which Open311 publishes when staff marked the resolution public).
    steps = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE intake.case_steps
               SET step = step || jsonb_build_object(
                       'note', CASE WHEN step ->> 'note' IS NULL THEN NULL ELSE $2::text END,
                       'media_url', NULL)
             WHERE opinion_id = ANY($1::text[])
               AND ((step ->> 'note' IS NOT NULL AND step ->> 'note' <> $2)
                    OR step ->> 'media_url' IS NOT NULL)
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        ids,
        ERASED,
    )
    # The case's latest note, and the latest one staff marked public (Open311's
    # status_notes quotes it): nothing is left for the public to read.
    notes = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE intake.cases
               SET progress = progress || jsonb_build_object(
                       'last_note',
                       CASE WHEN progress ->> 'last_note' IS NULL THEN NULL ELSE $2::text END,
                       'public_note', NULL)
             WHERE opinion_id = ANY($1::text[])
               AND ((progress ->> 'last_note' IS NOT NULL AND progress ->> 'last_note' <> $2)
                    OR progress ->> 'public_note' IS NOT NULL)
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        ids,
        ERASED,
    )
    comments = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE intake.feedback SET comment = $2
             WHERE opinion_id = ANY($1::text[]) AND comment IS NOT NULL AND comment <> $2
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        ids,
        ERASED,
    )
    # The opinions' text keys: the texts sealed in their events (the store, Kafka, audit
    # archives) no longer open. A transferred matter's key is its opinion's, in the
    # resident's district: deleted when this runs in that district's scope.
    keys = await shred_texts(conn, ids)
    return {
        "opinions": int(opinions),
        "text_keys": keys,
        "timeline_notes": int(steps),
        "case_notes": int(notes),
        "feedback_comments": int(comments),
    }
