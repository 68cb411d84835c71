"""The event store: load aggregates, and save a command's changes in one append with inline projections.

A save is one transaction: the one append call writes the new events to the log (its first write, so the
transaction's id is taken under the workspace's append lock: docs/write-path.md), then the inline
projections apply them to the read model. If either fails (a version conflict, a read-model guard or
unique index) the whole transaction, log and read model, rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import Mapper

from scimledger import metrics
from scimledger.domain.base import replay
from scimledger.store import keys, recorder
from scimledger.store.commit import write_transaction
from scimledger.store.envelope import Envelope, InlineProjection
from scimledger.store.mapper import build_mapper
from scimledger.store.recorder import LogCursor, VersionConflict
from scimledger.store.workspace_cache import PendingEvents, WorkspaceCache

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger("scimledger.store")
SNAPSHOT_EVERY = 200  # workspace streams are cached per process; a snapshot bounds a cold load


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


Changes = Sequence[Aggregate | PendingEvents]


@dataclass
class Saved:
    positions: list[int] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    touched: list[Aggregate] = field(default_factory=list)
    stored: list[Any] = field(default_factory=list)


class EventStore:
    def __init__(
        self, pool: asyncpg.Pool, inline: Sequence[InlineProjection], mapper: Mapper[Any] | None = None
    ) -> None:
        """``inline``: the read models applied in every save's transaction (the composition root passes
        ``projections.INLINE``)."""
        self.pool = pool
        self.inline = tuple(inline)
        self.mapper = mapper or build_mapper()
        self.workspaces = WorkspaceCache(self)

    async def load_many(self, stream_ids: Iterable[UUID]) -> dict[UUID, Any]:
        """The current state of each existing stream (snapshot + later events), in one round trip."""
        ids = list(dict.fromkeys(stream_ids))
        found = await recorder.load_streams(self.pool, ids)
        await keys.ready_streams(self.pool, found)  # personal data: the keys to open it (issue 11)
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

    async def save(self, workspace_id: UUID, aggregates: Changes, metadata: Metadata) -> Saved:
        """Append every pending event of ``aggregates`` in one transaction. Raises VersionConflict."""
        return await self.save_batch(workspace_id, [(aggregates, metadata)])

    async def save_batch(self, workspace_id: UUID, groups: Sequence[tuple[Changes, Metadata]]) -> Saved:
        """Several commands' changes, each with its own metadata, in one transaction (group commit)."""
        try:
            async with write_transaction(self.pool) as conn:
                saved = await self.write_batch(conn, workspace_id, groups)
        except asyncpg.TransactionRollbackError as error:  # a read-model guard (schema.sql §6), deadlock
            raise VersionConflict(None) from error
        metrics.batch_committed(len(groups), saved.envelopes)  # README "Operating it"
        try:
            await self.snapshot(saved)
        except Exception:  # a snapshot is a cache: the command is committed either way
            log.exception("snapshot after a save failed")
        return saved

    async def write_batch(
        self, conn: asyncpg.Connection, workspace_id: UUID, groups: Sequence[tuple[Changes, Metadata]]
    ) -> Saved:
        """Inside the caller's transaction: the append, then the inline projections. Snapshots come after
        the commit (``snapshot``), never before: a snapshot must not get ahead of the log."""
        stored: list[Any] = []
        events: list[Any] = []
        metadatas: list[dict[str, Any]] = []
        await keys.ready_to_encode(conn, groups)  # personal data: the keys to seal it (issue 11)
        for aggregates, metadata in groups:
            meta = metadata.as_dict()
            for aggregate in aggregates:
                for event in aggregate.collect_events():
                    stored.append(self.mapper.to_stored_event(event))
                    events.append(event)
                    metadatas.append(meta)
        if not stored:
            return Saved()
        positions = await recorder.append(conn, workspace_id, stored, metadatas)
        await keys.insert_new(conn, workspace_id, stored)  # new members' data keys, with their events
        envelopes = [
            Envelope(workspace_id, record.topic, event, meta, position)
            for record, event, meta, position in zip(stored, events, metadatas, positions, strict=True)
        ]
        try:
            for envelope in envelopes:
                for projection in self.inline:
                    if envelope.event_type in projection.event_types:
                        await projection.apply(conn, envelope)
        except asyncpg.UniqueViolationError as error:
            # A unique index of the read model (schema.sql: scim_users_user_name_unique, ...) holds a value
            # a command committed first: decided again, the command sees it taken (409 uniqueness).
            raise VersionConflict(None) from error
        touched = [a.aggregate if isinstance(a, PendingEvents) else a for group, _ in groups for a in group]
        return Saved(positions=positions, envelopes=envelopes, touched=touched, stored=stored)

    async def snapshot(self, saved: Saved) -> None:
        """Snapshot the streams of a committed save that crossed a multiple of SNAPSHOT_EVERY."""
        if saved.stored:
            await self._snapshot_long_streams(saved.touched, saved.stored)

    @staticmethod
    async def stream_head(conn: asyncpg.Connection, stream_id: UUID) -> int | None:
        """The latest version of a stream, as committed now."""
        value = await conn.fetchval("SELECT max(stream_version) FROM events WHERE stream_id = $1", stream_id)
        return int(value) if value is not None else None

    async def _snapshot_long_streams(self, aggregates: Sequence[Aggregate], stored: Sequence[Any]) -> None:
        crossed = {s.originator_id for s in stored if s.originator_version % SNAPSHOT_EVERY == 0}
        unique = {
            aggregate.id: aggregate for aggregate in aggregates
        }  # a batch names its workspace per command
        for aggregate in unique.values():
            if aggregate.id in crossed:
                snapshot = Snapshot.take(aggregate)
                await recorder.save_snapshot(self.pool, self.mapper.to_stored_event(snapshot))


async def load_log_envelopes(
    conn: asyncpg.Connection | asyncpg.Pool,
    mapper: Mapper[Any],
    *,
    after: LogCursor,
    below_tx: int | None,
    limit: int,
    event_types: Sequence[str] = (),
) -> list[Envelope]:
    """Log rows in the log's order after ``after``, below ``below_tx``, decoded into envelopes (rebuilds,
    the catch-up runner)."""
    rows = await recorder.select_log(
        conn, after=after, below_tx=below_tx, limit=limit, event_types=event_types
    )
    await keys.ready(conn, [r.stored for r in rows], fresh=True)  # erased keys read as erased (issue 11)
    return [
        Envelope(
            workspace_id=r.workspace_id,
            event_type=r.stored.topic,
            event=mapper.to_domain_event(r.stored),
            metadata=r.metadata,
            position=r.position,
            tx=r.tx,
        )
        for r in rows
    ]
