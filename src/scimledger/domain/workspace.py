"""The Workspace aggregate: settings, seats, verified domains and the set of active admins.

Every rule that spans members (seats, last admin) is decided here (DESIGN.md), so each command that changes
seats or admins saves the workspace with its expected version.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from scimledger.domain.errors import InvalidCommand, LastAdmin, NoFreeSeat

MAX_SEATS_ADDED = 1_000_000  # per request: the seat counts must stay far inside PostgreSQL's integer


def normalise_domain(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


class Workspace(Aggregate):
    TOPIC = "Workspace"

    @event("Created", topic="WorkspaceCreated")
    def __init__(self, name: str) -> None:
        self.name = name
        self.seats_total = 0
        self.seats_assigned = 0
        self.automatic_seat_assignment = False
        self.domains: dict[str, bool] = {}
        self.admins: list[str] = []

    # --- domains (seed 000: "verified domain" vs invite) -------------------------------------------------
    def add_domain(self, domain: str) -> None:
        domain = normalise_domain(domain)
        if not domain or "." not in domain or "@" in domain:
            raise InvalidCommand(f"{domain!r} is not a domain name")
        if domain not in self.domains:
            self._add_domain(domain=domain)

    @event("DomainAdded", topic="DomainAdded")
    def _add_domain(self, domain: str) -> None:
        self.domains[domain] = False

    def verify_domain(self, domain: str) -> None:
        domain = normalise_domain(domain)
        if domain not in self.domains:
            raise InvalidCommand(f"domain {domain!r} has not been added")
        if not self.domains[domain]:
            self._verify_domain(domain=domain)

    @event("DomainVerified", topic="DomainVerified")
    def _verify_domain(self, domain: str) -> None:
        self.domains[domain] = True

    def is_verified_email(self, email: str) -> bool:
        _, _, domain = email.rpartition("@")
        return self.domains.get(normalise_domain(domain), False)

    # --- seats (seed 000: automatic seat assignment) ------------------------------------------------------
    @property
    def seats_available(self) -> int:
        return self.seats_total - self.seats_assigned

    def add_seats(self, count: int) -> None:
        if not 1 <= count <= MAX_SEATS_ADDED:
            raise InvalidCommand(f"count must be a whole number from 1 to {MAX_SEATS_ADDED}")
        self._add_seats(count=count)

    @event("SeatAdded", topic="SeatAdded")
    def _add_seats(self, count: int) -> None:
        self.seats_total += count

    def assign_seat(self, member_id: str) -> None:
        """Take a free seat for ``member_id``; with automatic seat assignment on, buy one first."""
        if self.seats_available < 1:
            if not self.automatic_seat_assignment:
                raise NoFreeSeat("no seat is available: add seats or turn on automatic seat assignment")
            self._add_seats(count=1)
        self._assign_seat(member_id=member_id)

    @event("SeatAssigned", topic="SeatAssigned")
    def _assign_seat(self, member_id: str) -> None:
        self.seats_assigned += 1

    @event("SeatReleased", topic="SeatReleased")
    def release_seat(self, member_id: str) -> None:
        self.seats_assigned -= 1

    def set_automatic_seat_assignment(self, enabled: bool) -> None:
        if enabled != self.automatic_seat_assignment:
            self._set_automatic_seat_assignment(enabled=enabled)

    @event("AutomaticSeatAssignmentChanged", topic="AutomaticSeatAssignmentChanged")
    def _set_automatic_seat_assignment(self, enabled: bool) -> None:
        self.automatic_seat_assignment = enabled

    # --- admins (seed 000: last-admin protection) ---------------------------------------------------------
    def grant_admin(self, member_id: str) -> None:
        if member_id not in self.admins:
            self._grant_admin(member_id=member_id)

    @event("AdminGranted", topic="WorkspaceAdminGranted")
    def _grant_admin(self, member_id: str) -> None:
        self.admins.append(member_id)

    def revoke_admin(self, member_id: str) -> None:
        """Refused when ``member_id`` is the last active admin."""
        if member_id not in self.admins:
            return
        if len(self.admins) == 1:
            raise LastAdmin(
                "the last remaining admin of a workspace cannot be suspended, deprovisioned or "
                "downgraded; give another member the admin role first"
            )
        self._revoke_admin(member_id=member_id)

    @event("AdminRevoked", topic="WorkspaceAdminRevoked")
    def _revoke_admin(self, member_id: str) -> None:
        self.admins.remove(member_id)
