"""The event store: load aggregates, and save a command's changes in one append with inline projections.

A save is one transaction: the inline projections apply the new events to the read model, then the one
append call writes them to the log (taking the append lock last, so it is held only until commit). If the
append fails on a version conflict the whole transaction, read model included, rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import Mapper

from projections import INLINE, Envelope
from scimledger.domain import Workspace
from scimledger.domain.base import replay
from scimledger.store import recorder
from scimledger.store.mapper import build_mapper
from scimledger.store.workspace_cache import WorkspaceCache

A = TypeVar("A", bound=Aggregate)
SNAPSHOT_EVERY = 50


@dataclass(frozen=True)
class Metadata:
    """Who caused a command and through which door (stored with every event of the command)."""

    actor_kind: str
    actor_id: str
    actor_name: str
    source: str
    request_id: str | None = None
    user_agent: str | None = None
    client_addr: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "actor": {"kind": self.actor_kind, "id": self.actor_id, "name": self.actor_name},
            "source": self.source,
            "request_id": self.request_id,
            "user_agent": self.user_agent,
            "client_addr": self.client_addr,
        }


@dataclass
class Saved:
    positions: list[int] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)


class EventStore:
    def __init__(self, pool: asyncpg.Pool, mapper: Mapper[Any] | None = None) -> None:
        self.pool = pool
        self.mapper = mapper or build_mapper()
        self.workspaces = WorkspaceCache(lambda workspace_id: self.load(Workspace, workspace_id))

    async def load_many(self, stream_ids: Iterable[UUID]) -> dict[UUID, Any]:
        """The current state of each existing stream (snapshot + later events), in one round trip."""
        ids = list(dict.fromkeys(stream_ids))
        found = await recorder.load_streams(self.pool, ids)
        out: dict[UUID, Any] = {}
        for stream_id, (snapshot, events) in found.items():
            aggregate = None
            if snapshot is not None:
                aggregate = self.mapper.to_domain_event(snapshot).mutate(None)  # type: ignore[attr-defined]
            aggregate = replay((self.mapper.to_domain_event(e) for e in events), aggregate)
            if aggregate is not None:
                out[stream_id] = aggregate
        return out

    async def load(self, cls: type[A], stream_id: UUID) -> A | None:
        aggregate = (await self.load_many([stream_id])).get(stream_id)
        if aggregate is not None and not isinstance(aggregate, cls):
            return None
        return aggregate

    async def save(self, workspace_id: UUID, aggregates: Sequence[Aggregate], metadata: Metadata) -> Saved:
        """Append every pending event of ``aggregates`` in one transaction. Raises VersionConflict."""
        pending = [event for aggregate in aggregates for event in aggregate.collect_events()]
        if not pending:
            return Saved()
        stored = [self.mapper.to_stored_event(event) for event in pending]
        meta = metadata.as_dict()
        envelopes = [
            Envelope(workspace_id=workspace_id, event_type=s.topic, event=event, metadata=meta)
            for s, event in zip(stored, pending, strict=True)
        ]
        async with self.pool.acquire() as conn, conn.transaction():
            for envelope in envelopes:
                for projection in INLINE:
                    if envelope.event_type in projection.event_types:
                        await projection.apply(conn, envelope)
            positions = await recorder.append(conn, workspace_id, stored, meta)
        await self._snapshot_long_streams(aggregates, stored)
        return Saved(positions=positions, envelopes=envelopes)

    async def _snapshot_long_streams(self, aggregates: Sequence[Aggregate], stored: Sequence[Any]) -> None:
        crossed = {s.originator_id for s in stored if s.originator_version % SNAPSHOT_EVERY == 0}
        for aggregate in aggregates:
            if aggregate.id in crossed:
                snapshot = Snapshot.take(aggregate)
                await recorder.save_snapshot(self.pool, self.mapper.to_stored_event(snapshot))


async def load_log_envelopes(
    conn: asyncpg.Connection | asyncpg.Pool,
    mapper: Mapper[Any],
    *,
    after: int,
    limit: int,
    event_types: Sequence[str] = (),
) -> list[Envelope]:
    """Log rows after ``after`` decoded into envelopes (for rebuilds and the catch-up runner)."""
    rows = await recorder.select_log(conn, after=after, limit=limit, event_types=event_types)
    return [
        Envelope(
            workspace_id=r.workspace_id,
            event_type=r.stored.topic,
            event=mapper.to_domain_event(r.stored),
            metadata=r.metadata,
            position=r.position,
        )
        for r in rows
    ]
