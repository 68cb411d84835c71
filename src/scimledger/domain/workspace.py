"""The Workspace aggregate: settings, seats, verified domains and the set of active admins.

Every rule that spans members (seats, last admin) is decided here (docs/architecture.md), so each command that
changes seats or admins saves the workspace with its expected version.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence

from eventsourcing.domain import Aggregate, event

from scimledger.domain.errors import DomainNotProven, InvalidCommand, LastAdmin, NoFreeSeat

MAX_SEATS_ADDED = 1_000_000  # per request: the seat counts must stay far inside PostgreSQL's integer
CHALLENGE_LABEL = "_scimledger-challenge"  # README "Verifying a domain": the TXT record's name
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")  # RFC 1123 §2.1 host name label (LDH), after IDNA


def normalise_domain(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


def checked_domain(domain: str) -> str:
    """The normalised domain, or InvalidCommand unless it is a host name of two labels or more
    (RFC 1035 §2.3.4, RFC 1123 §2.1: labels of 1-63 letters, digits and hyphens, 253 characters in all;
    an internationalised name is checked in its IDNA form)."""
    normalised = normalise_domain(domain)
    try:
        ascii_form = normalised.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_form = ""
    labels = ascii_form.split(".")
    if len(ascii_form) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidCommand(f"{normalised[:256]!r} is not a domain name")
    return normalised


def challenge_record(domain: str) -> str:
    """The DNS name whose TXT record proves control of ``domain`` (README "Verifying a domain")."""
    return f"{CHALLENGE_LABEL}.{normalise_domain(domain)}"


class Workspace(Aggregate):
    TOPIC = "Workspace"

    @event("Created", topic="WorkspaceCreated")
    def __init__(self, name: str) -> None:
        self.name = name
        self.seats_total = 0
        self.seats_assigned = 0
        self.automatic_seat_assignment = False
        self.domains: dict[str, bool] = {}
        self._challenges: dict[str, str] = {}
        self.admins: list[str] = []

    # --- domains (seed 000: "verified domain" vs invite; issue 8: verified means proven) -------------------
    def add_domain(self, domain: str) -> None:
        """Add ``domain`` unverified with a challenge: a random token, made here once (not in the event body,
        so replaying the event gives the same token), that this workspace must publish in DNS. Adding it
        again changes nothing; a domain added before challenges existed gets one now."""
        domain = checked_domain(domain)
        if domain not in self.domains:
            self._add_domain(domain=domain)
        if not self.domains[domain] and domain not in self.challenges:
            self._issue_challenge(domain=domain, token=secrets.token_urlsafe(24))

    @event("DomainAdded", topic="DomainAdded")
    def _add_domain(self, domain: str) -> None:
        self.domains[domain] = False

    @event("DomainChallengeIssued", topic="DomainChallengeIssued")
    def _issue_challenge(self, domain: str, token: str) -> None:
        self.challenges[domain] = token

    @property
    def challenges(self) -> dict[str, str]:
        """Domain -> challenge token (absent from snapshots taken before issue 8: made on first use)."""
        found: dict[str, str] = self.__dict__.setdefault("_challenges", {})
        return found

    def challenge_for(self, domain: str) -> str | None:
        """The token this workspace must publish for ``domain``, while it is unverified."""
        domain = normalise_domain(domain)
        return None if self.domains.get(domain, True) else self.challenges.get(domain)

    def needs_proof(self, domain: str) -> bool:
        """True when ``domain`` is added and not verified; InvalidCommand when it was never added."""
        domain = normalise_domain(domain)
        if domain not in self.domains:
            raise InvalidCommand(f"domain {domain!r} has not been added")
        return not self.domains[domain]

    def verify_domain_by_dns(self, domain: str, found: Sequence[str], problem: str | None = None) -> None:
        """Issue 8: verified only when one TXT record ``found`` at ``challenge_record(domain)`` equals this
        workspace's own token (another workspace's token for the same domain never does). ``problem`` says
        why the look-up found nothing (no such name, timed out, ...)."""
        domain = normalise_domain(domain)
        if not self.needs_proof(domain):
            return
        record, token = challenge_record(domain), self.challenges.get(domain)
        if token is None:
            raise DomainNotProven(
                f"domain {domain!r} has no challenge yet: add it again (POST /api/v1/domains) to get one"
            )
        if not any(hmac.compare_digest(value.encode(), token.encode()) for value in found):
            why = problem or (
                "its TXT records do not hold this workspace's challenge" if found else "it has no TXT record"
            )
            raise DomainNotProven(
                f"domain {domain!r} is not proven: looked up the TXT record {record}, and {why}; publish "
                "the challenge value there and try again"
            )
        self._verify_domain(domain=domain, method="dns", record=record)

    def verify_domain_by_operator(self, domain: str) -> None:
        """An operator's word (``scimledger domain verify --no-dns``, on-premises): recorded as such."""
        if self.needs_proof(domain):
            self._verify_domain(domain=normalise_domain(domain), method="operator", record=None)

    def add_verified_domain(self, domain: str) -> None:
        """Workspace creation by an operator or the first-run bootstrap (README "Verifying a domain"): the
        domain is added and verified on the operator's word, recorded with ``method: "operator"``."""
        domain = checked_domain(domain)
        if domain not in self.domains:
            self._add_domain(domain=domain)
        self.verify_domain_by_operator(domain)

    @event("DomainVerified", topic="DomainVerified")
    def _verify_domain(self, domain: str, method: str | None = None, record: str | None = None) -> None:
        """``method`` ``dns`` (``record`` is the name looked up) or ``operator``; None in events recorded
        before issue 8, when saying so was enough."""
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
