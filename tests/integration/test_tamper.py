"""The tamper matrix of issue 7 ("Tamper evidence") on real PostgreSQL: a database superuser with the
append-only triggers disabled (``session_replication_role = replica``) edits the log, and verification
names the first bad position and why. A truncated tail and a tail rewritten with recomputed hashes still
form a valid chain: a signed checkpoint taken before the tampering is what catches those two."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scimledger import chain, handlers
from scimledger.audit import checkpoint
from scimledger.store.event_store import EventStore
from tests.conftest import SYSTEM, make_workspace


@dataclass(frozen=True)
class Log:
    workspace: UUID  # the workspace tampered with
    other: UUID  # a workspace whose events interleave with it and are never touched
    positions: list[int]  # the tampered workspace's positions, in order

    @property
    def middle(self) -> int:
        return self.positions[len(self.positions) // 2]


@pytest.fixture
async def log(store: EventStore) -> Log:
    acme = await make_workspace(store, "Acme", domains=("acme.test",), seats=10)
    beta = await make_workspace(store, "Beta", domains=("beta.test",), seats=10)
    for n in range(3):
        for ws, domain in ((acme.id, "acme.test"), (beta.id, "beta.test")):
            command = handlers.ProvisionUser(ws, f"user{n}@{domain}", {"displayName": f"User {n}"})
            await handlers.provision_user(store, command, SYSTEM)
    await handlers.change_settings(store, handlers.ChangeSettings(acme.id, True), SYSTEM)  # a boolean
    rows = await store.pool.fetch("SELECT position FROM events WHERE workspace_id = $1 ORDER BY 1", acme.id)
    return Log(acme.id, beta.id, [r[0] for r in rows])


SHIFT_BY = 1_000_000
SHIFT = f"UPDATE events SET position = position + {SHIFT_BY} WHERE workspace_id = $1 AND position > $2"


async def tamper(pool: asyncpg.Pool, *statements: tuple[Any, ...]) -> None:
    """Run ``(sql, *args)`` statements as the superuser with the triggers off, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        for sql, *args in statements:
            await conn.execute(sql, *args)


async def verify(pool: asyncpg.Pool, log: Log, anchor: chain.Anchor | None = None) -> chain.ChainReport:
    report = await chain.verify_workspace(pool, log.workspace, anchor)
    untouched = await chain.verify_workspace(pool, log.other)
    assert untouched.ok, untouched  # tampering with one workspace never blames another
    return report


async def signed_head(pool: asyncpg.Pool, log: Log) -> checkpoint.Checkpoint:
    made = await checkpoint.checkpoint_now(pool, Ed25519PrivateKey.generate(), log.workspace)
    assert made is not None and made.position == log.positions[-1]
    return made


async def rehash_from(pool: asyncpg.Pool, log: Log, start: int) -> None:
    """Recompute ``prev_hash`` and ``hash`` of the workspace's events from ``start`` on, with the chain's own
    function: the forger's best effort, a chain that verifies."""
    rows = await pool.fetch(
        f"SELECT {chain_columns()} FROM events WHERE workspace_id = $1 ORDER BY position", log.workspace
    )
    prev = chain.GENESIS
    fixes = []
    for row in rows:
        if row["position"] >= start:
            digest = chain.event_hash(
                prev,
                row["position"],
                log.workspace,
                row["stream_id"],
                row["stream_version"],
                row["event_type"],
                row["recorded_at"],
                bytes(row["state"]),
                row["metadata_text"],
            )
            fixes.append(
                (
                    "UPDATE events SET prev_hash = $2, hash = $3 WHERE position = $1",
                    row["position"],
                    prev,
                    digest,
                )
            )
            prev = digest
        else:
            prev = bytes(row["hash"])
    await tamper(pool, *fixes)


def chain_columns() -> str:
    return (
        "position, stream_id, stream_version, event_type, recorded_at, state,"
        " metadata::text AS metadata_text, hash"
    )


