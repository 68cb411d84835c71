"""Verifying the log's per-workspace hash chain (canonical encoding documented in ``schema.sql``, section 1).

An auditor recomputes every hash from the stored bytes; any edit, deletion or reordering of history breaks
the chain at the first altered event, and a rewrite of the whole tail with recomputed hashes is caught
against a signed checkpoint taken before it (issue 7, "Tamper evidence"). The walk itself is pure (the
offline verifier of an export uses it with no database); the database functions stream rows in position
order through a server-side cursor, a batch at a time, so a million events never sit in memory at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

GENESIS = bytes(32)

# Why a chain does not verify (``ChainReport.reason``): stable phrases, shown by the API, the CLI and /admin.
HASH_MISMATCH = "hash mismatch"
PREV_HASH_MISMATCH = "prev_hash mismatch"
DATA_DIFFERS = "data differs from state"
METADATA_DIFFERS = "metadata differs from metadata_text"
RECORD_DIFFERS = "record differs from hashed bytes"
SEQ_MISMATCH = "seq mismatch"
CHECKPOINT_NOT_EXTENDED = "checkpoint not extended"
NO_EVENTS = "no events"

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def recorded_at_text(recorded_at: datetime) -> str:
    """``recorded_at`` as the chain hashes it: RFC 3339 UTC with exactly six fractional digits."""
    return recorded_at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def link_hash(
    prev_hash: bytes,
    position: int,
    workspace_id: UUID,
    stream_id: UUID,
    stream_version: int,
    event_type: str,
    recorded_at: str,
    state: bytes,
    metadata_text: str,
) -> bytes:
    """The canonical hash of one event, ``recorded_at`` given as its hashed text (``schema.sql``, §1)."""
    head = f"{position}|{workspace_id}|{stream_id}|{stream_version}|{event_type}|{recorded_at}".encode()
    digest = hashlib.sha256(
        prev_hash + head + hashlib.sha256(state).digest() + hashlib.sha256(metadata_text.encode()).digest()
    )
    return digest.digest()


def event_hash(
    prev_hash: bytes,
    position: int,
    workspace_id: UUID,
    stream_id: UUID,
    stream_version: int,
    event_type: str,
    recorded_at: datetime,
    state: bytes,
    metadata_text: str,
) -> bytes:
    """The canonical hash of one event (see ``schema.sql``, section 1)."""
    return link_hash(
        prev_hash,
        position,
        workspace_id,
        stream_id,
        stream_version,
        event_type,
        recorded_at_text(recorded_at),
        state,
        metadata_text,
    )


# --- the jsonb copy must say what the hashed bytes say ------------------------------------------------------
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _exact(text: str | bytes) -> Any:
    """JSON with numbers kept exact (as jsonb keeps them: ``numeric``, not binary floats)."""
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)


def _same_json(a: Any, b: Any) -> bool:
    """jsonb equality: objects unordered, numbers by value (1 = 1.0), and true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | Decimal) and isinstance(b, int | Decimal):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def data_agrees(state: bytes, data_text: str | None) -> bool:
    """Whether ``events.data`` (given as ``data::text``) is ``state`` parsed as JSON, or NULL when ``state``
    is not JSON (what ``recorder.append`` writes), compared as jsonb compares. Used where PostgreSQL cannot
    decide: a ``state`` that is not UTF-8 JSON (any more)."""
    try:
        expected = _exact(state)
    except (ValueError, RecursionError):
        return data_text is None
    if data_text is None:
        return False
    try:
        return _same_json(expected, _exact(data_text))
    except (ValueError, RecursionError):
        return False


# --- the walk -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Anchor:
    """What a checkpoint asserts about one workspace: its event at ``position`` has hash ``head_hash``, and
    it is the workspace's ``events``-th event."""

    position: int
    head_hash: bytes
    events: int


