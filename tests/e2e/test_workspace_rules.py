"""The workspace rules of issue 4 (seeds 000, 002, 004), through SCIM and the admin API on real PostgreSQL.

Seats (provisioning/reactivation take one, suspension/deprovisioning free it, none free → the request fails,
automatic seat assignment buys one; never exceeded under concurrency), roles from SCIM ``roles``, last-admin
protection (also under concurrency), verified vs unverified domains (added vs invited, notifications),
linking (a person known elsewhere, an app-managed member, an unverified domain asking first), suspension
(sessions revoked at once), and teams (push creates, exact name links, IdP writes link, DELETE archives,
unlink keeps). Every refused command returns a clear error and appends nothing to the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from projections import runner
from scimledger.app import create_app
from scimledger.config import Settings
from tests.conftest import Workspace, make_workspace, temp_home
from tests.e2e.rules_helpers import (
    admin_auth,
    all_events,
    appends_nothing,
    assert_admin_error,
    assert_scim_error,
    create_app_member,
    create_app_team,
    events_since,
    group_body,
    head,
    kinds_for,
    member,
    outbox,
    patch_body,
    provision,
    provisioned,
    push_group,
    seats,
    set_active,
    set_roles,
    team,
    teams,
    types_of,
    user_body,
)


async def small_workspace(app: Any, seats: int, *, automatic: bool = False) -> Workspace:
    return await make_workspace(
        app.state.store,
        name="Small",
        domains=("example.com",),
        seats=seats,
        automatic_seat_assignment=automatic,
    )


@pytest.fixture
async def second_process(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second app on the same database: another worker, with its own workspace cache."""
    other = create_app(
        Settings(
            home=temp_home(),
            public_url="https://scim.example.test",
            database_url=database_url,
        ),
        run_lagging=False,
    )
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="https://scim.example.test") as c:
            yield c


def clients(client: httpx.AsyncClient, second: httpx.AsyncClient, processes: int) -> list[httpx.AsyncClient]:
    return [client, second][:processes]


async def with_unverified_domain(client: httpx.AsyncClient, ws: Workspace, domain: str) -> None:
    response = await client.post("/api/v1/domains", json={"domain": domain}, headers=admin_auth(ws))
    assert response.status_code == 201, response.text
    [added] = [d for d in response.json()["domains"] if d["domain"] == domain]
    assert added["verified"] is False


def seat_events(events: list[Any], ws: Workspace) -> list[Any]:
    kinds = ("SeatAdded", "SeatAssigned", "SeatReleased")
    return [e for e in events if e.stream_id == str(ws.id) and e.event_type in kinds]


# --- seats ------------------------------------------------------------------------------------------------
async def test_provisioning_takes_a_seat(client: httpx.AsyncClient, app: Any) -> None:
    ws = await small_workspace(app, seats=2)
    mark = await head(app.state.pool)
    member_id = await provisioned(client, ws, "ada@example.com")
    assigned = [e for e in await events_since(app.state.pool, mark) if e.event_type == "SeatAssigned"]
    assert [e.data["member_id"] for e in assigned] == [member_id]
    assert await seats(client, ws) == {"total": 2, "assigned": 1, "available": 1}
    assert (await member(client, ws, member_id))["has_seat"] is True


async def test_suspension_frees_the_seat_and_reactivation_takes_it_again(
    client: httpx.AsyncClient, app: Any
) -> None:
    ws = await small_workspace(app, seats=1)
    member_id = await provisioned(client, ws, "ada@example.com")
    mark = await head(app.state.pool)
    assert (await set_active(client, ws, member_id, False)).status_code == 200
    released = [e for e in await events_since(app.state.pool, mark) if e.event_type == "SeatReleased"]
    assert [e.data["member_id"] for e in released] == [member_id]
    assert await seats(client, ws) == {"total": 1, "assigned": 0, "available": 1}
    assert (await member(client, ws, member_id))["has_seat"] is False

    mark = await head(app.state.pool)
    assert (await set_active(client, ws, member_id, True)).status_code == 200
    added = await events_since(app.state.pool, mark)
    assert "MemberReactivated" in types_of(added, member_id)
    assert [e.data["member_id"] for e in added if e.event_type == "SeatAssigned"] == [member_id]
    assert await seats(client, ws) == {"total": 1, "assigned": 1, "available": 0}


