"""Verifying the log's per-workspace hash chain (canonical encoding documented in ``schema.sql``).

An auditor recomputes every hash from the stored bytes; any edit, deletion or reordering of history breaks
the chain at the first altered event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

GENESIS = bytes(32)


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
    at = recorded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    head = f"{position}|{workspace_id}|{stream_id}|{stream_version}|{event_type}|{at}".encode()
    digest = hashlib.sha256(
        prev_hash + head + hashlib.sha256(state).digest() + hashlib.sha256(metadata_text.encode()).digest()
    )
    return digest.digest()


@dataclass(frozen=True)
class ChainReport:
    workspace_id: UUID
    events: int
    broken_at: int | None  # position of the first event whose hash does not verify

    @property
    def ok(self) -> bool:
        return self.broken_at is None


async def verify_workspace(conn: asyncpg.Connection | asyncpg.Pool, workspace_id: UUID) -> ChainReport:
    """Recompute the chain of one workspace from its genesis."""
    rows = await conn.fetch(
        """SELECT position, stream_id, stream_version, event_type, recorded_at, state, metadata::text AS meta,
                  prev_hash, hash
             FROM events WHERE workspace_id = $1 ORDER BY position""",
        workspace_id,
    )
    prev = GENESIS
    for row in rows:
        expected = event_hash(
            prev,
            row["position"],
            workspace_id,
            row["stream_id"],
            row["stream_version"],
            row["event_type"],
            row["recorded_at"],
            row["state"],
            row["meta"],
        )
        if row["prev_hash"] != prev or row["hash"] != expected:
            return ChainReport(workspace_id, len(rows), row["position"])
        prev = expected
    return ChainReport(workspace_id, len(rows), None)


async def verify_all(conn: asyncpg.Connection | asyncpg.Pool) -> list[ChainReport]:
    ids = [r[0] for r in await conn.fetch("SELECT DISTINCT workspace_id FROM events ORDER BY 1")]
    return [await verify_workspace(conn, w) for w in ids]
