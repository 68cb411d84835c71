"""Deterministic identifiers (uuid5) for aggregates whose id follows from what they are.

DESIGN.md: a Person is keyed by normalised email; uniqueness claims by workspace + kind + normalised value;
a Membership by (team, member). Two concurrent writers of the same fact therefore hit the same stream, and
the log's unique (stream_id, stream_version) lets exactly one of them win.
"""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("6f1d3c1e-8a0b-4d57-9a55-5c1e0d3b7a21")


def normalise_email(email: str) -> str:
    """The comparison form of an email address: trimmed and lower-cased."""
    return email.strip().lower()


def person_id(email: str) -> UUID:
    return uuid5(NAMESPACE, f"person:{normalise_email(email)}")


def claim_id(workspace_id: UUID, kind: str, normalised_value: str) -> UUID:
    return uuid5(NAMESPACE, f"claim:{workspace_id}:{kind}:{normalised_value}")


def membership_id(team_id: UUID, member_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"membership:{team_id}:{member_id}")
