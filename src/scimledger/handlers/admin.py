"""Admin commands (the ``/api/v1`` surface): settings, seats, domains, app-managed members and teams,
invites. Every rule is the domain's; changes an admin makes to what the IdP manages are recorded with the
admin as actor and show up as drift (projections/drift.py) until the IdP's next write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID, uuid4

from scimledger import dns_proof, views
from scimledger.domain import Member, Team, UniquenessClaim, Workspace
from scimledger.domain.access import Before, reconcile
from scimledger.domain.errors import AlreadyTaken, InvalidCommand, UnknownResource
from scimledger.domain.limits import bounded
from scimledger.domain.member import ROLES
from scimledger.domain.workspace import challenge_record, normalise_domain
from scimledger.handlers.common import claim_conflict, with_retry
from scimledger.store.event_store import EventStore, Metadata
from scimledger.store.recorder import VersionConflict

TxtLookupFn = Callable[[str], Awaitable[dns_proof.TxtLookup]]


@dataclass(frozen=True)
class ChangeSettings:
    workspace_id: UUID
    automatic_seat_assignment: bool


@dataclass(frozen=True)
class AddSeats:
    workspace_id: UUID
    count: int


@dataclass(frozen=True)
class AddDomain:
    workspace_id: UUID
    domain: str


@dataclass(frozen=True)
class VerifyDomain:
    """Issue 8: ``method`` ``dns`` proves control with the workspace's TXT challenge; ``operator`` is an
    operator's word (the CLI's ``--no-dns``, on-premises), recorded as such."""

    workspace_id: UUID
    domain: str
    method: str = "dns"


@dataclass(frozen=True)
class Challenge:
    """What to publish to prove control of a domain (README "Verifying a domain")."""

    record: str
    value: str
    type: str = "TXT"


@dataclass(frozen=True)
class ChangeMember:
    workspace_id: UUID
    member_id: UUID
    role: str | None = None
    active: bool | None = None


@dataclass(frozen=True)
class AcceptInvite:
    workspace_id: UUID
    member_id: UUID


@dataclass(frozen=True)
class CreateAppTeam:
    workspace_id: UUID
    name: str


@dataclass(frozen=True)
class UnlinkTeam:
    workspace_id: UUID
    team_id: UUID


async def _change_workspace(
    store: EventStore, workspace_id: UUID, meta: Metadata, change: Callable[[Workspace], None]
) -> None:
    """Apply ``change`` (a Workspace command method call) under the workspace gate and save."""

    async def attempt() -> None:
        async with store.workspaces.hold(workspace_id) as workspace:
            change(workspace)
            await store.save(workspace_id, [workspace], meta)

    await with_retry(attempt)


async def change_settings(store: EventStore, cmd: ChangeSettings, meta: Metadata) -> None:
    """Seed 000: automatic seat assignment on or off."""
    enabled = cmd.automatic_seat_assignment
    await _change_workspace(store, cmd.workspace_id, meta, lambda w: w.set_automatic_seat_assignment(enabled))


async def add_seats(store: EventStore, cmd: AddSeats, meta: Metadata) -> None:
    await _change_workspace(store, cmd.workspace_id, meta, lambda w: w.add_seats(cmd.count))


async def add_domain(store: EventStore, cmd: AddDomain, meta: Metadata) -> Challenge | None:
    """Add the domain unverified; returns its challenge (None when the domain is already verified)."""
    challenge: list[Challenge | None] = []

    def add(workspace: Workspace) -> None:
        workspace.add_domain(cmd.domain)
        token = workspace.challenge_for(cmd.domain)
        challenge[:] = [Challenge(challenge_record(cmd.domain), token) if token else None]

    await _change_workspace(store, cmd.workspace_id, meta, add)
    return challenge[0]


async def verify_domain(
    store: EventStore, cmd: VerifyDomain, meta: Metadata, lookup: TxtLookupFn = dns_proof.lookup_txt
) -> None:
    """Issue 8: verify on proof. The DNS look-up is I/O, so it happens here, before the command and outside
    the workspace's gate; the aggregate then compares what was found with its own token."""
    if cmd.method == "operator":
        await _change_workspace(
            store, cmd.workspace_id, meta, lambda w: w.verify_domain_by_operator(cmd.domain)
        )
        return
    if cmd.method != "dns":
        raise InvalidCommand("method must be dns or operator")
    current = await store.load(Workspace, cmd.workspace_id)
    if current is None:
        raise UnknownResource(f"workspace {cmd.workspace_id} does not exist")
    if not current.needs_proof(cmd.domain):
        return
    found = await lookup(challenge_record(cmd.domain))

    def verify(workspace: Workspace) -> None:
        if normalise_domain(cmd.domain) not in workspace.domains:
            raise VersionConflict(None)  # this process's cached workspace is older than the one just read
        workspace.verify_domain_by_dns(cmd.domain, found.values, found.problem)

    await _change_workspace(store, cmd.workspace_id, meta, verify)


