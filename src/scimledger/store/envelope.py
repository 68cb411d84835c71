"""What the store hands to read models: an event with what the log knows about it, and the shape of a
projection the store applies inline (the projections themselves live in ``projections/`` and depend on the
store, never the other way round; the composition root hands them to the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class Envelope:
    """A domain event with what the log knows about it: its position, and ``tx``, the id of the transaction
    that appended it (the log's order is (tx, position): docs/write-path.md)."""

    workspace_id: UUID
    event_type: str
    event: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    position: int | None = None
    tx: int | None = None


class InlineProjection(Protocol):
    """A read model applied in the same transaction as the append (docs/architecture.md, "Shape",
    read-your-writes)."""

    @property
    def event_types(self) -> frozenset[str]: ...

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope) -> None: ...
