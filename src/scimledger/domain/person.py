"""The Person aggregate: one human across workspaces, keyed by normalised email (deterministic id).

Seed 000: "If a user with that email already exists, they are linked to the workspace rather than
provisioned as a new user."
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.domain.ids import normalise_email, person_id


class Person(Aggregate):
    TOPIC = "Person"

    @event("Created", topic="PersonRegistered")
    def __init__(self, email: str) -> None:
        self.email = email

    @classmethod
    def register(cls, email: str) -> Person:
        return cls._create(cls.Created, id=person_id(email), email=normalise_email(email))

    @staticmethod
    def id_for(email: str) -> UUID:
        return person_id(email)
