"""Token and AdminKey aggregates: bearer secrets issued and revoked as events.

Seed 004: named, with an optional description and scopes; the secret is shown once and only its SHA-256
hash is kept; revocation takes effect on the next request. The hash never leaves the server.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

SCOPES = ("scim:read", "scim:write")


class Token(Aggregate):
    TOPIC = "Token"

    @event("Created", topic="TokenIssued")
    def __init__(
        self,
        workspace_id: str,
        name: str,
        description: str | None,
        scopes: list[str],
        secret_hash: str,
        created_by: str,
    ) -> None:
        self.workspace_id = workspace_id
        self.name = name
        self.description = description
        self.scopes = scopes
        self.secret_hash = secret_hash
        self.created_by = created_by
        self.revoked = False

    def revoke(self, revoked_by: str) -> None:
        if not self.revoked:
            self._revoke(revoked_by=revoked_by)

    @event("Revoked", topic="TokenRevoked")
    def _revoke(self, revoked_by: str) -> None:
        self.revoked = True


class AdminKey(Aggregate):
    TOPIC = "AdminKey"

    @event("Created", topic="AdminKeyIssued")
    def __init__(self, workspace_id: str, secret_hash: str) -> None:
        self.workspace_id = workspace_id
        self.secret_hash = secret_hash
        self.revoked = False

    def revoke(self) -> None:
        if not self.revoked:
            self._revoke()

    @event("Revoked", topic="AdminKeyRevoked")
    def _revoke(self) -> None:
        self.revoked = True
