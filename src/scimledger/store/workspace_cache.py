"""The Workspace is a hot stream (every seat and admin change saves it): per process, commands on one
workspace take turns on it and reuse the last saved aggregate (docs/architecture.md, "Domain model").

``submit`` adds group commit: commands that arrive while another holds the workspace queue up, and the next
holder decides all of them on the one aggregate and saves them in one transaction (each command's events
keep their own metadata). A command refused by the workspace (no free seat) is taken out without touching
the others. If the save fails on a version check, every command of the batch gets the VersionConflict and
its handler retries from a fresh load; a command that lost a uniqueness race then sees the claim taken.

If the save fails for another reason (one command's data refused by PostgreSQL), the batch's commands
retry and, for a second, commands are saved one by one, so that only the culprit fails.

Across worker processes, a batch runs in one transaction that first takes the workspace's advisory lock and
compares the cached aggregate with the stream's head (reloading it when another worker moved it on), so the
workers' batches take turns instead of failing each other's version checks. Commands that save the
workspace through ``hold`` (status changes, admin commands) rely on the version check and retry. Any failure
drops the cached copy, since the aggregate may hold changes that were never saved.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

import asyncpg
from eventsourcing.domain import Aggregate

from scimledger import metrics
from scimledger.domain import Workspace
from scimledger.domain.errors import UnknownResource
from scimledger.store.commit import CommitInDoubt, note_committed, write_transaction
from scimledger.store.recorder import VersionConflict

if TYPE_CHECKING:
    from scimledger.store.event_store import Changes, EventStore, Metadata

log = logging.getLogger("scimledger")
T = TypeVar("T")
SOLO_SECONDS = 1.0


@dataclass
class PendingEvents:
    """Events already collected from an aggregate: group commit keeps each command's workspace events with
    that command's metadata."""

    aggregate: Aggregate
    events: list[Any]

    def collect_events(self) -> list[Any]:
        events, self.events = self.events, []
        return events


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What one command decided on the workspace: the other aggregates to save, and its result.
    ``unique_values``: values the command takes that no other command of its batch may take (a userName
    key, an externalId), so that of two such commands in one batch the later is decided again."""

    aggregates: Sequence[Aggregate]
    metadata: Metadata
    result: T
    unique_values: frozenset[tuple[str, str]] = frozenset()


Step = Callable[[Workspace], Decision[Any]]


@dataclass
class _Pending:
    step: Step
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class WorkspaceCache:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._locks: dict[UUID, asyncio.Lock] = {}
        self._saved: dict[UUID, Workspace] = {}
        self._queues: dict[UUID, list[_Pending]] = {}
        self._solo_until: dict[UUID, float] = {}

    async def _workspace(self, workspace_id: UUID, head: int | None = -1) -> Workspace:
        """The cached workspace when it is still the stream's head (``head`` -1: not checked), else loaded."""
        workspace = self._saved.pop(workspace_id, None)
        if workspace is None or (head != -1 and workspace.version != head):
            workspace = await self._store.load(Workspace, workspace_id)
        if workspace is None:
            raise UnknownResource(f"workspace {workspace_id} does not exist")
        return workspace

    @asynccontextmanager
    async def hold(self, workspace_id: UUID) -> AsyncIterator[Workspace]:
        """The workspace, exclusively for this process until the block ends (the block must save it)."""
        lock = self._locks.setdefault(workspace_id, asyncio.Lock())
        async with lock:
            workspace = await self._workspace(workspace_id)
            yield workspace
            if not workspace.pending_events:
                self._saved[workspace_id] = workspace

    async def submit(self, workspace_id: UUID, step: Step) -> Any:
        """Decide ``step`` on the workspace and save it, batched with whatever else is waiting."""
        pending = _Pending(step)
        self._queues.setdefault(workspace_id, []).append(pending)
        lock = self._locks.setdefault(workspace_id, asyncio.Lock())
        async with lock:
            if not pending.future.done():
                queue = self._queues[workspace_id]
                if time.monotonic() < self._solo_until.get(workspace_id, 0.0):
                    batch, self._queues[workspace_id] = [pending], [p for p in queue if p is not pending]
                else:
                    batch, self._queues[workspace_id] = queue, []
                try:
                    await self._run(workspace_id, batch)
                finally:
                    for waiting in batch:  # never leave a command waiting forever
                        if not waiting.future.done():
                            waiting.future.set_exception(VersionConflict(None))
        result = await pending.future
        note_committed()  # committed by whichever request's task ran the batch
        return result

    async def _run(self, workspace_id: UUID, batch: list[_Pending]) -> None:
        """One transaction: take the workspace's lock (shared by every worker process, so batches of
        different workers take turns instead of failing each other's version checks), make sure the cached
        aggregate is the stream's head, decide every command, write, commit, then snapshot."""
        accepted: list[tuple[_Pending, Decision[Any]]] = []
        try:
            async with write_transaction(self._store.pool) as conn:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 7243003))", str(workspace_id)
                )
                workspace = await self._workspace(
                    workspace_id, await self._store.stream_head(conn, workspace_id)
                )
                groups: list[tuple[Changes, Metadata]] = []
                streams: set[UUID] = set()
                taken: set[tuple[str, str]] = set()
                for pending in batch:
                    before = _state_of(workspace)
                    try:
                        decision = pending.step(workspace)
                        overlap = streams & {a.id for a in decision.aggregates}
                        if overlap:  # two commands of a batch on one stream: the later is decided again
                            raise VersionConflict(next(iter(overlap)))
                        if taken & decision.unique_values:  # the same userName twice: likewise
                            raise VersionConflict(None)
                    except Exception as error:  # refused (DomainError), or a bug: that command alone fails
                        workspace.__dict__.clear()
                        workspace.__dict__.update(before)
                        pending.future.set_exception(error)
                        continue
                    streams.update(a.id for a in decision.aggregates)
                    taken.update(decision.unique_values)
                    accepted.append((pending, decision))
                    own = PendingEvents(workspace, list(workspace.collect_events()))
                    groups.append(([own, *decision.aggregates], decision.metadata))
                saved = await self._store.write_batch(conn, workspace_id, groups)
        except Exception as error:
            if isinstance(error, asyncpg.TransactionRollbackError):  # a read-model guard, a deadlock
                error = VersionConflict(None)
            if len(accepted) > 1 and not isinstance(error, VersionConflict | CommitInDoubt):
                # One command's data broke the whole transaction (say a value PostgreSQL refuses): for a
                # moment save commands one by one, so that only that command fails; the others retry.
                self._solo_until[workspace_id] = time.monotonic() + SOLO_SECONDS
                error = VersionConflict(None)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        self._saved[workspace_id] = workspace
        metrics.batch_committed(len(accepted), saved.envelopes)  # README "Operating it"
        for pending, decision in accepted:
            pending.future.set_result(decision.result)
        try:
            await self._store.snapshot(saved)
        except Exception:  # a snapshot is a cache: the commands are committed either way
            log.exception("snapshot after a batch failed")


def _state_of(workspace: Workspace) -> dict[str, Any]:
    """A copy of the workspace's state to restore if a command is refused: its attributes are immutable
    values or flat containers of them (tests/unit/test_workspace_state.py), so copying each container is a
    full copy, at a fraction of ``copy.deepcopy``'s cost."""
    return {k: v.copy() if isinstance(v, dict | list | set) else v for k, v in workspace.__dict__.items()}