async def test_deprovisioning_frees_the_seat(client: httpx.AsyncClient, app: Any) -> None:
    ws = await small_workspace(app, seats=1)
    member_id = await provisioned(client, ws, "ada@example.com")
    mark = await head(app.state.pool)
    assert (await client.delete(f"/scim/v2/Users/{member_id}", headers=ws.auth)).status_code == 204
    released = [e for e in await events_since(app.state.pool, mark) if e.event_type == "SeatReleased"]
    assert [e.data["member_id"] for e in released] == [member_id]
    assert await seats(client, ws) == {"total": 1, "assigned": 0, "available": 1}
    assert (await member(client, ws, member_id))["status"] == "deprovisioned"


async def test_provisioning_without_a_free_seat_fails_saying_so_and_appends_nothing(
    client: httpx.AsyncClient, app: Any
) -> None:
    ws = await small_workspace(app, seats=1)
    await provisioned(client, ws, "ada@example.com")
    async with appends_nothing(app.state.pool):
        response = await provision(client, ws, "bob@example.com")
    body = assert_scim_error(response, 403)
    assert "seat" in body["detail"].lower()
    assert await seats(client, ws) == {"total": 1, "assigned": 1, "available": 0}
    found = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "bob@example.com"'}, headers=ws.auth
    )
    assert found.json()["totalResults"] == 0


async def test_admin_api_member_without_a_free_seat_is_409_and_appends_nothing(
    client: httpx.AsyncClient, app: Any
) -> None:
    ws = await small_workspace(app, seats=0)
    async with appends_nothing(app.state.pool):
        response = await client.post(
            "/api/v1/members", json={"user_name": "ada@example.com"}, headers=admin_auth(ws)
        )
    error = assert_admin_error(response, 409, "no_free_seat")
    assert "seat" in error["message"].lower()


async def test_reactivation_without_a_free_seat_fails_and_appends_nothing(
    client: httpx.AsyncClient, app: Any
) -> None:
    ws = await small_workspace(app, seats=1)
    ada = await provisioned(client, ws, "ada@example.com")
    assert (await set_active(client, ws, ada, False)).status_code == 200
    await provisioned(client, ws, "bob@example.com")  # takes the seat Ada gave back
    async with appends_nothing(app.state.pool):
        response = await set_active(client, ws, ada, True)
    body = assert_scim_error(response, 403)
    assert "seat" in body["detail"].lower()
    assert (await member(client, ws, ada))["status"] == "suspended"
    assert await seats(client, ws) == {"total": 1, "assigned": 1, "available": 0}


async def test_automatic_seat_assignment_buys_a_missing_seat_first(
    client: httpx.AsyncClient, app: Any
) -> None:
    ws = await small_workspace(app, seats=0, automatic=True)
    mark = await head(app.state.pool)
    member_id = await provisioned(client, ws, "ada@example.com")
    seat_log = seat_events(await events_since(app.state.pool, mark), ws)
    assert [e.event_type for e in seat_log] == ["SeatAdded", "SeatAssigned"]
    assert seat_log[0].data["count"] == 1
    assert seat_log[1].data["member_id"] == member_id
    assert await seats(client, ws) == {"total": 1, "assigned": 1, "available": 0}


