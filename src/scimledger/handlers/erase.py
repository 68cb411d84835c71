"""Erase a person's personal data in one workspace (issue 11; README "Erasure (crypto-shredding)").

One transaction: append what ``domain/erasure.py`` decides (a pending invite withdrawn and its team
memberships ended; then ``PersonalDataErased``, who asked and why), let the inline projections drop
the member's read-model rows, then destroy the member's data key and scrub what is not rebuilt from the log:
the member's queued notifications and the snapshots of its streams (a cache). The log is not touched: every
personal field of the member in it is sealed with the destroyed key, so it reads as "[erased]" from now on,
and the hash chain, which covers the stored ciphertext, verifies as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from scimledger import views
from scimledger.domain import Member, erasure
from scimledger.domain.errors import UnknownResource
from scimledger.domain.ids import membership_id
from scimledger.domain.limits import MAX_DESCRIPTION, bounded
from scimledger.domain.personal import NotErasable
from scimledger.handlers.common import with_retry
from scimledger.store import keys
from scimledger.store.commit import write_transaction
from scimledger.store.event_store import EventStore, Metadata
from scimledger.store.recorder import VersionConflict

MEMBERSHIP_EVENTS = ["TeamMemberAdded", "TeamMemberRemoved"]


@dataclass(frozen=True)
class ErasePerson:
    workspace_id: UUID
    member_id: UUID
    reason: str | None = None


@dataclass(frozen=True)
class Erased:
    """The ``PersonalDataErased`` event: its log position and the time it was decided."""

    member_id: UUID
    position: int
    erased_at: datetime
    reason: str | None


async def _scrub(conn: asyncpg.Connection, workspace_id: UUID, member_id: UUID) -> None:
    """Inside the erasing transaction, after the append: the key, the queued notifications, the snapshots."""
    await keys.destroy(conn, member_id)
    await conn.execute(
        """DELETE FROM outbox_delivery d USING outbox o
            WHERE o.member_id = $1 AND d.position = o.position AND d.kind = o.kind""",
        member_id,
    )
    await conn.execute("DELETE FROM outbox WHERE member_id = $1", member_id)
    await conn.execute(
        """DELETE FROM snapshots WHERE stream_id = ANY($1::uuid[]) OR stream_id IN (
               SELECT stream_id FROM events WHERE workspace_id = $2 AND (data->>'member_id') = $3
                  AND event_type = ANY($4::text[]))""",
        [member_id],
        workspace_id,
        str(member_id),
        MEMBERSHIP_EVENTS,
    )


async def erase_person(store: EventStore, cmd: ErasePerson, meta: Metadata) -> Erased:
    """Erase the member's personal data (see the module docstring). UnknownResource for a member of
    another workspace; AlreadyErased, LastAdmin or NotErasable when it may not be erased."""
    bounded("reason", cmd.reason, MAX_DESCRIPTION)
    ws = cmd.workspace_id
    asked_by = {"kind": meta.actor_kind, "id": meta.actor_id, "name": meta.actor_name}

    async def attempt() -> Erased:
        async with store.workspaces.hold(ws) as workspace:
            member = await store.load(Member, cmd.member_id)
            if member is None or member.workspace_id != str(ws):
                raise UnknownResource(f"member {cmd.member_id} not found")
            erasure.check(workspace, member)
            if not await keys.has_key(store.pool, member.id):
                raise NotErasable(
                    f"member {member.id} was recorded before personal data was encrypted: its events hold "
                    "it in clear, and the log is append-only"
                )
            # userName and externalId are free once the member's read-model row is gone (unique indexes,
            # issue 9): members with a data key never had claim streams.
            changed: list[Any] = []
            if member.status != "deprovisioned":  # a pending invite: withdrawn with the erasure
                teams = await views.teams_of_member(store.pool, member.id)
                memberships = await store.load_many([membership_id(t, member.id) for t in teams])
                for membership in memberships.values():
                    if membership.present:
                        membership.remove()
                        changed.append(membership)
            erasure.erase(workspace, member, reason=cmd.reason, requested_by=asked_by)
            try:
                async with write_transaction(store.pool) as conn:
                    saved = await store.write_batch(conn, ws, [([*changed, workspace, member], meta)])
                    await _scrub(conn, ws, member.id)
            except asyncpg.TransactionRollbackError as error:  # a read-model guard, a deadlock: decide again
                raise VersionConflict(None) from error
        keys.RING.forget(str(member.id))
        done = next(e for e in saved.envelopes if e.event_type == "PersonalDataErased")
        assert done.position is not None
        return Erased(member.id, done.position, done.event.timestamp, cmd.reason)

    return await with_retry(attempt)
