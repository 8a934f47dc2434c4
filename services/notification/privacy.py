"""What notification holds of a resident, for their rights (docs/privacy.md): the contact
intake sealed (ciphertexts, per opinion), the messages planned for them and their
outcomes (the delivery log), and the texts of their cases carried in every delivery's
context (a reply, a result) until it is rendered at send time.

Nothing rendered is kept: a message is rendered and the phone number opened only when it
is sent. Every function runs in the caller's transaction, scoped to the district
(``eventkit.db.scope``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventkit.db import Conn
from eventkit.privacy_rights import ERASED, LINK_FIELDS, TEXT_FIELDS, Erasure


async def messages_to(conn: Conn, subject_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The messages planned for these residents, with their outcomes and the case texts
    they carry (the phone number they went to is the resident's own, in the export's
    contact)."""
    rows = await conn.fetch(
        """
        SELECT delivery_id, case_id, opinion_id, rule, template, channel, status, attempts,
               last_error, created_at, finished_at, context
          FROM notification.deliveries
         WHERE recipient_kind = 'resident' AND recipient = ANY($1::text[])
         ORDER BY created_at, delivery_id
        """,
        list(subject_ids),
    )
    messages = []
    for row in rows:
        message = dict(row)
        context = message.pop("context")
        message["delivery_id"] = str(row["delivery_id"])
        message["texts"] = {k: v for k, v in context.items() if k in TEXT_FIELDS and v}
        messages.append(message)
    return messages


def _erased(obj: str) -> str:
    """SQL: the JSON object ``obj`` with its texts (:data:`TEXT_FIELDS`, $3) replaced by
    the mark ($4) and its links (:data:`LINK_FIELDS`, $5) emptied."""
    return f"""
        (SELECT jsonb_object_agg(
                    e.key,
                    CASE WHEN e.key = ANY($3::text[]) AND jsonb_typeof(e.value) = 'string'
                         THEN to_jsonb($4::text)
                         WHEN e.key = ANY($5::text[]) AND jsonb_typeof(e.value) = 'array'
                         THEN '[]'::jsonb
                         WHEN e.key = ANY($5::text[]) AND jsonb_typeof(e.value) = 'string'
                         THEN 'null'::jsonb
                         ELSE e.value END)
           FROM jsonb_each({obj}) AS e)"""


def _unerased(obj: str) -> str:
    """SQL: whether the JSON object ``obj`` still holds a text or a link to erase."""
    return f"""
        EXISTS (SELECT 1 FROM jsonb_each({obj}) AS t
                 WHERE (t.key = ANY($3::text[]) AND jsonb_typeof(t.value) = 'string'
                        AND t.value <> to_jsonb($4::text))
                    OR (t.key = ANY($5::text[]) AND jsonb_typeof(t.value) = 'array'
                        AND t.value <> '[]'::jsonb)
                    OR (t.key = ANY($5::text[]) AND jsonb_typeof(t.value) = 'string'))"""


async def erase(conn: Conn, erasure: Erasure) -> dict[str, int]:
    """Erase the case texts and evidence links carried by the deliveries about these cases
    and opinions (to staff and residents alike); for a forgotten resident, also drop the
    sealed contact kept for their opinions and cancel what still waits to be sent to them.
    """
    arguments = (
        list(erasure.case_ids),
        list(erasure.opinion_ids),
        list(TEXT_FIELDS),
        ERASED,
        list(LINK_FIELDS),
    )
    texts = await conn.fetchval(
        f"""
        WITH changed AS (
            UPDATE notification.deliveries d SET context = {_erased("d.context")}
             WHERE (d.case_id = ANY($1::text[]) OR d.opinion_id = ANY($2::text[]))
               AND {_unerased("d.context")}
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        *arguments,
    )
    # What went to outside subscribers is the whole case event (CloudEvents, structured):
    # its texts (a department's action among them) and links are in the document's data.
    data = "d.context -> 'cloudevent' -> 'data'"
    documents = await conn.fetchval(
        f"""
        WITH changed AS (
            UPDATE notification.deliveries d
               SET context = jsonb_set(d.context, '{{cloudevent,data}}', {_erased(data)})
             WHERE (d.case_id = ANY($1::text[]) OR d.opinion_id = ANY($2::text[]))
               AND jsonb_typeof({data}) = 'object'
               AND {_unerased(data)}
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        *arguments,
    )
    outcome = {"delivery_texts": int(texts) + int(documents)}
    if not erasure.forget:
        return outcome
    contacts = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE notification.opinions
               SET phone_ciphertext = NULL, tracking_code_ciphertext = NULL,
                   contact_consent = false
             WHERE (opinion_id = ANY($1::text[]) OR subject_id = ANY($2::text[]))
               AND (phone_ciphertext IS NOT NULL OR tracking_code_ciphertext IS NOT NULL
                    OR contact_consent)
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        list(erasure.opinion_ids),
        list(erasure.subject_ids),
    )
    cancelled = await conn.fetchval(
        """
        WITH changed AS (
            UPDATE notification.deliveries
               SET status = 'cancelled', last_error = 'the resident was forgotten'
             WHERE recipient_kind = 'resident' AND recipient = ANY($1::text[])
               AND status = 'pending'
            RETURNING 1
        )
        SELECT count(*) FROM changed
        """,
        list(erasure.subject_ids),
    )
    return {**outcome, "contacts": int(contacts), "cancelled_messages": int(cancelled)}
