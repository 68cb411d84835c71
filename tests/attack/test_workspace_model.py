"""The workspace rules against a model (issue 8, "Attack suite"; README "Workspace rules"): a Hypothesis
state machine drives SCIM (create, PATCH ``active``, PATCH ``roles``, DELETE) and the admin API (add seats,
automatic seat assignment on/off, add a member, change a role, suspend/reactivate, accept an invite) and,
after every step, compares the app with a small in-memory model of the seat, role, last-admin and invite
rules: each answer's status, every member's status, role, manager and seat, the seat counts (read model and
log) and the admins (from the log).

How it runs: the test is a coroutine on pytest-asyncio's session loop; it hands the state machine to a
worker thread (``asyncio.to_thread``), and each rule sends its requests back to the session loop
(``run_coroutine_threadsafe``), where the app, its pool and the ASGI client live. Each example (one run of
the machine) gets a workspace of its own. Derandomized, with a fixed number of examples and steps.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from tests.attack.conftest import admin
from tests.conftest import Workspace, make_workspace

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
VERIFIED = "verified.test"
UNVERIFIED = "elsewhere.test"
RUNS = settings(
    max_examples=20,
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
NAMES = itertools.count()


@dataclass
class Person:
    """The model of one member (README "Workspace rules")."""

    status: str  # active | invited | suspended | deprovisioned
    role: str  # admin | member
    managed_by: str  # idp | app
    joined: bool  # added directly, or accepted the invite: reactivation returns to active
    idp_role: str = "member"  # the role the IdP's roles say: its next write restores it over an admin's

    @property
    def has_seat(self) -> bool:
        """Active members hold a seat; an invite reserves one."""
        return self.status in ("active", "invited")

    @property
    def is_admin(self) -> bool:
        """Counts for last-admin protection: active with the admin role."""
        return self.status == "active" and self.role == "admin"


class Refused(Exception):
    """The model refuses the change: (SCIM status, admin API status and code)."""

    def __init__(self, scim: int, api: tuple[int, str]) -> None:
        super().__init__(scim, api)
        self.scim, self.api = scim, api


NO_SEAT = Refused(403, (409, "no_free_seat"))
LAST_ADMIN = Refused(400, (409, "last_admin"))
NOT_FOUND = Refused(404, (404, "not_found"))


class Model:
    def __init__(self, seats: int) -> None:
        self.total = seats
        self.auto = False
        self.people: dict[str, Person] = {}

    @property
    def assigned(self) -> int:
        return sum(p.has_seat for p in self.people.values())

    @property
    def admins(self) -> set[str]:
        return {i for i, p in self.people.items() if p.is_admin}

    def seat_for(self, extra: int = 1) -> None:
        """Take ``extra`` seats: free ones, else bought with automatic assignment, else refused."""
        missing = self.assigned + extra - self.total
        if missing > 0:
            if not self.auto:
                raise NO_SEAT
            self.total += missing

    def change(self, member: str, *, status: str | None = None, role: str | None = None) -> None:
        """Move a member to a new status and/or role under the seat and last-admin rules."""
        person = self.people[member]
        after = Person(
            status or person.status, role or person.role, person.managed_by, person.joined, person.idp_role
        )
        if person.is_admin and not after.is_admin and self.admins == {member}:
            raise LAST_ADMIN
        if after.has_seat and not person.has_seat:
            self.seat_for()
        self.people[member] = after

    def visible(self, member: str) -> Person:
        person = self.people[member]
        if person.status == "deprovisioned":
            raise NOT_FOUND
        return person

    def reactivated(self, person: Person) -> str:
        return "active" if person.joined else "invited"


class WorkspaceMachine(RuleBasedStateMachine):
    """Bound to the session loop, the app and its client by :func:`bound_machine`."""

    loop: ClassVar[asyncio.AbstractEventLoop]
    app: ClassVar[Any]
    client: ClassVar[httpx.AsyncClient]

    members = Bundle("members")

    def __init__(self) -> None:
        super().__init__()
        self.model = Model(0)
        self.ws: Workspace | None = None

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    @property
    def workspace(self) -> Workspace:
        assert self.ws is not None
        return self.ws

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = self.workspace.auth if path.startswith("/scim/") else admin(self.workspace)
        return self.run(self.client.request(method, path, json=body, headers=headers))  # type: ignore[no-any-return]

    def expect(self, response: httpx.Response, refused: Refused | None, ok: int = 200) -> None:
        """The answer the model predicts: ``ok``, or the refusal's status (and code on the admin API)."""
        shown = f"{response.request.method} {response.request.url.path}: {response.text[:300]}"
        scim = response.request.url.path.startswith("/scim/")
        if refused is None:
            assert response.status_code == ok, shown
        elif scim:
            assert response.status_code == refused.scim, shown
        else:
            assert (response.status_code, response.json()["error"]["code"]) == refused.api, shown

    @initialize(seats=st.integers(0, 3))
    def create_workspace(self, seats: int) -> None:
        self.ws = self.run(make_workspace(self.app.state.store, domains=(VERIFIED,), seats=seats))
        self.model = Model(seats)

    # --- SCIM ------------------------------------------------------------------------------------------
    @rule(target=members, verified=st.booleans(), is_admin=st.booleans(), active=st.booleans())
    def scim_create(self, verified: bool, is_admin: bool, active: bool) -> Any:
        user_name = f"p{next(NAMES)}@{VERIFIED if verified else UNVERIFIED}"
        body = {
            "userName": user_name,
            "active": active,
            "roles": [{"value": "Admin" if is_admin else "member"}],
        }
        response = self.request("POST", "/scim/v2/Users", body)
        status = ("active" if verified else "invited") if active else "suspended"
        role = "admin" if is_admin else "member"
        person = Person(status, role, "idp", joined=verified, idp_role=role)
        try:
            if person.has_seat:
                self.model.seat_for()
        except Refused as refused:
            self.expect(response, refused)
            return multiple()
        self.expect(response, None, 201)
        member = str(response.json()["id"])
        self.model.people[member] = person
        return member

    def scim_write(self, member: str, method: str, body: Any, **change: str) -> bool:
        """A SCIM write to ``member``: 404 when deprovisioned, 403 for an app-managed member. A PATCH
        reconciles drift: the role is the one the IdP's ``roles`` say, whatever an admin set since."""
        response = self.request(method, f"/scim/v2/Users/{member}", body)
        try:
            person = self.model.visible(member)
            if person.managed_by != "idp":
                raise Refused(403, (403, "not_managed"))
            if method == "PATCH":
                change = {"role": person.idp_role, **change}
            self.model.change(member, **change)
        except Refused as refused:
            self.expect(response, refused)
            return False
        self.expect(response, None, 204 if method == "DELETE" else 200)
        return True

    @rule(member=members, active=st.booleans())
    def scim_patch_active(self, member: str, active: bool) -> None:
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": active}]}
        person = self.model.people[member]
        status = person.status
        if not active and status in ("active", "invited"):
            status = "suspended"
        elif active and status == "suspended":
            status = self.model.reactivated(person)
        self.scim_write(member, "PATCH", body, status=status)

    @rule(member=members, is_admin=st.booleans())
    def scim_patch_roles(self, member: str, is_admin: bool) -> None:
        roles = [{"value": "admin" if is_admin else "member"}]
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "roles", "value": roles}]}
        role = "admin" if is_admin else "member"
        if self.scim_write(member, "PATCH", body, role=role):
            self.model.people[member].idp_role = role

    @rule(member=members)
    def scim_delete(self, member: str) -> None:
        self.scim_write(member, "DELETE", None, status="deprovisioned")

    # --- admin API -------------------------------------------------------------------------------------
    @rule(count=st.integers(1, 3))
    def add_seats(self, count: int) -> None:
        self.expect(self.request("POST", "/api/v1/seats", {"count": count}), None)
        self.model.total += count

    @rule(enabled=st.booleans())
    def automatic_seat_assignment(self, enabled: bool) -> None:
        body = {"automatic_seat_assignment": enabled}
        self.expect(self.request("PATCH", "/api/v1/workspace/settings", body), None)
        self.model.auto = enabled

    @rule(target=members, verified=st.booleans(), is_admin=st.booleans())
    def admin_add_member(self, verified: bool, is_admin: bool) -> Any:
        user_name = f"p{next(NAMES)}@{VERIFIED if verified else UNVERIFIED}"
        role = "admin" if is_admin else "member"
        response = self.request("POST", "/api/v1/members", {"user_name": user_name, "role": role})
        try:
            self.model.seat_for()
        except Refused as refused:
            self.expect(response, refused)
            return multiple()
        self.expect(response, None, 201)
        member = str(response.json()["id"])
        self.model.people[member] = Person("active" if verified else "invited", role, "app", joined=verified)
        return member

    def admin_change(self, member: str, body: dict[str, Any], **change: str) -> None:
        response = self.request("PATCH", f"/api/v1/members/{member}", body)
        try:
            self.model.visible(member)
            self.model.change(member, **change)
        except Refused as refused:
            self.expect(response, refused)
            return
        self.expect(response, None)

    @rule(member=members, is_admin=st.booleans())
    def admin_change_role(self, member: str, is_admin: bool) -> None:
        role = "admin" if is_admin else "member"
        self.admin_change(member, {"role": role}, role=role)

    @rule(member=members, active=st.booleans())
    def admin_set_active(self, member: str, active: bool) -> None:
        person = self.model.people[member]
        status = person.status
        if not active and status in ("active", "invited"):
            status = "suspended"
        elif active and status == "suspended":
            status = self.model.reactivated(person)
        self.admin_change(member, {"active": active}, status=status)

    @rule(member=members)
    def accept_invite(self, member: str) -> None:
        response = self.request("POST", f"/api/v1/members/{member}/accept-invite")
        try:
            person = self.model.visible(member)
            if person.status != "invited":
                raise Refused(400, (400, "invalid_command"))
            self.model.change(member, status="active")
            self.model.people[member].joined = True
        except Refused as refused:
            self.expect(response, refused)
            return
        self.expect(response, None)

    # --- after every step ------------------------------------------------------------------------------
    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.ws is None:
            return
        model = self.model
        workspace = self.request("GET", "/api/v1/workspace").json()
        assert workspace["settings"] == {"automatic_seat_assignment": model.auto}
        seats = {"total": model.total, "assigned": model.assigned, "available": model.total - model.assigned}
        assert workspace["seats"] == seats
        from_log = self.request("GET", "/api/v1/seats").json()
        assert {k: from_log[k] for k in seats} == seats
        listed = self.request("GET", "/api/v1/members").json()["members"]
        found = {m["id"]: (m["status"], m["role"], m["managed_by"], m["has_seat"]) for m in listed}
        expected = {i: (p.status, p.role, p.managed_by, p.has_seat) for i, p in model.people.items()}
        assert found == expected
        admins = self.request("GET", "/api/v1/admins").json()["admins"]
        assert {a["member_id"] for a in admins} == model.admins


def bound_machine(loop: asyncio.AbstractEventLoop, app: Any, client: httpx.AsyncClient) -> type:
    return type("BoundWorkspaceMachine", (WorkspaceMachine,), {"loop": loop, "app": app, "client": client})


async def test_seats_roles_last_admin_and_invites_follow_the_model(
    unlimited: Any, client: httpx.AsyncClient
) -> None:
    machine = bound_machine(asyncio.get_running_loop(), unlimited, client)
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=RUNS)
