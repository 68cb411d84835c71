"""The Workspace is a hot stream (every seat and admin change saves it): per process, commands on one
workspace run one at a time and reuse the last saved aggregate (DESIGN.md, "Domain model").

Another process may have moved the stream on; the save then fails its version check, the cached copy is
dropped and the handler retries with a fresh load. Any failure drops the cached copy, since the
aggregate may hold changes that were never saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from uuid import UUID

from scimledger.domain import Workspace
from scimledger.domain.errors import UnknownResource


class WorkspaceCache:
    def __init__(self, load: Callable[[UUID], Awaitable[Workspace | None]]) -> None:
        self._load = load
        self._locks: dict[UUID, asyncio.Lock] = {}
        self._saved: dict[UUID, Workspace] = {}

    @asynccontextmanager
    async def hold(self, workspace_id: UUID) -> AsyncIterator[Workspace]:
        """The workspace, exclusively for this process until the block ends (the block must save it)."""
        lock = self._locks.setdefault(workspace_id, asyncio.Lock())
        async with lock:
            workspace = self._saved.pop(workspace_id, None) or await self._load(workspace_id)
            if workspace is None:
                raise UnknownResource(f"workspace {workspace_id} does not exist")
            yield workspace
            if not workspace.pending_events:
                self._saved[workspace_id] = workspace

    def forget(self, workspace_id: UUID) -> None:
        self._saved.pop(workspace_id, None)
