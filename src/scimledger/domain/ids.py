"""Deterministic identifiers for aggregates whose id follows from what they are.

docs/architecture.md: a Person is keyed by normalised email; uniqueness claims by workspace + kind +
normalised value; a Membership by (team, member). Two concurrent writers of the same fact therefore hit the
same stream, and the log's unique (stream_id, stream_version) lets exactly one of them win.

Ids made from personal data (a person's email; a userName or externalId claim) are keyed hashes (issue 11,
README "Erasure (crypto-shredding)"): HMAC-SHA256 under a key derived from the master key, which lives
outside the database, so whoever holds the log cannot test a guessed email against them. The store hands
the keyed function over (``use_keyed_hash``, from ``store/keys.py``); the domain does no I/O. Team names
and group externalIds are not personal: their claims keep uuid5.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid5

from scimledger.domain.personal import PERSONAL_CLAIM_KINDS

NAMESPACE = UUID("6f1d3c1e-8a0b-4d57-9a55-5c1e0d3b7a21")

_keyed_hash: Callable[[bytes], bytes] | None = None


def use_keyed_hash(keyed_hash: Callable[[bytes], bytes]) -> None:
    """Set the HMAC that makes pseudonymous ids (a digest of at least 16 bytes)."""
    global _keyed_hash
    _keyed_hash = keyed_hash


def pseudonym(text: str) -> UUID:
    """A keyed, deterministic id for ``text`` (RFC 9562 UUID version 8: 122 bits of the HMAC)."""
    if _keyed_hash is None:
        raise RuntimeError("ids made from personal data need the master key: import scimledger.store.keys")
    raw = bytearray(_keyed_hash(text.encode())[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    return UUID(bytes=bytes(raw))


def normalise_email(email: str) -> str:
    """The comparison form of an email address: trimmed and lower-cased."""
    return email.strip().lower()


def person_id(email: str) -> UUID:
    return pseudonym(f"person:{normalise_email(email)}")


def claim_id(workspace_id: UUID, kind: str, normalised_value: str) -> UUID:
    text = f"claim:{workspace_id}:{kind}:{normalised_value}"
    return pseudonym(text) if kind in PERSONAL_CLAIM_KINDS else uuid5(NAMESPACE, text)


def membership_id(team_id: UUID, member_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"membership:{team_id}:{member_id}")
