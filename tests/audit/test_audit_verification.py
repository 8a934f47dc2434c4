"""``verify_store`` on generated histories, tampered with as the database owner could,
one kind at a time: each is caught and named."""

from __future__ import annotations

from eventkit.audit.findings import Finding, Problem, VerificationReport
from eventkit.audit.sealing import Sealer
from eventkit.audit.verification import verify_store
from eventkit.db import Conn
from eventkit.store import EventStore
from tests.audit.support import Matter, generate_history, rehash_from, tamper


async def sealed_history(store: EventStore, sealer: Sealer) -> list[Matter]:
    matters = await generate_history(store)
    await sealer.seal("demo")
    return matters


def only(report: VerificationReport) -> Finding:
    assert len(report.findings) == 1, [f.describe() for f in report.findings]
    return report.findings[0]


async def test_an_untouched_sealed_history_verifies(
    store: EventStore, sealer: Sealer, conn: Conn
) -> None:
    await sealed_history(store, sealer)
    report = await verify_store(conn)
    assert report.intact, [f.describe() for f in report.findings]
    # 6 matters of 7 events in 3 streams, and the seal in its own stream.
    assert (report.events, report.streams, report.seals) == (43, 19, 1)
    assert report.districts == {"demo"}
    assert report.unsealed == {}