@dataclass(frozen=True)
class ChainReport:
    workspace_id: UUID
    events: int
    broken_at: int | None  # position of the first event that does not verify
    reason: str | None = None  # one of the phrases above; None when the chain verifies
    detail: str | None = None
    head_position: int | None = None  # the workspace's last event, as stored
    head_hash: bytes | None = None
    anchor: Anchor | None = None  # the checkpoint the log was checked to extend

    @property
    def ok(self) -> bool:
        return self.reason is None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /api/v1/audit/verify`` and of ``scimledger audit verify``."""
        return {
            "workspace_id": str(self.workspace_id),
            "events": self.events,
            "ok": self.ok,
            "broken_at": self.broken_at,
            "reason": self.reason,
            "detail": self.detail,
            "head": (
                None
                if self.head_position is None or self.head_hash is None
                else {"position": self.head_position, "hash": self.head_hash.hex()}
            ),
        }


class ChainWalk:
    """One workspace's events, fed in position order; stops judging at the first event that fails."""

    def __init__(self, workspace_id: UUID, anchor: Anchor | None = None) -> None:
        self.workspace_id = workspace_id
        self.anchor = anchor
        self.events = 0
        self.prev = GENESIS
        self.head: tuple[int, bytes] | None = None
        self.anchor_reached = False
        self.numbered = False  # seen an event with a ``seq`` (events appended before it existed have none)
        self.failure: tuple[int, str, str] | None = None  # (position, reason, detail)

    @property
    def broken(self) -> bool:
        return self.failure is not None

    def step(
        self,
        position: int,
        stream_id: UUID,
        stream_version: int,
        event_type: str,
        recorded_at: str,
        state: bytes,
        metadata_text: str,
        prev_hash: bytes,
        stored_hash: bytes,
        shown: tuple[str, str] | None = None,
        seq: int | None = None,
        check_seq: bool = False,
    ) -> None:
        """Check the next event. ``shown`` is a disagreement between what is shown and the hashed bytes
        (reason, detail), found by the caller (the jsonb copy in the database, the fields of an export).
        With ``check_seq``, ``seq`` must be the event's place in the chain (1, 2, 3, ...; schema.sql)."""
        self.events += 1
        self.head = (position, stored_hash)
        if self.failure is not None:
            return
        if prev_hash != self.prev:
            self._fail(
                position,
                PREV_HASH_MISMATCH,
                "the event does not link to the one before it (an event was deleted, inserted or reordered)",
            )
            return
        expected = link_hash(
            self.prev,
            position,
            self.workspace_id,
            stream_id,
            stream_version,
            event_type,
            recorded_at,
            state,
            metadata_text,
        )
        if expected != stored_hash:
            self._fail(position, HASH_MISMATCH, "the stored hash is not the hash of the event's contents")
            return
        if shown is not None:
            self._fail(position, *shown)
            return
        if check_seq and (seq is not None or self.numbered) and seq != self.events:
            self._fail(
                position, SEQ_MISMATCH, f"seq is {seq}, but the event is number {self.events} in the chain"
            )
            return
        self.numbered = self.numbered or seq is not None
        self._check_anchor(position, stored_hash)
        self.prev = stored_hash

    def _check_anchor(self, position: int, stored_hash: bytes) -> None:
        anchor = self.anchor
        if anchor is None or self.anchor_reached:
            return
        if position == anchor.position:
            self.anchor_reached = True
            if stored_hash != anchor.head_hash:
                self._fail(
                    position,
                    CHECKPOINT_NOT_EXTENDED,
                    f"the event at position {position} has hash {stored_hash.hex()}, "
                    f"the checkpoint says {anchor.head_hash.hex()}",
                )
            elif self.events != anchor.events:
                self._fail(
                    position,
                    CHECKPOINT_NOT_EXTENDED,
                    f"{self.events} events up to position {position}, the checkpoint says {anchor.events}",
                )
        elif position > anchor.position:
            self.anchor_reached = True
            self._fail(
                anchor.position,
                CHECKPOINT_NOT_EXTENDED,
                f"the workspace has no event at the checkpoint's position {anchor.position}",
            )

    def _fail(self, position: int, reason: str, detail: str) -> None:
        self.failure = (position, reason, detail)

    def _verdict(self) -> tuple[int | None, str | None, str | None]:
        """(broken_at, reason, detail) once every event was fed."""
        if self.failure is not None:
            return self.failure
        anchor = self.anchor
        if anchor is not None and not self.anchor_reached:
            if self.head is None:
                return anchor.position, CHECKPOINT_NOT_EXTENDED, "the workspace has no events any more"
            return (
                anchor.position,
                CHECKPOINT_NOT_EXTENDED,
                f"the log ends at position {self.head[0]}, before the checkpoint's {anchor.position}",
            )
        if self.events == 0:
            # An auditor never gets a green result for nothing.
            return None, NO_EVENTS, "there are no events to verify"
        return None, None, None

    def report(self) -> ChainReport:
        broken_at, reason, detail = self._verdict()
        return ChainReport(
            workspace_id=self.workspace_id,
            events=self.events,
            broken_at=broken_at,
            reason=reason,
            detail=detail,
            head_position=self.head[0] if self.head else None,
            head_hash=self.head[1] if self.head else None,
            anchor=self.anchor,
        )


