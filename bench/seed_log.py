"""Seeding a big, realistic log fast for ``bench/audit.py`` (issue 7, "Scale"): no HTTP, but nothing faked.

Commands are decided by the real domain aggregates (``Workspace``, ``Person``, ``Member``, ``Team``,
``Membership``, ``UniquenessClaim``, with the real seat and admin rules of ``domain.access``), kept in
memory between commands instead of being loaded (which is what makes it fast), and saved through the real
write path, ``EventStore.write_batch``: the inline projections build the read model and one
``scimledger_append`` call per transaction extends the log and its hash chain. Each command keeps its own
metadata (actor, source, request id, user agent, client address), as group commit does, and long streams
are snapshotted after each commit as ``EventStore.snapshot`` does.

The mix, per member over the log (about 34 events): provisioned by one of two SCIM tokens (person, userName
and externalId claims, the member, a seat; 1 in 60 an admin), a dozen attribute changes, added to about four
teams (some removed again), two suspension/reactivation cycles (sessions revoked, seat released and taken
again), a role change by an admin (drift, until the IdP's next write), and 1 in 20 deprovisioned (claims
released, memberships ended). Teams (one per 100 members, with name and externalId claims) are pushed by
the IdP; seats are bought by an admin (or the operator) when the workspace runs out. The schedule is a
seeded random interleaving, so a member's history is spread over the whole log.

Two lanes write at once, as two server workers would: commands that save the Workspace take turns on it in
one, the others (attributes, teams) go in the other; an aggregate with events waiting or being written in
one lane is left alone by the other until they are committed (``Lane``).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.domain import Aggregate, Snapshot

from scimledger.domain import Member, Membership, Person, Team, UniquenessClaim, Workspace
from scimledger.domain.access import Before, reconcile
from scimledger.domain.ids import membership_id
from scimledger.scim.users import user_from_body
from scimledger.store import recorder
from scimledger.store.event_store import SNAPSHOT_EVERY, EventStore, Metadata
from scimledger.store.workspace_cache import PendingEvents

EVENTS_PER_MEMBER = 34
MEMBERS_PER_TEAM = 100
BATCH_EVENTS = 2000  # events per transaction (one append call)
TITLES = ("Engineer", "Senior Engineer", "Designer", "Product Manager", "Analyst", "Support", "Sales")
DEPARTMENTS = ("R&D", "Design", "Product", "Finance", "Support", "Sales", "Legal")
# command -> weight (how often it is drawn once members exist)
WEIGHTS = {
    "attributes": 12.0,
    "team_add": 2.0,
    "team_remove": 0.5,
    "suspend": 2.0,
    "reactivate": 1.8,
    "role": 1.0,
    "deprovision": 0.05,
}


@dataclass(frozen=True)
class Actor:
    """Who a command is recorded as (``Metadata`` without the per-request fields)."""

    kind: str
    id: str
    name: str
    source: str
    user_agent: str | None
    client_addr: str | None

    def metadata(self) -> Metadata:
        return Metadata(
            actor_kind=self.kind,
            actor_id=self.id,
            actor_name=self.name,
            source=self.source,
            request_id=uuid.uuid4().hex,
            user_agent=self.user_agent,
            client_addr=self.client_addr,
        )


@dataclass
class Plan:
    """How big a workspace's log should be."""

    events: int
    members: int
    teams: int

    @classmethod
    def for_events(cls, events: int) -> Plan:
        members = max(10, events // EVENTS_PER_MEMBER)
        return cls(events=events, members=members, teams=max(3, members // MEMBERS_PER_TEAM))


@dataclass
class Seeded:
    """What a seeding produced: counts, timings and ids the measurements pick from."""

    workspace_id: UUID
    events: int = 0
    commands: int = 0
    seconds: float = 0.0
    members: list[UUID] = field(default_factory=list)
    teams: list[UUID] = field(default_factory=list)
    commands_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


WORKSPACE_LANE, OTHER_LANE = 0, 1
LANES = {  # commands that save the Workspace take turns on it; the others run beside them
    "provision": WORKSPACE_LANE,
    "add_seats": WORKSPACE_LANE,
    "suspend": WORKSPACE_LANE,
    "reactivate": WORKSPACE_LANE,
    "role": WORKSPACE_LANE,
    "deprovision": WORKSPACE_LANE,
    "attributes": OTHER_LANE,
    "team_create": OTHER_LANE,
    "team_add": OTHER_LANE,
    "team_remove": OTHER_LANE,
}


@dataclass
class Lane:
    """A sequence of transactions, one at a time: the commands waiting (``pending``) and the batch being
    written. Like two requests in two workers, two lanes write at once, never on the same aggregate: an
    aggregate with events waiting or being written in one lane is left alone by the other until they are
    committed, so each stream's events commit in version order."""

    pending: list[tuple[list[PendingEvents], Metadata]] = field(default_factory=list)
    pending_events: int = 0
    pending_ids: set[UUID] = field(default_factory=set)
    writing_ids: set[UUID] = field(default_factory=set)
    task: asyncio.Task[None] | None = None

    def owns(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self.pending_ids or aggregate_id in self.writing_ids


class LogSeeder:
    """One workspace's commands, decided on in-memory aggregates and saved in batches, in two lanes."""

    def __init__(
        self,
        store: EventStore,
        workspace: Workspace,
        domain: str,
        scim: Sequence[Actor],
        admin: Actor,
        system: Actor,
        rng: random.Random,
        persons: set[UUID],
    ) -> None:
        self.store, self.workspace, self.domain = store, workspace, domain
        self.ws = workspace.id
        self.scim, self.admin, self.system, self.rng = scim, admin, system, rng
        self.persons = persons  # shared by workspaces: a person known elsewhere is linked, not registered
        self.members: dict[UUID, Member] = {}
        self.member_ids: list[UUID] = []
        self.member_teams: dict[UUID, set[UUID]] = {}
        self.teams: dict[UUID, Team] = {}
        self.team_ids: list[UUID] = []
        self.memberships: dict[UUID, Membership] = {}
        self.claims: dict[UUID, UniquenessClaim] = {}
        self.lanes = (Lane(), Lane())
        self.decided = 0  # events decided (committed, being written or waiting)
        self.next_user = 1
        self.seeded = Seeded(workspace.id)

    # --- bookkeeping --------------------------------------------------------------------------------------
    def _record(self, kind: str, aggregates: Sequence[Aggregate], meta: Metadata) -> None:
        """One command's events, each aggregate's collected now so that they keep this command's metadata,
        queued in the command's lane."""
        lane = self.lanes[LANES[kind]]
        changes = []
        for aggregate in aggregates:
            events = list(aggregate.collect_events())
            if events:
                changes.append(PendingEvents(aggregate, events))
                lane.pending_events += len(events)
                lane.pending_ids.add(aggregate.id)
                if isinstance(aggregate, Membership):  # joining a team locks the member's row (schema.sql, 6)
                    lane.pending_ids.add(UUID(aggregate.member_id))
                self.decided += len(events)
        if changes:
            lane.pending.append((changes, meta))
            self.seeded.commands += 1
            self.seeded.commands_by_kind[kind] = self.seeded.commands_by_kind.get(kind, 0) + 1

    def _free(self, kind: str, *ids: UUID) -> bool:
        """Whether no other lane than ``kind``'s has events of these aggregates waiting or being written."""
        other = self.lanes[1 - LANES[kind]]
        return not any(other.owns(i) for i in ids)

    async def write(self, lane: Lane, pool: asyncpg.Pool) -> None:
        """The lane's waiting commands in one transaction: inline projections, then one append (group
        commit); then the snapshots of streams that crossed a multiple of SNAPSHOT_EVERY, taken before the
        write (when the aggregates were exactly at the batch's last event), as ``EventStore.snapshot``."""
        batch, lane.pending, lane.pending_events = lane.pending, [], 0
        lane.writing_ids, lane.pending_ids = lane.pending_ids, set()
        snapshots = [
            self.store.mapper.to_stored_event(Snapshot.take(change.aggregate))
            for changes, _ in batch
            for change in changes
            if any(e.originator_version % SNAPSHOT_EVERY == 0 for e in change.events)
        ]
        groups: list[tuple[Sequence[Any], Metadata]] = [(c, m) for c, m in batch]
        async with pool.acquire() as conn, conn.transaction():
            saved = await self.store.write_batch(conn, self.ws, groups)
        for snapshot in snapshots:
            await recorder.save_snapshot(pool, snapshot)
        self.seeded.events += len(saved.positions)
        lane.writing_ids = set()

    async def drain(self) -> None:
        for lane in self.lanes:
            if lane.task is not None:
                await lane.task
                lane.task = None

    def _claim(self, kind: str, value: str, owner: UUID) -> UniquenessClaim:
        claim_id = UniquenessClaim.id_for(self.ws, kind, value)
        claim = UniquenessClaim.take(self.claims.get(claim_id), self.ws, kind, value, str(owner))
        self.claims[claim_id] = claim
        return claim

    def _scim_actor(self, member_id: UUID | None = None) -> Actor:
        """Each member belongs to one IdP connection (token); teams are pushed by the first."""
        return self.scim[(member_id.int if member_id else 0) % len(self.scim)]

    def _pick(self, want: str, kind: str, tries: int = 12) -> Member | None:
        """A random member in state ``want`` (active, suspended, or visible) that command ``kind`` may
        change now (not busy in the other lane)."""
        for _ in range(tries):
            member = self.members[self.rng.choice(self.member_ids)]
            state_ok = (want == "visible" and member.visible) or member.status == want
            if state_ok and self._free(kind, member.id):
                return member
        return None

    def _safe_to_drop_admin(self, member: Member) -> bool:
        return not member.is_active_admin or len(self.workspace.admins) > 3

    # --- commands -----------------------------------------------------------------------------------------
    def user_body(self, n: int, user_name: str) -> dict[str, Any]:
        rng = self.rng
        given, family = f"Given{n}", f"Family{n % 997}"
        body: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "externalId": f"00u{n:08d}{self.domain[:3]}",
            "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
            "displayName": f"{given} {family}",
            "title": rng.choice(TITLES),
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "locale": "en-US",
            "active": True,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": rng.choice(DEPARTMENTS),
                "employeeNumber": str(100000 + n),
            },
        }
        if n % 60 == 1:
            body["roles"] = [{"value": "admin", "primary": True}]
        return body

    def add_seats(self) -> None:
        """An admin (or the operator's CLI, one time in four) buys seats when the workspace is full."""
        actor = self.system if self.rng.random() < 0.25 else self.admin
        self.workspace.add_seats(500)
        self._record("add_seats", [self.workspace], actor.metadata())

    def provision(self) -> None:
        """POST /Users: as ``handlers.provision_user`` decides it (claims, person, member, seat, admin)."""
        if self.workspace.seats_available < 1:
            self.add_seats()
        n = self.next_user
        self.next_user += 1
        user_name = f"user{n}@{self.domain}"
        user = user_from_body(self.user_body(n, user_name))
        member_id = uuid.uuid4()
        claims = [self._claim("userName", user.user_name, member_id)]
        claims.append(self._claim("externalId", str(user.profile["externalId"]), member_id))
        person_key = Person.id_for(user.user_name)
        new_person = Person.register(user.user_name) if person_key not in self.persons else None
        self.persons.add(person_key)
        how = Member.Created if new_person is not None else Member.Linked
        roles = [r["value"] for r in user.profile.get("roles", [])]
        member = Member.start(
            how,
            member_id,
            workspace_id=str(self.ws),
            person_id=str(person_key),
            user_name=user.user_name,
            profile=user.profile,
            role="admin" if "admin" in roles else "member",
            managed_by="idp",
            status="active",
        )
        reconcile(self.workspace, member, Before.of(None))
        self.members[member_id] = member
        self.member_ids.append(member_id)
        self.member_teams[member_id] = set()
        aggregates = [self.workspace, *([new_person] if new_person else []), member, *claims]
        self._record("provision", aggregates, self._scim_actor(member_id).metadata())

    def change_attributes(self) -> None:
        """PATCH /Users: a new title, department or display name (MemberAttributesChanged)."""
        member = self._pick("visible", "attributes")
        if member is None or member.managed_by != "idp":
            return
        profile = {**member.profile}
        what = self.rng.random()
        if what < 0.5:
            profile["title"] = self.rng.choice(TITLES)
        elif what < 0.8:
            ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            profile[ext] = {**profile[ext], "department": self.rng.choice(DEPARTMENTS)}
        else:
            profile["displayName"] = f"{profile['name']['givenName']} {self.rng.randrange(10**6)}"
        if member.change_profile(member.user_name, profile):
            self._record("attributes", [member], self._scim_actor(member.id).metadata())

    def create_team(self) -> None:
        """POST /Groups: an IdP-managed team with its name and externalId claims and a few members."""
        team_id = uuid.uuid4()
        number = len(self.team_ids) + 1
        name, external = f"Team {number:04d}", f"grp-{number:05d}"
        team = Team._create(
            Team.Created,
            id=team_id,
            workspace_id=str(self.ws),
            display_name=name,
            external_id=external,
            managed_by="idp",
        )
        self.teams[team_id] = team
        self.team_ids.append(team_id)
        claims = [self._claim("teamName", name, team_id), self._claim("groupExternalId", external, team_id)]
        added = self._add_to_team(team_id, self.rng.randint(0, 5))
        self._record("team_create", [team, *claims, *added], self._scim_actor().metadata())

    def _add_to_team(self, team_id: UUID, count: int) -> list[Membership]:
        added = []
        for _ in range(count):
            member = self._pick("active", "team_add")
            if member is None or team_id in self.member_teams[member.id]:
                continue
            key = membership_id(team_id, member.id)
            existing = self.memberships.get(key)
            membership = Membership.add(existing, str(self.ws), str(team_id), str(member.id), None)
            self.memberships[key] = membership
            self.member_teams[member.id].add(team_id)
            if membership not in added:
                added.append(membership)
        return added

    def team_add(self) -> None:
        """PATCH /Groups add members (TeamMemberAdded; a member who left comes back on the same stream)."""
        team_id = self.rng.choice(self.team_ids)
        added = self._add_to_team(team_id, self.rng.randint(1, 4))
        self._record("team_add", [self.teams[team_id], *added], self._scim_actor().metadata())

    def team_remove(self) -> None:
        """PATCH /Groups remove a member (TeamMemberRemoved)."""
        member = self._pick("active", "team_remove")
        if member is None or not self.member_teams[member.id]:
            return
        team_id = self.rng.choice(sorted(self.member_teams[member.id]))
        membership = self.memberships[membership_id(team_id, member.id)]
        membership.remove()
        self.member_teams[member.id].discard(team_id)
        self._record("team_remove", [self.teams[team_id], membership], self._scim_actor().metadata())

    def suspend(self) -> None:
        """PATCH active=false: suspended, sessions revoked, seat released (admin revoked)."""
        member = self._pick("active", "suspend")
        if member is None or not self._safe_to_drop_admin(member):
            return
        before = Before.of(member)
        member.suspend(reason="deactivated by the identity provider")
        member.revoke_sessions(reason="deactivated by the identity provider")
        reconcile(self.workspace, member, before)
        self._record("suspend", [self.workspace, member], self._scim_actor(member.id).metadata())

    def reactivate(self) -> None:
        """PATCH active=true: back to active, a seat taken again (admin granted again)."""
        member = self._pick("suspended", "reactivate")
        if member is None:
            return
        if self.workspace.seats_available < 1:
            self.add_seats()
        before = Before.of(member)
        member.reactivate()
        reconcile(self.workspace, member, before)
        self._record("reactivate", [self.workspace, member], self._scim_actor(member.id).metadata())

    def change_role(self) -> None:
        """PATCH /api/v1/members/{id} by an admin: an admin demoted or a member promoted, about as often
        (so the workspace keeps a few percent of admins); drift on an IdP-managed member."""
        admins = self.workspace.admins
        member: Member | None
        if admins and self.rng.random() < 0.5:
            member = self.members[UUID(self.rng.choice(admins))]
        else:
            member = self._pick("active", "role")
        if member is None or not self._free("role", member.id) or not self._safe_to_drop_admin(member):
            return
        before = Before.of(member)
        member.change_role("member" if member.role == "admin" else "admin")
        reconcile(self.workspace, member, before)
        self._record("role", [self.workspace, member], self.admin.metadata())

    def deprovision(self) -> None:
        """DELETE /Users: claims released, memberships ended, sessions revoked, seat released."""
        member = self._pick("visible", "deprovision")
        if member is None or not self._safe_to_drop_admin(member):
            return
        teams = sorted(self.member_teams[member.id])
        if not self._free("deprovision", *(membership_id(t, member.id) for t in teams)):
            return
        before = Before.of(member)
        owner = str(member.id)
        claims = []
        for kind, value in (("userName", member.user_name), ("externalId", member.profile.get("externalId"))):
            claim = self.claims.get(UniquenessClaim.id_for(self.ws, kind, str(value)))
            if claim is not None and claim.owner_id == owner:
                claim.release()
                claims.append(claim)
        ended = []
        for team_id in teams:
            membership = self.memberships[membership_id(team_id, member.id)]
            membership.remove()
            ended.append(membership)
        self.member_teams[member.id].clear()
        if member.status in ("active", "invited"):
            member.revoke_sessions(reason="deprovisioned by the identity provider")
        member.deprovision()
        reconcile(self.workspace, member, before)
        self._record(
            "deprovision", [self.workspace, member, *claims, *ended], self._scim_actor(member.id).metadata()
        )

    def next_command(self, plan: Plan) -> None:
        """Draw the next command: provisions and team pushes spread over the log, the rest by WEIGHTS."""
        members, teams = len(self.member_ids), len(self.team_ids)
        left = max(1, plan.events - self.decided)
        provisions_left = plan.members - members
        # one provision per EVENTS_PER_MEMBER events still to write keeps provisioning going to the end
        if members == 0 or (provisions_left > 0 and self.rng.random() < provisions_left * 2 / left):
            self.provision()
            return
        if teams == 0 or (teams < plan.teams and self.rng.random() < (plan.teams - teams) * 2 / left):
            self.create_team()
            return
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        {
            "attributes": self.change_attributes,
            "team_add": self.team_add,
            "team_remove": self.team_remove,
            "suspend": self.suspend,
            "reactivate": self.reactivate,
            "role": self.change_role,
            "deprovision": self.deprovision,
        }[kind]()

    def done(self, plan: Plan) -> bool:
        return self.decided >= plan.events

    async def step(self, plan: Plan, pool: asyncpg.Pool, events: int, batch: int) -> None:
        """About ``events`` more events decided (never past ``plan.events``); a lane with ``batch`` events
        waiting starts writing them (after its previous write, if that is still going on)."""
        started = time.monotonic()
        goal = min(plan.events, self.decided + events)
        while self.decided < goal:
            self.next_command(plan)
            for lane in self.lanes:
                if lane.pending_events >= batch:
                    if lane.task is not None:
                        await lane.task
                    lane.task = asyncio.create_task(self.write(lane, pool))
            await asyncio.sleep(0)  # let the writes go on while commands are decided
        if self.done(plan):
            for lane in self.lanes:
                if lane.task is not None:
                    await lane.task
                if lane.pending:
                    lane.task = asyncio.create_task(self.write(lane, pool))
            await self.drain()
        self.seeded.seconds += time.monotonic() - started
        self.seeded.members = self.member_ids
        self.seeded.teams = self.team_ids


async def seed_interleaved(
    pool: asyncpg.Pool, seeders: Sequence[tuple[LogSeeder, Plan]], progress: bool = True
) -> float:
    """Seed every workspace at once, their transactions interleaved in proportion to their sizes (the
    first is the big one), so that each workspace's events are spread over the global log. Returns the
    seconds taken."""
    started, shown = time.monotonic(), 0
    (big, big_plan), others = seeders[0], seeders[1:]
    while not all(s.done(p) for s, p in seeders):
        await big.step(big_plan, pool, BATCH_EVENTS, BATCH_EVENTS)
        for seeder, plan in others:
            if not seeder.done(plan):
                share = max(10, BATCH_EVENTS * plan.events // big_plan.events)
                await seeder.step(plan, pool, share, share)
        total = sum(s.seeded.events for s, _ in seeders)
        if progress and total - shown >= 100_000:
            shown = total
            print(
                f"audit: seeded {total:,} events ({total / (time.monotonic() - started):,.0f}/s)", flush=True
            )
    for seeder, _ in seeders:
        await seeder.drain()
    return time.monotonic() - started


async def load_workspace(store: EventStore, workspace_id: UUID) -> Workspace:
    workspace = await store.load(Workspace, workspace_id)
    if workspace is None:
        raise RuntimeError(f"workspace {workspace_id} does not exist")
    return workspace
