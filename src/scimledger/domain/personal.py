"""Personal data in events: which fields hold it and whose key seals them (issue 11; README "Erasure
(crypto-shredding)"). One home for the rule: the mapper seals and opens these fields (``store/mapper.py``),
the audit API shows them (``audit/entries.py``), the erasure command destroys their key.

A field is personal when it holds what a SCIM client says about a person: the userName, the whole SCIM
profile (names, emails, phone numbers, addresses, externalId, anything else sent), the profile an IdP asks to
apply (a link request), the display name a group gives a member, and a uniqueness claim's value when it is
a userName or an externalId. Event types, ids, times, actors, roles, seat and status changes are not: they
are what an auditor needs, and they stay in clear.

Each field is sealed with the data key of one *membership*: the Member aggregate whose id the spec names
(``key``: a payload field, or the stream's own id). A person who is a member of two workspaces has two
Members, hence two keys: erasing one membership never touches the other.

A field whose key is destroyed decodes to a placeholder of its kind: ``ERASED`` (the text ``"[erased]"``)
for text, an empty ``ErasedProfile`` for a profile. ``is_erased`` tells a placeholder from a value a client
sent (a userName may well be the text "[erased]").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scimledger.domain.errors import DomainError


class Erased(str):
    """The text a sealed field shows once its key is destroyed."""

    __slots__ = ()


class ErasedProfile(dict[str, Any]):
    """An erased profile: no attributes left (it reads as an empty profile)."""


ERASED = Erased("[erased]")
PROFILE_FIELDS = frozenset({"profile", "requested_profile"})
PERSONAL_CLAIM_KINDS = frozenset({"userName", "externalId"})
CREATED = frozenset({"MemberProvisioned", "MemberInvited", "MemberLinked"})  # they make the member's key
SNAPSHOT_TOPIC = "eventsourcing.domain:Snapshot"


def is_erased(value: Any) -> bool:
    return isinstance(value, Erased | ErasedProfile)


def placeholder(field: str) -> Any:
    """What ``field`` decodes to once its key is destroyed."""
    return ErasedProfile() if field in PROFILE_FIELDS else ERASED


@dataclass(frozen=True)
class Personal:
    """The personal ``fields`` of one kind of payload; ``key`` names the payload field holding the member
    whose key seals them (None: the stream's own id, a Member); ``when`` limits them to some payloads."""

    fields: tuple[str, ...]
    key: str | None = None
    when: Callable[[Mapping[str, Any]], bool] | None = None

    def applies(self, payload: Mapping[str, Any]) -> bool:
        return self.when is None or self.when(payload)

    def key_of(self, payload: Mapping[str, Any], stream_id: Any) -> str | None:
        """The id of the member whose key seals this payload's fields (None: nobody's)."""
        owner = stream_id if self.key is None else payload.get(self.key)
        return None if owner is None else str(owner)


def _personal_claim(payload: Mapping[str, Any]) -> bool:
    return payload.get("kind") in PERSONAL_CLAIM_KINDS


MEMBER = Personal(("user_name", "profile", "requested_profile"))
CLAIM = Personal(("value",), key="owner_id", when=_personal_claim)
MEMBERSHIP = Personal(("display",), key="member_id")

# Event type -> its personal fields. A new event that carries personal data is added here.
EVENTS: dict[str, Personal] = {
    **dict.fromkeys(CREATED, MEMBER),
    "MemberAttributesChanged": MEMBER,
    "MemberLinkRequested": MEMBER,
    "MemberSessionsRevoked": MEMBER,
    "TeamMemberAdded": MEMBERSHIP,
    "UniquenessClaimed": CLAIM,
}
# Snapshots (a cache of an aggregate's state, ``snapshots`` table): the aggregate's topic -> its fields.
SNAPSHOTS: dict[str, Personal] = {"Member": MEMBER, "Membership": MEMBERSHIP, "UniquenessClaim": CLAIM}


def spec(topic: str, payload: Mapping[str, Any]) -> tuple[Personal, Mapping[str, Any]] | None:
    """The personal spec of a stored payload and the mapping its fields live in (a snapshot keeps them in
    its ``state``), or None when it holds no personal data."""
    if topic == SNAPSHOT_TOPIC:
        found, inner = SNAPSHOTS.get(str(payload.get("topic"))), payload.get("state")
        if found is None or not isinstance(inner, Mapping) or not found.applies(inner):
            return None
        return found, inner
    found = EVENTS.get(topic)
    return (found, payload) if found is not None and found.applies(payload) else None


# --- erasure (README "Erasure (crypto-shredding)") ---------------------------------------------------------
class NotErasable(DomainError):
    """Only a deprovisioned member, or one who never got further than an invite, may be erased."""

    code = "not_erasable"


class AlreadyErased(DomainError):
    """The member's personal data is already erased (its key is destroyed)."""

    code = "already_erased"