# --- the database -------------------------------------------------------------------------------------------
_ROWS = """
SELECT position, workspace_id, stream_id, stream_version, event_type,
       to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at_text,
       state, metadata::text AS metadata_text, prev_hash, hash, seq
  FROM events {where} ORDER BY position
"""
# The jsonb copy is compared by PostgreSQL, a batch at a time (jsonb equality, in C)...
_DATA_DIFFERS = """
SELECT position FROM events
 WHERE ($1::uuid IS NULL OR workspace_id = $1) AND position BETWEEN $2 AND $3
   AND data IS DISTINCT FROM convert_from(state, 'UTF8')::jsonb
"""
# ... unless a state of the batch is not UTF-8 JSON: then row by row in Python (``data_agrees``).
_DATA_TEXTS = """
SELECT position, state, data::text AS data_text FROM events
 WHERE ($1::uuid IS NULL OR workspace_id = $1) AND position BETWEEN $2 AND $3
"""
_BATCH = 1000
_DATA_DETAIL = "the jsonb copy (data) is not the event's hashed bytes (state) as JSON"


async def _data_differs(
    conn: asyncpg.Connection, workspace_id: UUID | None, first: int, last: int
) -> set[int]:
    """Positions in ``[first, last]`` whose ``data`` is not ``state`` parsed as JSON."""
    try:
        async with conn.transaction():  # a savepoint: a cast error must not end the verification
            return {r[0] for r in await conn.fetch(_DATA_DIFFERS, workspace_id, first, last)}
    except asyncpg.DataError:  # 22021 not UTF-8, 22P02 not JSON, 22P05 \u0000: a state was altered
        rows = await conn.fetch(_DATA_TEXTS, workspace_id, first, last)
        return {r[0] for r in rows if not data_agrees(bytes(r["state"]), r["data_text"])}


async def _walk(
    pool: asyncpg.Pool,
    workspace_id: UUID | None,
    walks: dict[UUID, ChainWalk],
    anchors: Mapping[UUID, Anchor],
) -> None:
    """Feed every row of one workspace (or of all), in position order, to its workspace's walk: one
    snapshot (REPEATABLE READ), read through a cursor ``_BATCH`` rows at a time."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if workspace_id is None:
            cursor = await conn.cursor(_ROWS.format(where=""))
        else:  # on the (workspace_id, position) index, not a scan of every tenant's events
            cursor = await conn.cursor(_ROWS.format(where="WHERE workspace_id = $1"), workspace_id)
        while rows := await cursor.fetch(_BATCH):
            differs = await _data_differs(conn, workspace_id, rows[0]["position"], rows[-1]["position"])
            for row in rows:
                walk = walks.get(row["workspace_id"])
                if walk is None:
                    walk = walks[row["workspace_id"]] = ChainWalk(
                        row["workspace_id"], anchors.get(row["workspace_id"])
                    )
                shown = (DATA_DIFFERS, _DATA_DETAIL) if row["position"] in differs else None
                walk.step(
                    row["position"],
                    row["stream_id"],
                    row["stream_version"],
                    row["event_type"],
                    row["recorded_at_text"],
                    bytes(row["state"]),
                    row["metadata_text"],
                    bytes(row["prev_hash"]),
                    bytes(row["hash"]),
                    shown,
                    row["seq"],
                    check_seq=True,
                )


async def verify_workspace(
    pool: asyncpg.Pool, workspace_id: UUID, anchor: Anchor | None = None
) -> ChainReport:
    """Recompute the chain of one workspace from its genesis (and, given a checkpoint's ``anchor``, prove
    the log still extends it)."""
    walks = {workspace_id: ChainWalk(workspace_id, anchor)}
    await _walk(pool, workspace_id, walks, {})
    return walks[workspace_id].report()


async def verify_all(pool: asyncpg.Pool, anchors: Mapping[UUID, Anchor] | None = None) -> list[ChainReport]:
    """Every workspace's chain, in one pass over the log; a workspace with an anchor but no events is
    reported too."""
    anchors = anchors or {}
    walks = {w: ChainWalk(w, a) for w, a in anchors.items()}
    await _walk(pool, None, walks, anchors)
    return [walks[w].report() for w in sorted(walks, key=str)]