async def state_of(pool: asyncpg.Pool, position: int) -> bytes:
    return bytes(await pool.fetchval("SELECT state FROM events WHERE position = $1", position))


def one_byte_changed(state: bytes) -> bytes:
    """The same JSON with one letter of a value changed (still valid JSON, still UTF-8)."""
    at = state.index(b'"member"') + 1  # in the role (in clear; personal fields are sealed: issue 11)
    return state[:at] + b"Z" + state[at + 1 :]


async def first_provisioning(pool: asyncpg.Pool, log: Log) -> int:
    position = await pool.fetchval(
        """SELECT min(position) FROM events
            WHERE workspace_id = $1 AND position > $2 AND event_type = 'MemberProvisioned'""",
        log.workspace,
        log.middle - 1,
    )
    assert position is not None
    return int(position)


# --- an untouched log ---------------------------------------------------------------------------------------
async def test_an_untouched_log_verifies_with_its_head(pool: asyncpg.Pool, log: Log) -> None:
    report = await verify(pool, log)
    assert (report.ok, report.broken_at, report.reason) == (True, None, None)
    assert report.events == len(log.positions)
    assert report.head_position == log.positions[-1]


async def test_a_log_that_grew_still_extends_its_checkpoint(
    pool: asyncpg.Pool, store: EventStore, log: Log
) -> None:
    made = await signed_head(pool, log)
    await handlers.provision_user(store, handlers.ProvisionUser(log.workspace, "later@acme.test"), SYSTEM)
    report = await verify(pool, log, made.anchor())
    assert report.ok, report
    assert report.events > made.events


async def test_a_workspace_without_events_is_not_verified(pool: asyncpg.Pool, log: Log) -> None:
    report = await chain.verify_workspace(pool, UUID(int=7))
    assert (report.ok, report.reason, report.events) == (False, chain.NO_EVENTS, 0)


# --- the matrix ---------------------------------------------------------------------------------------------
async def test_a_changed_payload_byte_is_a_hash_mismatch(pool: asyncpg.Pool, log: Log) -> None:
    position = await first_provisioning(pool, log)
    forged = one_byte_changed(await state_of(pool, position))
    # data changes with it, so only the hash can tell
    await tamper(
        pool,
        (
            "UPDATE events SET state = $2, data = convert_from($2, 'UTF8')::jsonb WHERE position = $1",
            position,
            forged,
        ),
    )
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (position, chain.HASH_MISMATCH)


async def test_a_payload_turned_into_invalid_utf8_is_reported_not_an_error(
    pool: asyncpg.Pool, log: Log
) -> None:
    """PostgreSQL cannot cast such a state to jsonb to compare it with ``data``: the batch is decided in
    Python instead, and verification goes on to name the event."""
    await tamper(pool, ("UPDATE events SET state = '\\xff'::bytea || state WHERE position = $1", log.middle))
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (log.middle, chain.HASH_MISMATCH)


async def test_a_changed_jsonb_copy_is_caught_in_a_batch_postgresql_cannot_compare(
    pool: asyncpg.Pool, log: Log
) -> None:
    position = await first_provisioning(pool, log)
    await tamper(
        pool,
        (
            "UPDATE events SET data = replace(data::text, '\"member\"', '\"Zember\"')::jsonb"
            " WHERE position = $1",
            position,
        ),
        ("UPDATE events SET state = '\\xff'::bytea || state WHERE position = $1", log.positions[-1]),
    )
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (position, chain.DATA_DIFFERS)


async def test_a_changed_jsonb_copy_alone_is_caught(pool: asyncpg.Pool, log: Log) -> None:
    position = await first_provisioning(pool, log)
    await tamper(
        pool,
        (
            "UPDATE events SET data = replace(data::text, '\"member\"', '\"Zember\"')::jsonb"
            " WHERE position = $1",
            position,
        ),
    )
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (position, chain.DATA_DIFFERS)