async def _member(store: EventStore, ws: UUID, member_id: UUID) -> Member:
    member = await store.load(Member, member_id)
    if member is None or member.workspace_id != str(ws) or not member.visible:
        raise UnknownResource(f"member {member_id} not found")
    return member


async def change_member(store: EventStore, cmd: ChangeMember, meta: Metadata) -> None:
    """Role and access by an admin (seed 004: admins may change roles even of IdP-provisioned members);
    the last admin stays protected (seed 000)."""
    if cmd.role is not None and cmd.role not in ROLES:
        raise InvalidCommand(f"role must be one of {', '.join(ROLES)}")
    ws = cmd.workspace_id

    async def attempt() -> None:
        async with store.workspaces.hold(ws) as workspace:
            member = await _member(store, ws, cmd.member_id)
            before = Before.of(member)
            if cmd.role is not None:
                member.change_role(cmd.role)
            if cmd.active is False and member.status in ("active", "invited"):
                member.suspend(reason="suspended by an admin")
                member.revoke_sessions(reason="suspended by an admin")
            elif cmd.active is True and member.status == "suspended":
                member.reactivate()
            reconcile(workspace, member, before)
            await store.save(ws, [workspace, member], meta)

    await with_retry(attempt)


async def accept_invite(store: EventStore, cmd: AcceptInvite, meta: Metadata) -> None:
    """Seed 000: an invited member joins once they accept (InviteAccepted); a person asked to let the IdP
    manage them (MemberLinkRequested) becomes IdP-managed."""
    ws = cmd.workspace_id

    async def attempt() -> None:
        async with store.workspaces.hold(ws) as workspace:
            member = await _member(store, ws, cmd.member_id)
            before = Before.of(member)
            if not member.link_requested and member.status != "invited":
                raise InvalidCommand("the member has no pending invite")
            if member.link_requested:
                member.accept_link()
                external = member.profile.get("externalId")
                if isinstance(external, str):  # the IdP's externalId becomes this member's
                    held = await views.holders(store.pool, ws, None, external)
                    if held.external_id not in (None, member.id):
                        raise AlreadyTaken("externalId", external)
            if member.status == "invited":
                member.accept_invite()
            reconcile(workspace, member, before)
            await store.save(ws, [workspace, member], meta)

    await with_retry(attempt)


async def create_app_team(store: EventStore, cmd: CreateAppTeam, meta: Metadata) -> UUID:
    """A team made in the app (seed 002: "first make sure the team exists"); an IdP can later link it."""
    name = cmd.name.strip()
    if not name:
        raise InvalidCommand("a team needs a name")
    bounded("a team name", name)
    ws, team_id = cmd.workspace_id, uuid4()
    claim_id = UniquenessClaim.id_for(ws, "teamName", name)

    async def attempt() -> UUID:
        team = Team._create(
            Team.Created,
            id=team_id,
            workspace_id=str(ws),
            display_name=name,
            external_id=None,
            managed_by="app",
        )
        claim = UniquenessClaim.take(
            await store.load(UniquenessClaim, claim_id), ws, "teamName", name, str(team_id)
        )
        try:
            await store.save(ws, [team, claim], meta)
        except VersionConflict as error:
            claim_conflict(error, {claim_id: ("teamName", name)})
            raise
        return team_id

    return await with_retry(attempt)


async def unlink_team(store: EventStore, cmd: UnlinkTeam, meta: Metadata) -> None:
    """Seed 004 "Unlink from SCIM": the team becomes app-managed and stays."""

    async def attempt() -> None:
        team = await store.load(Team, cmd.team_id)
        if team is None or team.workspace_id != str(cmd.workspace_id) or team.archived:
            raise UnknownResource(f"team {cmd.team_id} not found")
        team.unlink()
        await store.save(cmd.workspace_id, [team], meta)

    await with_retry(attempt)
