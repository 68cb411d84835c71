"""Uniqueness claims: small aggregates with deterministic ids (uuid5 of workspace + kind + normalised value).

docs/architecture.md ("Domain model"): a claim is saved with the resource in the same append; a second claim
of the same value fails on the version check and becomes 409 ``uniqueness``. A released claim can be taken
again (re-opened). Kinds: ``userName`` (the identity rule of ``domain.names``), ``externalId`` (case-exact),
``teamName`` (case-insensitive) and ``groupExternalId`` (case-exact).
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.domain.base import reopen
from scimledger.domain.errors import AlreadyTaken
from scimledger.domain.ids import claim_id
from scimledger.domain.names import user_name_key


def normalise(kind: str, value: str) -> str:
    if kind == "userName":
        return user_name_key(value)
    return value.lower() if kind == "teamName" else value


class UniquenessClaim(Aggregate):
    TOPIC = "UniquenessClaim"

    @event("Created", topic="UniquenessClaimed")
    def __init__(self, workspace_id: str, kind: str, value: str, owner_id: str) -> None:
        self.workspace_id = workspace_id
        self.kind = kind
        self.value = value
        self.owner_id: str | None = owner_id

    @staticmethod
    def id_for(workspace_id: UUID, kind: str, value: str) -> UUID:
        return claim_id(workspace_id, kind, normalise(kind, value))

    @classmethod
    def take(
        cls, existing: UniquenessClaim | None, workspace_id: UUID, kind: str, value: str, owner_id: str
    ) -> UniquenessClaim:
        """Claim ``value`` for ``owner_id``; raises AlreadyTaken if someone else holds it."""
        kwargs = {"workspace_id": str(workspace_id), "kind": kind, "value": value, "owner_id": owner_id}
        if existing is None:
            return cls._create(cls.Created, id=cls.id_for(workspace_id, kind, value), **kwargs)
        if existing.owner_id == owner_id:
            return existing
        if existing.owner_id is not None:
            raise AlreadyTaken(kind, value)
        return reopen(existing, cls.Created, **kwargs)

    def release(self) -> None:
        if self.owner_id is not None:
            self._release()

    @event("Released", topic="UniquenessReleased")
    def _release(self) -> None:
        self.owner_id = None
