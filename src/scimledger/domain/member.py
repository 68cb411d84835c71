"""The Member aggregate: one person's membership of one workspace. Its id is the SCIM ``id``.

``profile`` holds the member's SCIM attributes (keys are SCIM attribute names, canonical spelling; never a
password). Status: active / invited / suspended / deprovisioned (seed 000: suspension instead of deletion).
``managed_by`` is ``idp`` for members provisioned through SCIM and ``app`` for members added in the product.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.domain.errors import InvalidCommand
from scimledger.domain.limits import bounded
from scimledger.domain.personal import ERASED, ErasedProfile

ROLES = ("member", "admin")


def holds_seat(status: str) -> bool:
    return status in ("active", "invited")


def role_from_values(values: list[str]) -> str:
    """Seed 000: ``admin`` or ``member`` (case-insensitive); unrecognised means member; admin wins."""
    return "admin" if any(v.strip().lower() == "admin" for v in values) else "member"


class Member(Aggregate):
    TOPIC = "Member"

    class Created(Aggregate.Created):
        """Seed 000: a member provisioned by the IdP (or added in the app) into the workspace."""

        TOPIC = "MemberProvisioned"
        workspace_id: str
        person_id: str
        user_name: str
        profile: dict[str, Any]
        role: str
        managed_by: str
        status: str

    class Invited(Created):
        """Seed 000: a userName outside the verified domains gets an invite; active once accepted."""

        TOPIC = "MemberInvited"

    class Linked(Created):
        """Seed 000: an existing person (same email) is linked to the workspace, not duplicated."""

        TOPIC = "MemberLinked"

    def __init__(
        self,
        workspace_id: str,
        person_id: str,
        user_name: str,
        profile: dict[str, Any],
        role: str,
        managed_by: str,
        status: str,
    ) -> None:
        self.workspace_id = workspace_id
        self.person_id = person_id
        self.user_name = user_name
        self.profile = profile
        self.role = role
        self.managed_by = managed_by
        self.status = status
        self.link_requested = False
        self.requested_profile: dict[str, Any] | None = None
        self.requested_role: str | None = None
        self._joined = status != "invited"

    @classmethod
    def start(cls, how: type[Created], member_id: UUID, **kwargs: Any) -> Member:
        """Create a member with one of the three creation events (Created, Invited, Linked)."""
        return cls._create(how, id=member_id, **kwargs)

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def has_seat(self) -> bool:
        """Seed 000: an active member holds a seat, and an invited one has a seat reserved; suspended and
        deprovisioned members hold none."""
        return holds_seat(self.status)

    @property
    def is_active_admin(self) -> bool:
        """Counts for last-admin protection: an active member with the admin role."""
        return self.status == "active" and self.role == "admin"

    @property
    def visible(self) -> bool:
        """Deprovisioned members are kept for history but no longer visible through SCIM."""
        return self.status != "deprovisioned"

    def change_profile(self, user_name: str, profile: dict[str, Any]) -> bool:
        """Record new attributes; returns False (and records nothing) when nothing changed."""
        if user_name == self.user_name and profile == self.profile:
            return False
        bounded("userName", user_name)
        self._change_profile(user_name=user_name, profile=profile)
        return True

    @event("AttributesChanged", topic="MemberAttributesChanged")
    def _change_profile(self, user_name: str, profile: dict[str, Any]) -> None:
        self.user_name = user_name
        self.profile = profile

    def change_role(self, role: str) -> None:
        if role not in ROLES:
            raise InvalidCommand(f"unknown role {role!r}")
        if role != self.role:
            self._change_role(role=role)

    @event("RoleChanged", topic="MemberRoleChanged")
    def _change_role(self, role: str) -> None:
        self.role = role

    def change_manager(self, managed_by: str) -> None:
        if managed_by != self.managed_by:
            self._change_manager(managed_by=managed_by)

    @event("ManagementChanged", topic="MemberManagementChanged")
    def _change_manager(self, managed_by: str) -> None:
        self.managed_by = managed_by
        self.link_requested = False

    def request_link(self, profile: dict[str, Any], role: str) -> None:
        """Seed 000 + issue 4: an IdP provisions a person this workspace manages in the app, through a domain
        that is not verified: the person must accept before the IdP manages them. What the IdP sent is kept
        with the request and applied on acceptance."""
        if self.managed_by != "idp" and (not self.link_requested or profile != self.requested_profile):
            self._request_link(profile=profile, role=role)

    @event("LinkRequested", topic="MemberLinkRequested")
    def _request_link(self, profile: dict[str, Any] | None = None, role: str | None = None) -> None:
        self.link_requested = True
        self.requested_profile = profile
        self.requested_role = role

    def accept_link(self) -> None:
        """The person accepted: the IdP manages them from now on, with the attributes it sent."""
        if not self.link_requested:
            return
        profile, role = getattr(self, "requested_profile", None), getattr(self, "requested_role", None)
        self._change_manager(managed_by="idp")
        if profile is not None:
            self.change_profile(str(profile.get("userName", self.user_name)), profile)
        if role is not None:
            self.change_role(role)

    def suspend(self, reason: str) -> None:
        if self.status in ("suspended", "deprovisioned"):
            return
        self._suspend(reason=reason)

    @event("Suspended", topic="MemberSuspended")
    def _suspend(self, reason: str) -> None:
        self.status = "suspended"

    def reactivate(self) -> None:
        """Back to where the member was: active, or still invited if they never accepted (seed 000)."""
        if self.status == "suspended":
            self._reactivate(status="active" if self.joined else "invited")

    @event("Reactivated", topic="MemberReactivated")
    def _reactivate(self, status: str = "active") -> None:
        self.status = status

    @property
    def joined(self) -> bool:
        """Whether the person is (or was) in the workspace: added directly, or accepted the invite."""
        return bool(getattr(self, "_joined", True))

    def accept_invite(self) -> None:
        if self.status != "invited":
            raise InvalidCommand("the member has no pending invite")
        self._accept_invite()

    @event("InviteAccepted", topic="InviteAccepted")
    def _accept_invite(self) -> None:
        self.status = "active"
        self._joined = True

    def deprovision(self) -> None:
        if self.status != "deprovisioned":
            self._deprovision()

    @event("Deprovisioned", topic="MemberDeprovisioned")
    def _deprovision(self) -> None:
        self.status = "deprovisioned"

    @property
    def erased(self) -> bool:
        """Whether the member's personal data is erased (README "Erasure (crypto-shredding)")."""
        return bool(getattr(self, "_erased", False))

    def erase(self, reason: str | None, requested_by: dict[str, str]) -> None:
        """Record the erasure of the member's personal data; the store destroys its key (domain/erasure.py
        says who may be erased). ``requested_by``: the actor who asked (kind, id, name)."""
        if not self.erased:
            self._erase(reason=reason, requested_by=requested_by)

    @event("PersonalDataErased", topic="PersonalDataErased")
    def _erase(self, reason: str | None, requested_by: dict[str, str]) -> None:
        self.user_name = ERASED
        self.profile = ErasedProfile()
        self.requested_profile = None
        self._erased = True

    def revoke_sessions(self, reason: str) -> None:
        """Seed 000: removing or deactivating a user suspends membership and revokes their session."""
        self._revoke_sessions(reason=reason, user_name=self.user_name)

    @event("SessionsRevoked", topic="MemberSessionsRevoked")
    def _revoke_sessions(self, reason: str, user_name: str) -> None:
        pass
