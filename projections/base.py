"""What a projection is: a read model that owns its tables and turns one event into SQL.

The same ``apply`` serves live updates and a rebuild from position 0, so a rebuild produces exactly the
live tables. Inline projections (the SCIM read models) run in the same transaction as the append, which gives
read-your-writes across requests and workers; lagging ones run in the catch-up runner.
"""

from __future__ import annotations

from typing import Protocol

import asyncpg

from scimledger.store.envelope import Envelope

__all__ = ["Envelope", "Projection"]


class Projection(Protocol):
    """A projection module: its name, the tables it owns, the event types it reads, and ``apply``."""

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> tuple[str, ...]: ...

    @property
    def event_types(self) -> frozenset[str]: ...

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope) -> None: ...