async def test_automatic_seat_assignment_uses_a_free_seat_before_buying(
    client: httpx.AsyncClient, app: Any
) -> None:
    ws = await small_workspace(app, seats=1, automatic=True)
    mark = await head(app.state.pool)
    await provisioned(client, ws, "ada@example.com")
    assert types_of(seat_events(await events_since(app.state.pool, mark), ws)) == ["SeatAssigned"]
    assert await seats(client, ws) == {"total": 1, "assigned": 1, "available": 0}


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])
async def test_50_concurrent_provisions_into_10_free_seats_give_exactly_10_members(
    client: httpx.AsyncClient, second_process: httpx.AsyncClient, app: Any, processes: int
) -> None:
    ws = await small_workspace(app, seats=10)
    doors = clients(client, second_process, processes)
    responses = await asyncio.gather(
        *(
            doors[n % processes].post("/scim/v2/Users", json=user_body(f"u{n}@example.com"), headers=ws.auth)
            for n in range(50)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [403] * 40, statuses
    for refused in (r for r in responses if r.status_code == 403):
        assert "seat" in assert_scim_error(refused, 403)["detail"].lower()
    assert await seats(client, ws) == {"total": 10, "assigned": 10, "available": 0}
    listed = (await client.get("/api/v1/members", headers=admin_auth(ws))).json()["members"]
    assert sorted(m["id"] for m in listed) == sorted(
        r.json()["id"] for r in responses if r.status_code == 201
    )
    events = await all_events(app.state.pool, ws)
    assert types_of(events).count("MemberProvisioned") == 10
    # Replay the workspace's seat events in log order: the seats in use never exceed the seats bought.
    total = assigned = 0
    for event in seat_events(events, ws):
        if event.event_type == "SeatAdded":
            total += event.data["count"]
        else:
            assigned += 1 if event.event_type == "SeatAssigned" else -1
        assert 0 <= assigned <= total, f"seat count exceeded at position {event.position}"
    assert (total, assigned) == (10, 10)


async def test_a_request_refused_in_a_concurrent_burst_fails_alone(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    """A value PostgreSQL cannot store (a NUL character) refuses its own request, not its neighbours'."""
    good = [user_body(f"u{n}@example.com") for n in range(20)]
    bad = user_body("nul@example.com", name={"givenName": "Nul\u0000"})
    bodies = [*good[:10], bad, *good[10:]]
    responses = await asyncio.gather(
        *(client.post("/scim/v2/Users", json=body, headers=workspace.auth) for body in bodies)
    )
    assert_scim_error(responses[10], 400, "invalidValue")
    others = [r for i, r in enumerate(responses) if i != 10]
    assert [r.status_code for r in others] == [201] * 20, [r.text for r in others if r.status_code != 201][:1]
    assert (await seats(client, workspace))["assigned"] == 20
    events = await all_events(app.state.pool, workspace)
    assert types_of(events).count("MemberProvisioned") == 20


# --- roles ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["admin"], "admin"),
        (["ADMIN"], "admin"),
        (["Admin"], "admin"),
        (["member"], "member"),
        (["Member"], "member"),
        (["owner"], "member"),
        (["member", "Admin"], "admin"),
        (["Admin", "member"], "admin"),
        (["owner", "admin"], "admin"),
        ([], "member"),
        (None, "member"),
    ],
    ids=[
        "admin",
        "ADMIN",
        "Admin",
        "member",
        "Member",
        "unrecognised",
        "member-and-admin",
        "admin-and-member",
        "unrecognised-and-admin",
        "empty",
        "absent",
    ],
)
async def test_scim_roles_set_the_role(
    client: httpx.AsyncClient, workspace: Workspace, roles: list[str] | None, expected: str
) -> None:
    member_id = await provisioned(client, workspace, "ada@example.com", roles=roles)
    assert (await member(client, workspace, member_id))["role"] == expected


async def test_patching_roles_changes_the_role(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await provisioned(client, workspace, "root@example.com", roles=["admin"])
    member_id = await provisioned(client, workspace, "ada@example.com")
    mark = await head(app.state.pool)
    assert (await set_roles(client, workspace, member_id, ["Admin"])).status_code == 200
    assert "MemberRoleChanged" in types_of(await events_since(app.state.pool, mark), member_id)
    assert (await member(client, workspace, member_id))["role"] == "admin"
    assert (await set_roles(client, workspace, member_id, ["viewer"])).status_code == 200
    assert (await member(client, workspace, member_id))["role"] == "member"


# --- last admin -----------------------------------------------------------------------------------------
async def _scim_patch_inactive(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> httpx.Response:
    return await set_active(client, ws, member_id, False)


async def _scim_put_inactive(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> httpx.Response:
    body = user_body("root@example.com", roles=["admin"], active=False)
    return await client.put(f"/scim/v2/Users/{member_id}", json=body, headers=ws.auth)


async def _scim_delete(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> httpx.Response:
    return await client.delete(f"/scim/v2/Users/{member_id}", headers=ws.auth)


async def _scim_patch_member_role(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> httpx.Response:
    return await set_roles(client, ws, member_id, ["member"])


async def _scim_put_without_roles(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> httpx.Response:
    body = user_body("root@example.com", active=True)
    return await client.put(f"/scim/v2/Users/{member_id}", json=body, headers=ws.auth)


SCIM_LOSSES = {
    "patch-active-false": _scim_patch_inactive,
    "put-active-false": _scim_put_inactive,
    "delete": _scim_delete,
    "patch-roles-member": _scim_patch_member_role,
    "put-without-roles": _scim_put_without_roles,
}


@pytest.mark.parametrize("how", list(SCIM_LOSSES))
async def test_last_admin_is_protected_through_scim(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, how: str
) -> None:
    root = await provisioned(client, workspace, "root@example.com", roles=["admin"])
    await provisioned(client, workspace, "ada@example.com")
    async with appends_nothing(app.state.pool):
        response = await SCIM_LOSSES[how](client, workspace, root)
    body = assert_scim_error(response, 400, "mutability")
    assert "admin" in body["detail"].lower()
    after = await member(client, workspace, root)
    assert (after["status"], after["role"], after["has_seat"]) == ("active", "admin", True)


@pytest.mark.parametrize("change", [{"role": "member"}, {"active": False}], ids=["downgrade", "suspend"])
async def test_last_admin_is_protected_through_the_admin_api(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, change: dict[str, Any]
) -> None:
    root = await provisioned(client, workspace, "root@example.com", roles=["admin"])
    async with appends_nothing(app.state.pool):
        response = await client.patch(f"/api/v1/members/{root}", json=change, headers=admin_auth(workspace))
    assert_admin_error(response, 409, "last_admin")
    after = await member(client, workspace, root)
    assert (after["status"], after["role"]) == ("active", "admin")


async def test_an_admin_can_go_once_another_admin_exists(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    root = await provisioned(client, workspace, "root@example.com", roles=["admin"])
    other = await provisioned(client, workspace, "ada@example.com")
    assert (await set_roles(client, workspace, other, ["admin"])).status_code == 200
    assert (await set_active(client, workspace, root, False)).status_code == 200
    assert (await member(client, workspace, root))["status"] == "suspended"
    # ... and now the other one is the last admin.
    assert_scim_error(await set_roles(client, workspace, other, ["member"]), 400, "mutability")


async def _suspend_by_scim(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> bool:
    response = await set_active(client, ws, member_id, False)
    if response.status_code != 200:
        assert_scim_error(response, 400, "mutability")
    return response.status_code == 200


async def _suspend_by_admin(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> bool:
    response = await client.patch(
        f"/api/v1/members/{member_id}", json={"active": False}, headers=admin_auth(ws)
    )
    if response.status_code != 200:
        assert_admin_error(response, 409, "last_admin")
    return response.status_code == 200


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])
@pytest.mark.parametrize("doors", [("scim", "scim"), ("admin", "admin"), ("scim", "admin")], ids="-".join)
async def test_concurrent_suspensions_of_the_last_two_admins_let_exactly_one_through(
    client: httpx.AsyncClient,
    second_process: httpx.AsyncClient,
    workspace: Workspace,
    app: Any,
    doors: tuple[str, str],
    processes: int,
) -> None:
    first = await provisioned(client, workspace, "first@example.com", roles=["admin"])
    second = await provisioned(client, workspace, "second@example.com", roles=["admin"])
    via = clients(client, second_process, processes)
    suspend = {"scim": _suspend_by_scim, "admin": _suspend_by_admin}
    mark = await head(app.state.pool)
    outcomes = await asyncio.gather(
        suspend[doors[0]](via[0], workspace, first),
        suspend[doors[1]](via[-1], workspace, second),
    )
    assert sorted(outcomes) == [False, True]
    assert types_of(await events_since(app.state.pool, mark)).count("MemberSuspended") == 1
    admins = (
        await client.get(
            "/api/v1/members", params={"role": "admin", "status": "active"}, headers=admin_auth(workspace)
        )
    ).json()["members"]
    assert len(admins) == 1


# --- verified and unverified domains ----------------------------------------------------------------------
async def test_verified_domain_adds_directly_with_added_and_welcome_emails(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    mark = await head(app.state.pool)
    member_id = await provisioned(client, workspace, "ada@example.com")
    assert "MemberProvisioned" in types_of(await events_since(app.state.pool, mark), member_id)
    assert (await member(client, workspace, member_id))["status"] == "active"
    rows = await outbox(client, workspace, app.state.pool)
    assert kinds_for(rows, member_id) == ["added"]  # the product's welcome is not the workspace's to list
    assert {r["recipient"] for r in rows if r["member_id"] == member_id} == {"ada@example.com"}
    assert await welcomed(app.state.pool) == ["ada@example.com"]


async def test_unverified_domain_invites(client: httpx.AsyncClient, workspace: Workspace, app: Any) -> None:
    await with_unverified_domain(client, workspace, "partner.test")
    mark = await head(app.state.pool)
    member_id = await provisioned(client, workspace, "pat@partner.test")
    created = types_of(await events_since(app.state.pool, mark), member_id)
    assert "MemberInvited" in created
    assert "MemberProvisioned" not in created
    assert (await member(client, workspace, member_id))["status"] == "invited"
    assert kinds_for(await outbox(client, workspace, app.state.pool), member_id) == ["invite"]


async def test_a_domain_never_added_also_invites(client: httpx.AsyncClient, workspace: Workspace) -> None:
    member_id = await provisioned(client, workspace, "sam@elsewhere.test")
    assert (await member(client, workspace, member_id))["status"] == "invited"


@pytest.mark.parametrize("door", ["scim", "admin"])
async def test_an_invite_never_accepted_stays_an_invite_across_suspension_and_reactivation(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, door: str
) -> None:
    await with_unverified_domain(client, workspace, "partner.test")
    member_id = await provisioned(client, workspace, "pat@partner.test")
    for active in (False, True):
        if door == "scim":
            response = await set_active(client, workspace, member_id, active)
        else:
            response = await client.patch(
                f"/api/v1/members/{member_id}", json={"active": active}, headers=admin_auth(workspace)
            )
        assert response.status_code == 200, response.text
    # Seed 000: a user of a non-verified domain "is added once they accept" the invite, not on reactivation.
    assert (await member(client, workspace, member_id))["status"] == "invited"


async def test_accepting_the_invite_makes_the_member_active(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await with_unverified_domain(client, workspace, "partner.test")
    member_id = await provisioned(client, workspace, "pat@partner.test")
    mark = await head(app.state.pool)
    response = await client.post(f"/api/v1/members/{member_id}/accept-invite", headers=admin_auth(workspace))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert "InviteAccepted" in types_of(await events_since(app.state.pool, mark), member_id)
    assert (await member(client, workspace, member_id))["status"] == "active"


async def test_accepting_without_a_pending_invite_is_refused_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    member_id = await provisioned(client, workspace, "ada@example.com")
    async with appends_nothing(app.state.pool):
        response = await client.post(
            f"/api/v1/members/{member_id}/accept-invite", headers=admin_auth(workspace)
        )
    assert_admin_error(response, 400, "invalid_command")


async def welcomed(pool: Any) -> list[str]:
    """Recipients of the product's welcome (queued by the outbox projection, listed by no workspace)."""
    await runner.catch_up(pool)
    rows = await pool.fetch("SELECT recipient FROM outbox WHERE kind = 'welcome' ORDER BY position")
    return [r["recipient"] for r in rows]


# --- linking ----------------------------------------------------------------------------------------------
async def test_a_person_from_another_workspace_is_the_same_person_without_a_second_welcome(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    other = await make_workspace(app.state.store, name="Other", domains=("example.com",), seats=5)
    first = await provisioned(client, workspace, "ada@example.com")
    mark = await head(app.state.pool)
    second = await provisioned(client, other, "Ada@Example.com")
    assert second != first
    # Issue 8: the other workspace's log must not tell that Ada is known elsewhere: provisioned, as anyone.
    linked = [e for e in await events_since(app.state.pool, mark) if e.stream_id == second]
    assert [e.event_type for e in linked] == ["MemberProvisioned"]
    assert "PersonRegistered" not in types_of(await events_since(app.state.pool, mark))
    person_ids = await app.state.pool.fetch(
        "SELECT DISTINCT person_id FROM scim_users WHERE id = ANY($1::uuid[])", [first, second]
    )
    assert len(person_ids) == 1
    assert linked[0].data["person_id"] == str(person_ids[0]["person_id"])
    assert (await member(client, other, second))["status"] == "active"
    rows = await outbox(client, other, app.state.pool)
    assert kinds_for(rows, second) == ["added"]
    assert await welcomed(app.state.pool) == ["ada@example.com"]  # once, in her first workspace


async def test_an_app_managed_member_is_linked_when_the_idp_provisions_them_in_a_verified_domain(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    app_member = await create_app_member(client, workspace, "ada@example.com")
    before = await seats(client, workspace)
    mark = await head(app.state.pool)
    response = await provision(client, workspace, "ADA@example.com", roles=["admin"])
    assert response.status_code == 201, response.text
    assert response.json()["id"] == app_member["id"]
    added = types_of(await events_since(app.state.pool, mark))
    assert not {"MemberProvisioned", "MemberLinked", "MemberInvited"} & set(added)
    after = await member(client, workspace, app_member["id"])
    assert (after["managed_by"], after["status"], after["role"]) == ("idp", "active", "admin")
    assert await seats(client, workspace) == before
    # From now on the IdP manages the member: its writes are accepted.
    assert (await set_roles(client, workspace, app_member["id"], ["admin", "member"])).status_code == 200


async def test_a_deprovisioned_user_provisioned_again_is_linked_and_takes_a_seat(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    first = await provisioned(client, workspace, "ada@example.com")
    assert (await client.delete(f"/scim/v2/Users/{first}", headers=workspace.auth)).status_code == 204
    before = await seats(client, workspace)
    mark = await head(app.state.pool)
    again = await provisioned(client, workspace, "ada@example.com")
    added = await events_since(app.state.pool, mark)
    assert types_of(added, again) == ["MemberLinked"]
    assert [e.data["member_id"] for e in added if e.event_type == "SeatAssigned"] == [again]
    assert (await seats(client, workspace))["assigned"] == before["assigned"] + 1
    assert kinds_for(await outbox(client, workspace, app.state.pool), again) == ["added"]


async def test_a_user_name_held_by_an_idp_managed_member_is_409_uniqueness(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await provisioned(client, workspace, "ada@example.com")
    async with appends_nothing(app.state.pool):
        response = await provision(client, workspace, "ada@example.com")
    assert_scim_error(response, 409, "uniqueness")


async def test_an_app_managed_member_is_not_handed_to_the_idp_through_an_unverified_domain_until_accepted(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await with_unverified_domain(client, workspace, "partner.test")
    app_member = await create_app_member(client, workspace, "pat@partner.test")
    member_id = app_member["id"]
    mark = await head(app.state.pool)
    response = await provision(client, workspace, "pat@partner.test", roles=["admin"])
    assert response.status_code == 201, response.text
    assert response.json()["id"] == member_id
    assert types_of(await events_since(app.state.pool, mark), member_id) == ["MemberLinkRequested"]
    assert (await member(client, workspace, member_id))["managed_by"] == "app"
    # Until the person accepts, the IdP's writes to the member are refused.
    async with appends_nothing(app.state.pool):
        assert_scim_error(await set_active(client, workspace, member_id, False), 403)

    response = await client.post(f"/api/v1/members/{member_id}/accept-invite", headers=admin_auth(workspace))
    assert response.status_code == 200, response.text
    after = await member(client, workspace, member_id)
    assert after["managed_by"] == "idp"
    assert after["status"] == "active"
    assert after["role"] == "admin"  # what the IdP sent with the request applies on acceptance


# --- suspension ---------------------------------------------------------------------------------------------
async def _put_inactive(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> httpx.Response:
    body = user_body("ada@example.com", active=False)
    return await client.put(f"/scim/v2/Users/{member_id}", json=body, headers=ws.auth)


SUSPENSIONS = {
    "patch-active-false": _scim_patch_inactive,
    "put-active-false": _put_inactive,
    "delete": _scim_delete,
}


@pytest.mark.parametrize("how", list(SUSPENSIONS))
async def test_deactivation_suspends_at_once_revokes_sessions_and_frees_the_seat(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, how: str
) -> None:
    member_id = await provisioned(client, workspace, "ada@example.com")
    before = await seats(client, workspace)
    mark = await head(app.state.pool)
    response = await SUSPENSIONS[how](client, workspace, member_id)
    assert response.status_code in (200, 204), response.text
    added = await events_since(app.state.pool, mark)
    assert "MemberSessionsRevoked" in types_of(added, member_id)
    assert [e.data["member_id"] for e in added if e.event_type == "SeatReleased"] == [member_id]
    expected = "deprovisioned" if how == "delete" else "suspended"
    assert (await member(client, workspace, member_id))["status"] == expected
    assert (await seats(client, workspace))["assigned"] == before["assigned"] - 1
    rows = await outbox(client, workspace, app.state.pool)
    assert "sessions_revoked" in kinds_for(rows, member_id)


# --- teams --------------------------------------------------------------------------------------------------
async def test_a_pushed_group_creates_an_idp_managed_team_with_the_members_already_here(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    ada = await provisioned(client, workspace, "ada@example.com")
    bob = await provisioned(client, workspace, "bob@example.com")
    response = await push_group(client, workspace, "Engineering", ada, bob)
    assert response.status_code == 201, response.text
    team_id = response.json()["id"]
    listed = await team(client, workspace, team_id)
    assert (listed["name"], listed["managed_by"], listed["archived"], listed["members"]) == (
        "Engineering",
        "idp",
        False,
        2,
    )
    assert {"id": team_id, "name": "Engineering"} in (await member(client, workspace, ada))["teams"]


async def test_a_push_with_an_app_team_s_exact_name_links_it(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    team_id = await create_app_team(client, workspace, "Engineering")
    ada = await provisioned(client, workspace, "ada@example.com")
    mark = await head(app.state.pool)
    response = await push_group(client, workspace, "Engineering", ada)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == team_id
    added = types_of(await events_since(app.state.pool, mark))
    assert "TeamLinked" in added
    assert "TeamCreated" not in added
    named = [t for t in await teams(client, workspace) if t["name"] == "Engineering"]
    assert len(named) == 1
    assert (named[0]["id"], named[0]["managed_by"], named[0]["members"]) == (team_id, "idp", 1)


async def test_app_teams_are_listed_to_the_idp_so_it_can_link_them(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    """Seed 002: "Refresh App Groups" lists the app's teams; "Link Group" finds the one of that name."""
    team_id = await create_app_team(client, workspace, "Sales")
    response = await client.get(
        "/scim/v2/Groups", params={"filter": 'displayName eq "Sales"'}, headers=workspace.auth
    )
    assert response.status_code == 200, response.text
    assert [g["id"] for g in response.json()["Resources"]] == [team_id]


async def test_a_push_with_an_app_team_s_name_in_another_case_is_409_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    team_id = await create_app_team(client, workspace, "Engineering")
    async with appends_nothing(app.state.pool):
        response = await push_group(client, workspace, "engineering")
    assert_scim_error(response, 409, "uniqueness")
    assert (await team(client, workspace, team_id))["managed_by"] == "app"
    assert len(await teams(client, workspace)) == 1


@pytest.mark.parametrize("verb", ["PATCH", "PUT"])
async def test_an_idp_write_to_an_app_team_links_it(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, verb: str
) -> None:
    team_id = await create_app_team(client, workspace, "Design")
    ada = await provisioned(client, workspace, "ada@example.com")
    mark = await head(app.state.pool)
    if verb == "PATCH":
        body = patch_body({"op": "add", "path": "members", "value": [{"value": ada}]})
        response = await client.patch(f"/scim/v2/Groups/{team_id}", json=body, headers=workspace.auth)
    else:
        response = await client.put(
            f"/scim/v2/Groups/{team_id}", json=group_body("Design", ada), headers=workspace.auth
        )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == team_id
    assert "TeamLinked" in types_of(await events_since(app.state.pool, mark), team_id)
    listed = await team(client, workspace, team_id)
    assert (listed["managed_by"], listed["members"]) == ("idp", 1)


async def test_deleting_a_group_archives_its_team(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    team_id = (await push_group(client, workspace, "Ops")).json()["id"]
    mark = await head(app.state.pool)
    assert (await client.delete(f"/scim/v2/Groups/{team_id}", headers=workspace.auth)).status_code == 204
    assert "TeamArchived" in types_of(await events_since(app.state.pool, mark), team_id)
    assert (await team(client, workspace, team_id))["archived"] is True
    assert_scim_error(await client.get(f"/scim/v2/Groups/{team_id}", headers=workspace.auth), 404)


async def test_unlinking_makes_the_team_app_managed_and_it_stays(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    ada = await provisioned(client, workspace, "ada@example.com")
    team_id = (await push_group(client, workspace, "Ops", ada)).json()["id"]
    mark = await head(app.state.pool)
    response = await client.post(f"/api/v1/teams/{team_id}/unlink", headers=admin_auth(workspace))
    assert response.status_code == 200, response.text
    assert (response.json()["id"], response.json()["managed_by"]) == (team_id, "app")
    assert "TeamUnlinked" in types_of(await events_since(app.state.pool, mark), team_id)
    listed = await team(client, workspace, team_id)
    assert (listed["managed_by"], listed["archived"], listed["members"]) == ("app", False, 1)


# --- who owns what ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", ["PATCH", "PUT", "DELETE"])
async def test_scim_writes_to_an_app_managed_member_are_refused_and_append_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, verb: str
) -> None:
    member_id = (await create_app_member(client, workspace, "ada@example.com"))["id"]
    url = f"/scim/v2/Users/{member_id}"
    async with appends_nothing(app.state.pool):
        if verb == "PATCH":
            response = await set_active(client, workspace, member_id, False)
        elif verb == "PUT":
            response = await client.put(
                url, json=user_body("ada@example.com", active=False), headers=workspace.auth
            )
        else:
            response = await client.delete(url, headers=workspace.auth)
    assert_scim_error(response, 403)
    after = await member(client, workspace, member_id)
    assert (after["status"], after["managed_by"]) == ("active", "app")