async def test_changed_content_is_named_at_its_version(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    matter = (await sealed_history(store, sealer))[2]
    stream = f"case-{matter.case_id}"
    await tamper(
        database_url,
        (
            "UPDATE eventstore.events SET data = jsonb_set(data, '{message}', '\"已解决\"') "
            "WHERE stream_id = $1 AND stream_version = 3",
            stream,
        ),
    )
    finding = only(await verify_store(conn))
    assert (finding.problem, finding.stream_id, finding.stream_version) == (
        Problem.CHANGED_CONTENT,
        stream,
        3,
    )
    assert finding.global_position is not None
    assert finding.event_id is not None


async def test_an_event_deleted_from_the_middle_of_a_stream_is_a_missing_event(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    matter = (await sealed_history(store, sealer))[0]
    stream = f"case-{matter.case_id}"
    await tamper(
        database_url,
        ("DELETE FROM eventstore.events WHERE stream_id = $1 AND stream_version = 2", stream),
    )
    finding = only(await verify_store(conn))
    assert (finding.problem, finding.stream_id, finding.stream_version) == (
        Problem.MISSING_EVENT,
        stream,
        3,
    )
    assert "version 2 missing" in finding.detail


async def test_swapped_versions_are_named_reordered(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    matter = (await sealed_history(store, sealer))[1]
    stream = f"case-{matter.case_id}"
    swap = (
        "UPDATE eventstore.events SET stream_version = $2 "
        "WHERE stream_id = $1 AND stream_version = $3"
    )
    await tamper(database_url, (swap, stream, 100, 2), (swap, stream, 2, 3), (swap, stream, 3, 100))
    finding = only(await verify_store(conn))
    assert (finding.problem, finding.stream_id, finding.stream_version) == (
        Problem.REORDERED_VERSIONS,
        stream,
        2,
    )


async def test_a_deleted_tail_is_caught_by_the_seal_that_covered_it(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    matter = (await sealed_history(store, sealer))[4]
    stream = f"case-{matter.case_id}"
    await tamper(
        database_url,
        ("DELETE FROM eventstore.events WHERE stream_id = $1 AND stream_version >= 4", stream),
    )
    finding = only(await verify_store(conn))
    assert (finding.problem, finding.stream_id, finding.stream_version, finding.seal_seq) == (
        Problem.DELETED_TAIL,
        stream,
        4,
        1,
    )
    assert "version 4–5" in finding.detail


async def test_a_deleted_tail_after_the_last_seal_is_only_counted_as_unsealed(
    store: EventStore, conn: Conn, database_url: str
) -> None:
    """What the chains cannot show and no seal covers yet: the report says how much."""
    matter = (await generate_history(store))[4]
    await tamper(
        database_url,
        (
            "DELETE FROM eventstore.events WHERE stream_id = $1 AND stream_version = 5",
            f"case-{matter.case_id}",
        ),
    )
    report = await verify_store(conn)
    assert report.intact
    assert report.unsealed == {"demo": 41}


async def test_a_deleted_stream_is_caught_by_the_seal(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    matter = (await sealed_history(store, sealer))[3]
    stream = f"notification-{matter.notification_id}"
    await tamper(database_url, ("DELETE FROM eventstore.events WHERE stream_id = $1", stream))
    finding = only(await verify_store(conn))
    assert (finding.problem, finding.stream_id, finding.seal_seq) == (
        Problem.DELETED_STREAM,
        stream,
        1,
    )


INSERT_FORGED = """
INSERT INTO eventstore.events (transaction_id, district_id, category, stream_id, stream_version,
                               event_id, event_type, schema_version, data, metadata,
                               occurred_at, recorded_at, prev_hash, hash)
SELECT first.transaction_id, 'demo', 'case', $1, $2, gen_random_uuid(), 'CaseReplied', 1,
       jsonb_build_object('message', '伪造的回复'), '{}'::jsonb, first.occurred_at,
       first.recorded_at, coalesce(head.hash, ''::bytea), ''::bytea
  FROM eventstore.events first
  LEFT JOIN eventstore.events head ON head.stream_id = $1 AND head.stream_version = $2 - 1
 WHERE first.stream_id = $1 AND first.stream_version = 1
"""
"""A forged event back-dated into the first version's transaction (inside the seal's
range), chained to version - 1; its hash is computed next, as the trigger would."""
REHASH_ONE = (
    "UPDATE eventstore.events e SET hash = sha256(e.prev_hash || eventstore.canonical_bytes(e)) "
    "WHERE stream_id = $1 AND stream_version = $2"
)


async def test_an_event_added_at_the_end_of_a_sealed_range_is_caught(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    matter = (await sealed_history(store, sealer))[5]
    stream = f"case-{matter.case_id}"
    await tamper(database_url, (INSERT_FORGED, stream, 6), (REHASH_ONE, stream, 6))
    finding = only(await verify_store(conn))
    assert (finding.problem, finding.stream_id, finding.stream_version, finding.seal_seq) == (
        Problem.INSERTED_EVENT,
        stream,
        6,
        1,
    )


async def test_an_event_slipped_between_two_others_is_an_inserted_event(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    matter = (await sealed_history(store, sealer))[0]
    stream = f"case-{matter.case_id}"
    shift = (
        "UPDATE eventstore.events SET stream_version = stream_version + $2 "
        "WHERE stream_id = $1 AND stream_version >= $3"
    )
    await tamper(
        database_url,
        (shift, stream, 1000, 3),
        (shift, stream, -999, 1003),
        (INSERT_FORGED, stream, 3),
        (REHASH_ONE, stream, 3),
    )
    finding = only(await verify_store(conn))
    assert (finding.problem, finding.stream_id, finding.stream_version) == (
        Problem.INSERTED_EVENT,
        stream,
        3,
    )


async def test_a_chain_rewritten_with_recomputed_hashes_is_caught_by_the_seal(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    matter = (await sealed_history(store, sealer))[2]
    stream = f"case-{matter.case_id}"
    await tamper(
        database_url,
        (
            "UPDATE eventstore.events SET data = jsonb_set(data, '{result}', '\"未处理\"') "
            "WHERE stream_id = $1 AND stream_version = 4",
            stream,
        ),
        rehash_from(stream, 4),
    )
    finding = only(await verify_store(conn))
    assert (finding.problem, finding.stream_id, finding.seal_seq) == (
        Problem.CHANGED_CONTENT,
        stream,
        1,
    )
    assert "rewritten" in finding.detail


async def test_a_rewritten_seal_breaks_the_chain_of_seals_and_loses_the_kept_digest(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    await generate_history(store, matters=2)
    [first] = await sealer.seal("demo")
    await generate_history(store, matters=1)
    [second] = await sealer.seal("demo")
    assert second.previous_digest == first.digest
    forged = "ab" * 32
    await tamper(
        database_url,
        (
            "UPDATE eventstore.events SET data = jsonb_set(data, '{digest}', to_jsonb($1::text)) "
            "WHERE stream_id = 'audit-demo' AND stream_version = 1",
            forged,
        ),
        rehash_from("audit-demo", 1),
    )
    report = await verify_store(conn, expected_digests=[first.digest])
    problems = sorted((f.problem, f.seal_seq) for f in report.findings)
    assert problems == [
        (Problem.BROKEN_SEAL, 1),
        (Problem.BROKEN_SEAL, 2),
        (Problem.UNKNOWN_SEAL, None),
    ]


async def test_verification_since_a_time_checks_only_what_was_recorded_since(
    store: EventStore, sealer: Sealer, conn: Conn, database_url: str
) -> None:
    old = (await sealed_history(store, sealer))[0]
    since = await conn.fetchval("SELECT clock_timestamp()")
    await generate_history(store, matters=1)
    await sealer.seal("demo")
    await tamper(
        database_url,
        (
            "UPDATE eventstore.events SET data = '{}' WHERE stream_id = $1 AND stream_version = 2",
            f"case-{old.case_id}",
        ),
    )
    recent = await verify_store(conn, since=since)
    assert recent.intact
    assert (recent.events, recent.seals) == (8, 1)
    assert not (await verify_store(conn)).intact
