"""Admin-key commands (issue 10; README "Admin API", "Admin keys"): issue another key for a workspace and
revoke one. Shared by ``/api/v1/admin-keys`` and the ``scimledger admin-key`` CLI; the caller's ``Metadata``
names who did it (an admin key, or an operator).

Like a token (seed 004), a key's secret is shown once, by the caller, from the result; only its SHA-256 is
recorded (``AdminKeyIssued``). Revocation (``AdminKeyRevoked``) takes effect on the key's next request. The
last active key of a workspace cannot be revoked (``LastAdminKey``): the rule spans every key's stream, so
besides the check here a read-model guard in the writing transaction (schema.sql section 6) refuses the
second of two concurrent revocations, which is then decided again and refused. ``list_admin_keys`` (the
read side, ``admin_views``) is here too for the CLI: ids, status, times and actors, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from scimledger import credentials
from scimledger.admin_views import AdminKeyRow, list_admin_keys
from scimledger.domain import AdminKey, Workspace
from scimledger.domain.errors import LastAdminKey, UnknownResource
from scimledger.handlers.common import with_retry
from scimledger.store.event_store import EventStore, Metadata

__all__ = [
    "AdminKeyIssued",
    "AdminKeyRow",
    "IssueAdminKey",
    "RevokeAdminKey",
    "issue_admin_key",
    "list_admin_keys",
    "revoke_admin_key",
]


@dataclass(frozen=True)
class IssueAdminKey:
    workspace_id: UUID


@dataclass(frozen=True)
class RevokeAdminKey:
    workspace_id: UUID
    key_id: UUID


@dataclass(frozen=True)
class AdminKeyIssued:
    """The new key's id and its secret (``slkey_...``): show it once, it is not kept."""

    key_id: UUID
    admin_key: str


async def issue_admin_key(store: EventStore, cmd: IssueAdminKey, meta: Metadata) -> AdminKeyIssued:
    """Another admin key for the workspace (UnknownResource if there is no such workspace)."""
    if await store.load(Workspace, cmd.workspace_id) is None:
        raise UnknownResource(f"workspace {cmd.workspace_id} does not exist")
    secret = credentials.generate(credentials.ADMIN_KEY_PREFIX)
    key = AdminKey(workspace_id=str(cmd.workspace_id), secret_hash=credentials.secret_hash(secret).hex())
    await store.save(cmd.workspace_id, [key], meta)
    return AdminKeyIssued(key_id=key.id, admin_key=secret)


async def revoke_admin_key(store: EventStore, cmd: RevokeAdminKey, meta: Metadata) -> None:
    """Revoke a key of the workspace (UnknownResource if it has no such key; revoking a revoked key changes
    nothing); LastAdminKey when no other active key would be left."""

    async def attempt() -> None:
        key = await store.load(AdminKey, cmd.key_id)
        if key is None or key.workspace_id != str(cmd.workspace_id):
            raise UnknownResource(f"admin key {cmd.key_id} not found")
        if key.revoked:
            return
        others = await store.pool.fetchval(
            "SELECT count(*) FROM admin_keys WHERE workspace_id = $1 AND revoked_at IS NULL AND id <> $2",
            cmd.workspace_id,
            cmd.key_id,
        )
        if not others:
            raise LastAdminKey(
                f"admin key {cmd.key_id} is the workspace's last active admin key: issue another one first"
            )
        key.revoke()
        await store.save(cmd.workspace_id, [key], meta)

    await with_retry(attempt)
