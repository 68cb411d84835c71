"""Domain errors: a rule of the workspace said no. No HTTP here; the API maps each to a status."""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused by a domain rule. ``code`` is stable and machine-readable."""

    code = "invalid_command"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AlreadyTaken(DomainError):
    """A unique value (userName, externalId, team name) is held by another resource."""

    code = "uniqueness"

    def __init__(self, kind: str, value: str) -> None:
        label = {"teamName": "displayName", "groupExternalId": "externalId"}.get(kind, kind)
        super().__init__(f"{label} {value!r} is already in use in this workspace")
        self.kind = kind
        self.value = value


class UnknownResource(DomainError):
    """The resource does not exist in this workspace (or is no longer visible)."""

    code = "not_found"


class NoFreeSeat(DomainError):
    """Seed 000: with automatic seat assignment off, provisioning fails when no seat is available."""

    code = "no_free_seat"


class LastAdmin(DomainError):
    """Seed 000: the last remaining admin cannot be suspended, deleted or downgraded."""

    code = "last_admin"


class InvalidCommand(DomainError):
    """The command is not valid in the aggregate's current state."""

    code = "invalid_command"


class VersionMismatch(DomainError):
    """RFC 7644 §3.14: the client's If-Match version is not the resource's current version."""

    code = "precondition_failed"


class NotManaged(DomainError):
    """Seed 000: the IdP does not manage this member (or team); its syncs never touch it."""

    code = "not_managed"


class DomainNotProven(DomainError):
    """Issue 8: a domain is verified only with proof of control (the workspace's DNS TXT challenge)."""

    code = "domain_not_proven"


class LastAdminKey(DomainError):
    """Issue 10: the last active admin key of a workspace cannot be revoked (it would lock its admins out)."""

    code = "last_admin_key"