async def test_a_jsonb_copy_with_true_turned_into_1_is_caught(pool: asyncpg.Pool, log: Log) -> None:
    """jsonb equality, not Python's: ``true == 1`` in Python, not in the log."""
    position = await pool.fetchval(
        "SELECT min(position) FROM events WHERE workspace_id = $1 AND data::text LIKE '%: true%'",
        log.workspace,
    )
    assert position is not None
    await tamper(
        pool,
        (
            "UPDATE events SET data = replace(data::text, ': true', ': 1')::jsonb WHERE position = $1",
            position,
        ),
    )
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (position, chain.DATA_DIFFERS)


async def test_a_changed_type_is_a_hash_mismatch(pool: asyncpg.Pool, log: Log) -> None:
    await tamper(pool, ("UPDATE events SET event_type = 'MemberSuspended' WHERE position = $1", log.middle))
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (log.middle, chain.HASH_MISMATCH)


async def test_the_workspace_sequence_is_gapless_and_numbers_the_chain(pool: asyncpg.Pool, log: Log) -> None:
    seqs = await pool.fetch("SELECT seq FROM events WHERE workspace_id = $1 ORDER BY position", log.workspace)
    assert [r[0] for r in seqs] == list(range(1, len(log.positions) + 1))


async def test_a_changed_seq_is_a_seq_mismatch(pool: asyncpg.Pool, log: Log) -> None:
    await tamper(pool, ("UPDATE events SET seq = seq + 1 WHERE position = $1", log.middle))
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (log.middle, chain.SEQ_MISMATCH)


async def test_a_seq_removed_after_numbered_events_is_a_seq_mismatch(pool: asyncpg.Pool, log: Log) -> None:
    await tamper(pool, ("UPDATE events SET seq = NULL WHERE position = $1", log.middle))
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (log.middle, chain.SEQ_MISMATCH)


async def test_changed_metadata_is_a_hash_mismatch(pool: asyncpg.Pool, log: Log) -> None:
    await tamper(
        pool,
        (
            """UPDATE events SET metadata = jsonb_set(metadata, '{actor,name}', '"someone else"')
                WHERE position = $1""",
            log.middle,
        ),
    )
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (log.middle, chain.HASH_MISMATCH)


async def test_a_deleted_event_breaks_the_link_of_the_next(pool: asyncpg.Pool, log: Log) -> None:
    await tamper(pool, ("DELETE FROM events WHERE position = $1", log.middle))
    report = await verify(pool, log)
    following = log.positions[log.positions.index(log.middle) + 1]
    assert (report.broken_at, report.reason) == (following, chain.PREV_HASH_MISMATCH)
    assert report.events == len(log.positions) - 1


async def test_an_inserted_event_with_a_plausible_hash_breaks_the_link_of_the_next(
    pool: asyncpg.Pool, log: Log
) -> None:
    """The workspace's events after the middle one move up to make room (positions are a primary key), and
    a forged event takes the first freed position, linked to the middle one with a correctly computed hash:
    it verifies, the event after it no longer links."""
    middle = await pool.fetchrow(f"SELECT {chain_columns()} FROM events WHERE position = $1", log.middle)
    position = log.positions[log.positions.index(log.middle) + 1]
    state = b'{"originator_id":"00000000-0000-0000-0000-000000000001","originator_version":1,"note":"forged"}'
    forged = chain.event_hash(
        bytes(middle["hash"]),
        position,
        log.workspace,
        UUID(int=1),
        1,
        "MemberProvisioned",
        middle["recorded_at"],
        state,
        middle["metadata_text"],
    )
    insert = """INSERT INTO events (position, workspace_id, stream_id, stream_version, event_type, state,
                                    data, metadata, recorded_at, prev_hash, hash, seq)
                VALUES ($1, $2, $3, 1, 'MemberProvisioned', $4, convert_from($4, 'UTF8')::jsonb,
                        $5::text::jsonb, $6, $7, $8, $9)"""
    seq = await pool.fetchval("SELECT seq + 1 FROM events WHERE position = $1", log.middle)  # its place
    await tamper(
        pool,
        (SHIFT, log.workspace, log.middle),
        (
            insert,
            position,
            log.workspace,
            UUID(int=1),
            state,
            middle["metadata_text"],
            middle["recorded_at"],
            bytes(middle["hash"]),
            forged,
            seq,
        ),
    )
    report = await verify(pool, log)
    following = log.positions[log.positions.index(log.middle) + 1] + SHIFT_BY
    assert (report.broken_at, report.reason) == (following, chain.PREV_HASH_MISMATCH)
    assert report.events == len(log.positions) + 1


