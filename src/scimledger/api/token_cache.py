"""Per-process cache of SCIM token principals (issue 9, item 1: "the token look-up on every request").

Keys are the SHA-256 of the bearer secret (``credentials.secret_hash``); the secret itself is never held.

The guarantee kept: a token whose revocation has committed fails on the very next request, in every process,
whoever revoked it (admin API of any worker, the CLI). NOTIFY alone cannot give that: it is delivered
asynchronously, so a request arriving just after the revoker's COMMIT could still find the token cached.
The design, safe by construction:

- **Revocation epoch.** The number of ``TokenRevoked`` events in the log (an index-only count on
  ``events_type_position``). The log is append-only and a revocation's event commits in the same transaction
  as the ``tokens`` row it revokes (inline projection), so the epoch grows with every committed revocation,
  whichever order log positions commit in.
- **Entries remember the epoch they were read at.** A miss reads the token row and the epoch in ONE statement,
  hence one snapshot.
- **Every request reads a fresh epoch first**, through :class:`FreshEpoch`: concurrent requests share one
  read, but only a read *sent after* the request arrived (a request that arrives while a read is in flight
  waits for the next one, as in group commit). Its snapshot therefore contains every revocation committed
  before the request arrived. A cached entry is used only when its epoch equals that fresh epoch, i.e. no
  revocation at all committed since it was read; otherwise the token is read again.
- **NOTIFY is hygiene, not safety.** The tokens projection sends ``pg_notify('scimledger_tokens', <token
  id>)`` inside the revoking transaction; the catch-up runner's LISTEN connection evicts that token at once,
  and clears the whole cache whenever the LISTEN connection is (re-)opened, since it may have missed
  notifications. Correctness never waits for a notification.

What it saves: under concurrency, one tiny read per group of requests instead of one token look-up (pool
acquire, index probe, release) per request; a lone request still pays one round trip — no design keeps the
cross-process guarantee with zero round trips, since only PostgreSQL knows what another process committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from scimledger.views import Principal

CHANNEL = "scimledger_tokens"
MAX_ENTRIES = 10_000
EPOCH_SQL = "SELECT count(*) FROM events WHERE event_type = 'TokenRevoked'"
LOOKUP_SQL = f"""SELECT t.id, t.workspace_id, t.name, t.scopes, ({EPOCH_SQL}) AS epoch
                   FROM (SELECT 1) one
                   LEFT JOIN tokens t ON t.secret_hash = $1 AND t.revoked_at IS NULL"""


class FreshEpoch:
    """Coalesced reads of a value whose snapshot must be taken after the caller asked (a read barrier)."""

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self._read = read
        self._next: asyncio.Future[int] | None = None  # the read that has not been sent yet
        self._running: asyncio.Future[int] | None = None  # the read in flight

    async def get(self) -> int:
        if self._next is None:
            self._next = asyncio.ensure_future(self._after(self._running))
        return await asyncio.shield(self._next)

    async def _after(self, previous: asyncio.Future[int] | None) -> int:
        if previous is not None:
            await asyncio.wait([previous])  # its snapshot may predate our callers: never reuse its value
        self._running, self._next = self._next, None  # callers arriving from now on wait for the next read
        return await self._read()


@dataclass(frozen=True)
class Entry:
    principal: Principal
    epoch: int


class TokenCache:
    """Principals by secret hash, valid while no token revocation has committed since they were read."""

    def __init__(self, pool: asyncpg.Pool, max_entries: int = MAX_ENTRIES) -> None:
        self.pool = pool
        self.max_entries = max_entries
        self._entries: dict[bytes, Entry] = {}
        self._epoch = FreshEpoch(self._read_epoch)

    async def _read_epoch(self) -> int:
        return int(await self.pool.fetchval(EPOCH_SQL))

    async def principal(self, secret_hash: bytes) -> Principal | None:
        """The token's principal, or None when it does not exist or is revoked."""
        epoch = await self._epoch.get()
        entry = self._entries.get(secret_hash)
        if entry is not None and entry.epoch == epoch:
            return entry.principal
        row = await self.pool.fetchrow(LOOKUP_SQL, secret_hash)
        if row["id"] is None:
            self._entries.pop(secret_hash, None)
            return None
        principal = Principal(row["workspace_id"], row["id"], row["name"], tuple(row["scopes"]))
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest insertion
        self._entries[secret_hash] = Entry(principal, int(row["epoch"]))
        return principal

    def holds(self, secret_hash: bytes) -> bool:
        return secret_hash in self._entries

    def keys(self) -> list[bytes]:
        return list(self._entries)

    def evict_token(self, token_id: UUID) -> None:
        for key in [k for k, e in self._entries.items() if e.principal.token_id == token_id]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()

    def on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        """asyncpg listener callback for CHANNEL; the payload is the revoked token's id."""
        try:
            self.evict_token(UUID(payload))
        except ValueError:
            self.clear()

    async def attach(self, listener: asyncpg.Connection) -> None:
        """Listen on a (re-)opened connection; what was sent while nobody listened is unknown: clear."""
        self.clear()
        await listener.add_listener(CHANNEL, self.on_notification)
        listener.add_termination_listener(lambda *_: self.clear())