async def test_two_swapped_events_are_caught_at_the_first(pool: asyncpg.Pool, log: Log) -> None:
    first, second = log.middle, log.positions[-1]
    swap = """UPDATE events e
                 SET event_type = o.event_type, state = o.state, data = o.data, metadata = o.metadata
                FROM events o WHERE (e.position, o.position) IN (($1, $2), ($2, $1))"""
    await tamper(pool, (swap, first, second))
    report = await verify(pool, log)
    assert (report.broken_at, report.reason) == (first, chain.HASH_MISMATCH)


async def test_a_truncated_tail_passes_plain_verification_but_not_the_checkpoint(
    pool: asyncpg.Pool, log: Log
) -> None:
    made = await signed_head(pool, log)
    await tamper(
        pool, ("DELETE FROM events WHERE workspace_id = $1 AND position > $2", log.workspace, log.middle)
    )
    assert (await verify(pool, log)).ok  # what is left is a valid chain
    report = await verify(pool, log, made.anchor())
    assert (report.broken_at, report.reason) == (made.position, chain.CHECKPOINT_NOT_EXTENDED)


async def test_a_tail_rewritten_with_recomputed_hashes_passes_plain_verification_but_not_the_checkpoint(
    pool: asyncpg.Pool, log: Log
) -> None:
    made = await signed_head(pool, log)
    position = await first_provisioning(pool, log)
    forged = one_byte_changed(await state_of(pool, position))
    await tamper(
        pool,
        (
            "UPDATE events SET state = $2, data = convert_from($2, 'UTF8')::jsonb WHERE position = $1",
            position,
            forged,
        ),
    )
    await rehash_from(pool, log, position)
    assert (await verify(pool, log)).ok  # the forger's chain is internally valid
    report = await verify(pool, log, made.anchor())
    assert (report.broken_at, report.reason) == (made.position, chain.CHECKPOINT_NOT_EXTENDED)


async def test_a_checkpoint_of_a_position_the_workspace_never_had_is_not_extended(
    pool: asyncpg.Pool, log: Log
) -> None:
    other_position = await pool.fetchval(
        "SELECT min(position) FROM events WHERE workspace_id = $1 AND position > $2",
        log.other,
        log.positions[0],
    )
    anchor = chain.Anchor(position=other_position, head_hash=bytes(32), events=2)
    report = await verify(pool, log, anchor)
    assert (report.broken_at, report.reason) == (other_position, chain.CHECKPOINT_NOT_EXTENDED)


async def test_verify_all_reports_each_workspace_and_the_broken_one(pool: asyncpg.Pool, log: Log) -> None:
    await tamper(pool, ("UPDATE events SET event_type = 'Forged' WHERE position = $1", log.middle))
    reports = {r.workspace_id: r for r in await chain.verify_all(pool)}
    assert set(reports) == {log.workspace, log.other}
    assert reports[log.other].ok
    assert (reports[log.workspace].broken_at, reports[log.workspace].reason) == (
        log.middle,
        chain.HASH_MISMATCH,
    )
