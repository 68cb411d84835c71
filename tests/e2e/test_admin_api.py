"""The admin API (``/api/v1``) and the rules it shares with SCIM (issue 4; seeds 000 and 004).

Tokens (named, shown once, listed with status and use, revocation stops the token's next request, the token
is the actor of what it causes), who owns what (an admin's change to an IdP-managed member is recorded with
the admin as actor and listed as drift until the IdP's next write), settings and seats, and isolation (a key
of one workspace sees nothing of another: 404, as for a missing id). Refused commands append nothing.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest

from projections import runner
from tests.conftest import Workspace, make_workspace
from tests.e2e.dns_server import DnsServer
from tests.e2e.rules_helpers import (
    admin_auth,
    admin_get,
    appends_nothing,
    assert_admin_error,
    assert_scim_error,
    create_app_member,
    create_app_team,
    events_since,
    head,
    member,
    patch_body,
    provision,
    provisioned,
    push_group,
    replace,
    seats,
    set_active,
    set_roles,
    token_auth,
    types_of,
)


async def new_token(client: httpx.AsyncClient, ws: Workspace, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/tokens", json=body, headers=admin_auth(ws))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def listed_tokens(client: httpx.AsyncClient, ws: Workspace) -> list[dict[str, Any]]:
    return list((await admin_get(client, ws, "/tokens"))["tokens"])


async def drift(client: httpx.AsyncClient, ws: Workspace) -> list[dict[str, Any]]:
    return list((await admin_get(client, ws, "/drift"))["drift"])


# --- authentication -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [None, "Bearer slkey_nope", "Basic abc"],
    ids=["missing", "unknown", "not-bearer"],
)
async def test_the_admin_api_needs_an_admin_key(
    client: httpx.AsyncClient, workspace: Workspace, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.get("/api/v1/workspace", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["message"]


async def test_a_scim_token_is_not_an_admin_key(client: httpx.AsyncClient, workspace: Workspace) -> None:
    assert (await client.get("/api/v1/workspace", headers=workspace.auth)).status_code == 401
    assert (await client.get("/scim/v2/Users", headers=admin_auth(workspace))).status_code == 401


# --- workspace, settings, seats, domains -------------------------------------------------------------------
async def test_get_workspace_shows_settings_seats_and_domains(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    body = await admin_get(client, workspace, "/workspace")
    assert body["id"] == str(workspace.id)
    assert body["settings"] == {"automatic_seat_assignment": False}
    assert body["seats"] == {"total": 100, "assigned": 0, "available": 100}
    assert body["domains"] == [{"domain": "example.com", "verified": True}]


async def test_automatic_seat_assignment_is_switched_through_settings(
    client: httpx.AsyncClient, app: Any
) -> None:
    ws = await make_workspace(app.state.store, domains=("example.com",), seats=0)
    assert_scim_error(await provision(client, ws, "ada@example.com"), 403)
    response = await client.patch(
        "/api/v1/workspace/settings", json={"automatic_seat_assignment": True}, headers=admin_auth(ws)
    )
    assert response.status_code == 200, response.text
    assert response.json()["settings"] == {"automatic_seat_assignment": True}
    await provisioned(client, ws, "ada@example.com")
    assert await seats(client, ws) == {"total": 1, "assigned": 1, "available": 0}


async def test_settings_need_a_boolean_and_append_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    async with appends_nothing(app.state.pool):
        response = await client.patch(
            "/api/v1/workspace/settings",
            json={"automatic_seat_assignment": "yes"},
            headers=admin_auth(workspace),
        )
    assert_admin_error(response, 400, "invalid_command")


async def test_adding_seats_makes_room(client: httpx.AsyncClient, app: Any) -> None:
    ws = await make_workspace(app.state.store, domains=("example.com",), seats=0)
    response = await client.post("/api/v1/seats", json={"count": 2}, headers=admin_auth(ws))
    assert response.status_code == 200, response.text
    assert response.json()["seats"] == {"total": 2, "assigned": 0, "available": 2}
    await provisioned(client, ws, "ada@example.com")
    assert (await seats(client, ws))["available"] == 1


@pytest.mark.parametrize("count", [0, -1, "2", True], ids=["zero", "negative", "string", "bool"])
async def test_adding_a_bad_seat_count_is_400_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, count: Any
) -> None:
    async with appends_nothing(app.state.pool):
        response = await client.post("/api/v1/seats", json={"count": count}, headers=admin_auth(workspace))
    assert_admin_error(response, 400, "invalid_command")


async def test_verifying_a_domain_turns_invites_into_direct_adds(
    client: httpx.AsyncClient, workspace: Workspace, dns_server: DnsServer
) -> None:
    added = await client.post(
        "/api/v1/domains", json={"domain": "partner.test"}, headers=admin_auth(workspace)
    )
    assert added.status_code == 201, added.text
    invited = await provisioned(client, workspace, "pat@partner.test")
    assert (await member(client, workspace, invited))["status"] == "invited"
    dns_server.publish(added.json()["challenge"]["record"], added.json()["challenge"]["value"])
    verified = await client.post("/api/v1/domains/partner.test/verify", headers=admin_auth(workspace))
    assert verified.status_code == 200, verified.text
    assert {"domain": "partner.test", "verified": True} in verified.json()["domains"]
    direct = await provisioned(client, workspace, "quinn@partner.test")
    assert (await member(client, workspace, direct))["status"] == "active"


async def test_verifying_a_domain_never_added_is_400_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    async with appends_nothing(app.state.pool):
        response = await client.post("/api/v1/domains/nowhere.test/verify", headers=admin_auth(workspace))
    assert_admin_error(response, 400, "invalid_command")


# --- members --------------------------------------------------------------------------------------------
async def test_an_admin_adds_an_app_managed_member(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    mark = await head(app.state.pool)
    created = await create_app_member(client, workspace, "ada@example.com", role="admin")
    assert (created["user_name"], created["status"], created["role"], created["has_seat"]) == (
        "ada@example.com",
        "active",
        "admin",
        True,
    )
    events = await events_since(app.state.pool, mark)
    assert "MemberProvisioned" in types_of(events, created["id"])
    assert {e.metadata["actor"]["kind"] for e in events} == {"admin"}
    listed = (await client.get("/api/v1/members", headers=admin_auth(workspace))).json()["members"]
    assert [m["id"] for m in listed] == [created["id"]]


async def test_members_are_listed_with_filters(client: httpx.AsyncClient, workspace: Workspace) -> None:
    root = await provisioned(client, workspace, "root@example.com", roles=["admin"])
    ada = await provisioned(client, workspace, "ada@example.com")
    app_member = (await create_app_member(client, workspace, "bob@example.com"))["id"]
    assert (await set_active(client, workspace, ada, False)).status_code == 200

    async def ids(**params: str) -> set[str]:
        response = await client.get("/api/v1/members", params=params, headers=admin_auth(workspace))
        assert response.status_code == 200, response.text
        return {m["id"] for m in response.json()["members"]}

    assert await ids() == {root, ada, app_member}
    assert await ids(role="admin") == {root}
    assert await ids(status="suspended") == {ada}
    assert await ids(managed_by="app") == {app_member}
    assert await ids(managed_by="idp", status="active") == {root}


@pytest.mark.parametrize(
    "body",
    [{}, {"user_name": 7}, {"user_name": "ada@example.com", "role": "owner"}],
    ids=["no-user-name", "not-a-string", "unknown-role"],
)
async def test_a_bad_new_member_is_400_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, body: dict[str, Any]
) -> None:
    async with appends_nothing(app.state.pool):
        response = await client.post("/api/v1/members", json=body, headers=admin_auth(workspace))
    assert_admin_error(response, 400, "invalid_command")


async def test_an_app_member_with_a_taken_user_name_is_409_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await provisioned(client, workspace, "ada@example.com")
    async with appends_nothing(app.state.pool):
        response = await client.post(
            "/api/v1/members", json={"user_name": "ADA@example.com"}, headers=admin_auth(workspace)
        )
    assert_admin_error(response, 409, "uniqueness")


async def test_an_admin_reactivation_without_a_free_seat_is_409_and_appends_nothing(
    client: httpx.AsyncClient, app: Any
) -> None:
    ws = await make_workspace(app.state.store, domains=("example.com",), seats=1)
    ada = (await create_app_member(client, ws, "ada@example.com"))["id"]
    patched = await client.patch(f"/api/v1/members/{ada}", json={"active": False}, headers=admin_auth(ws))
    assert patched.status_code == 200, patched.text
    await create_app_member(client, ws, "bob@example.com")
    async with appends_nothing(app.state.pool):
        response = await client.patch(f"/api/v1/members/{ada}", json={"active": True}, headers=admin_auth(ws))
    assert "seat" in assert_admin_error(response, 409, "no_free_seat")["message"].lower()
    assert (await member(client, ws, ada))["status"] == "suspended"


async def test_an_admin_suspension_revokes_sessions_and_frees_the_seat(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    ada = (await create_app_member(client, workspace, "ada@example.com"))["id"]
    mark = await head(app.state.pool)
    response = await client.patch(
        f"/api/v1/members/{ada}", json={"active": False}, headers=admin_auth(workspace)
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["has_seat"]) == ("suspended", False)
    added = types_of(await events_since(app.state.pool, mark))
    assert {"MemberSuspended", "MemberSessionsRevoked", "SeatReleased"} <= set(added)


@pytest.mark.parametrize(
    "body", [{"role": "owner"}, {"role": 1}, {"active": "no"}], ids=["unknown-role", "role-int", "active-str"]
)
async def test_a_bad_member_change_is_400_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, body: dict[str, Any]
) -> None:
    ada = await provisioned(client, workspace, "ada@example.com")
    async with appends_nothing(app.state.pool):
        response = await client.patch(f"/api/v1/members/{ada}", json=body, headers=admin_auth(workspace))
    assert_admin_error(response, 400, "invalid_command")


# --- who owns what: drift ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "event_type"),
    [({"role": "admin"}, "MemberRoleChanged"), ({"active": False}, "MemberSuspended")],
    ids=["role", "active"],
)
async def test_an_admin_change_to_an_idp_member_is_recorded_as_the_admin_and_listed_as_drift(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, change: dict[str, Any], event_type: str
) -> None:
    await provisioned(client, workspace, "root@example.com", roles=["admin"])
    ada = await provisioned(client, workspace, "ada@example.com")
    mark = await head(app.state.pool)
    response = await client.patch(f"/api/v1/members/{ada}", json=change, headers=admin_auth(workspace))
    assert response.status_code == 200, response.text
    assert response.json()["managed_by"] == "idp"
    changed = [e for e in await events_since(app.state.pool, mark) if e.event_type == event_type]
    assert len(changed) == 1
    assert changed[0].metadata["actor"]["kind"] == "admin"
    assert changed[0].metadata["source"] == "admin"
    listed = await drift(client, workspace)
    assert [(d["resource_type"], d["resource_id"], d["event_type"]) for d in listed] == [
        ("member", ada, event_type)
    ]
    assert listed[0]["actor"]["kind"] == "admin"


async def test_the_idp_s_next_write_to_the_member_clears_its_drift(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    await provisioned(client, workspace, "root@example.com", roles=["admin"])
    ada = await provisioned(client, workspace, "ada@example.com")
    bob = await provisioned(client, workspace, "bob@example.com")
    for target in (ada, bob):
        patched = await client.patch(
            f"/api/v1/members/{target}", json={"role": "admin"}, headers=admin_auth(workspace)
        )
        assert patched.status_code == 200, patched.text
    assert {d["resource_id"] for d in await drift(client, workspace)} == {ada, bob}
    # The IdP reconciles Ada back to its own state (seed 000): her drift is gone, Bob's stays.
    assert (await set_roles(client, workspace, ada, ["member"])).status_code == 200
    assert (await member(client, workspace, ada))["role"] == "member"
    assert {d["resource_id"] for d in await drift(client, workspace)} == {bob}


async def test_admin_changes_to_app_managed_members_are_not_drift(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    ada = (await create_app_member(client, workspace, "ada@example.com"))["id"]
    response = await client.patch(
        f"/api/v1/members/{ada}", json={"role": "admin"}, headers=admin_auth(workspace)
    )
    assert response.status_code == 200, response.text
    assert await drift(client, workspace) == []


async def test_scim_writes_to_app_managed_members_name_the_reason_and_append_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    ada = (await create_app_member(client, workspace, "ada@example.com"))["id"]
    body = patch_body(replace("name.givenName", "Ada"))
    async with appends_nothing(app.state.pool):
        response = await client.patch(f"/scim/v2/Users/{ada}", json=body, headers=workspace.auth)
    assert "app" in assert_scim_error(response, 403)["detail"].lower()


# --- tokens (seed 004) ------------------------------------------------------------------------------------
async def test_a_new_token_is_shown_once(client: httpx.AsyncClient, workspace: Workspace) -> None:
    created = await new_token(client, workspace, name="Okta", description="production tenant")
    assert created["token"].startswith("sltok_")
    assert created["name"] == "Okta"
    assert created["description"] == "production tenant"
    assert created["status"] == "active"
    assert sorted(created["scopes"]) == ["scim:read", "scim:write"]
    listed = {t["id"]: t for t in await listed_tokens(client, workspace)}
    shown = listed[created["id"]]
    assert shown == {k: v for k, v in created.items() if k != "token"}
    raw = (await client.get("/api/v1/tokens", headers=admin_auth(workspace))).text
    assert created["token"] not in raw
    assert "secret" not in raw
    assert "hash" not in raw


async def test_the_token_list_shows_status_creator_creation_and_last_use(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    created = await new_token(client, workspace, name="Entra")
    shown = next(t for t in await listed_tokens(client, workspace) if t["id"] == created["id"])
    assert shown["status"] == "active"
    assert shown["created_by"]
    assert shown["created_at"]
    assert shown["last_used_at"] is None
    assert shown["revoked_by"] is None
    assert shown["revoked_at"] is None
    assert (await client.get("/scim/v2/Users", headers=token_auth(created["token"]))).status_code == 200
    used = next(t for t in await listed_tokens(client, workspace) if t["id"] == created["id"])
    assert used["last_used_at"] is not None
    assert used["last_used_at"] >= used["created_at"]


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": 3}, {"name": "x", "scopes": ["admin"]}, {"name": "x", "scopes": []}],
    ids=["no-name", "empty-name", "name-int", "unknown-scope", "no-scopes"],
)
async def test_a_bad_token_request_is_400_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, body: dict[str, Any]
) -> None:
    async with appends_nothing(app.state.pool):
        response = await client.post("/api/v1/tokens", json=body, headers=admin_auth(workspace))
    assert_admin_error(response, 400, "invalid_command")


async def test_a_read_only_token_cannot_write(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    created = await new_token(client, workspace, name="Auditor", scopes=["scim:read"])
    auth = token_auth(created["token"])
    assert (await client.get("/scim/v2/Users", headers=auth)).status_code == 200
    async with appends_nothing(app.state.pool):
        response = await client.post("/scim/v2/Users", json={"userName": "ada@example.com"}, headers=auth)
    assert_scim_error(response, 403)


async def test_a_revoked_token_s_next_request_is_401(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    created = await new_token(client, workspace, name="Okta")
    auth = token_auth(created["token"])
    assert (await client.get("/scim/v2/Users", headers=auth)).status_code == 200
    mark = await head(app.state.pool)
    response = await client.delete(f"/api/v1/tokens/{created['id']}", headers=admin_auth(workspace))
    assert response.status_code == 204
    assert types_of(await events_since(app.state.pool, mark)) == ["TokenRevoked"]
    assert_scim_error(await client.get("/scim/v2/Users", headers=auth), 401)
    assert_scim_error(
        await client.post("/scim/v2/Users", json={"userName": "a@example.com"}, headers=auth), 401
    )
    shown = next(t for t in await listed_tokens(client, workspace) if t["id"] == created["id"])
    assert shown["status"] == "revoked"
    assert shown["revoked_by"]
    assert shown["revoked_at"]
    # The workspace's other token keeps working.
    assert (await client.get("/scim/v2/Users", headers=workspace.auth)).status_code == 200


async def test_revoking_an_unknown_token_is_404(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    async with appends_nothing(app.state.pool):
        response = await client.delete(f"/api/v1/tokens/{uuid4()}", headers=admin_auth(workspace))
    assert_admin_error(response, 404, "not_found")


async def test_removing_every_token_stops_provisioning_and_reverts_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    ada = await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    bob = await provisioned(client, workspace, "bob@example.com")
    team_id = (await push_group(client, workspace, "Ops", ada, bob)).json()["id"]
    before_seats = await seats(client, workspace)
    mark = await head(app.state.pool)
    for token in await listed_tokens(client, workspace):
        response = await client.delete(f"/api/v1/tokens/{token['id']}", headers=admin_auth(workspace))
        assert response.status_code == 204
    assert set(types_of(await events_since(app.state.pool, mark))) == {"TokenRevoked"}
    assert {t["status"] for t in await listed_tokens(client, workspace)} == {"revoked"}
    assert_scim_error(await provision(client, workspace, "carol@example.com"), 401)
    assert_scim_error(await set_active(client, workspace, bob, False), 401)
    for member_id, role in ((ada, "admin"), (bob, "member")):
        kept = await member(client, workspace, member_id)
        assert (kept["status"], kept["role"], kept["managed_by"]) == ("active", role, "idp")
    assert await seats(client, workspace) == before_seats
    teams = (await admin_get(client, workspace, "/teams"))["teams"]
    assert [(t["id"], t["managed_by"], t["archived"], t["members"]) for t in teams] == [
        (team_id, "idp", False, 2)
    ]


async def test_every_event_a_token_causes_names_the_token(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    created = await new_token(client, workspace, name="Okta production")
    auth = token_auth(created["token"])
    mark = await head(app.state.pool)
    posted = await client.post(
        "/scim/v2/Users", json={"userName": "ada@example.com", "roles": [{"value": "admin"}]}, headers=auth
    )
    assert posted.status_code == 201, posted.text
    ada = posted.json()["id"]
    bob = (await client.post("/scim/v2/Users", json={"userName": "bob@example.com"}, headers=auth)).json()[
        "id"
    ]
    group = await client.post(
        "/scim/v2/Groups", json={"displayName": "Ops", "members": [{"value": ada}]}, headers=auth
    )
    assert group.status_code == 201, group.text
    body = patch_body(replace("active", False))
    assert (await client.patch(f"/scim/v2/Users/{bob}", json=body, headers=auth)).status_code == 200
    assert (await client.delete(f"/scim/v2/Users/{bob}", headers=auth)).status_code == 204
    events = await events_since(app.state.pool, mark)
    assert {
        "MemberProvisioned",
        "SeatAssigned",
        "TeamCreated",
        "MemberSuspended",
        "MemberDeprovisioned",
    } <= set(types_of(events))
    actors = {
        (e.metadata["actor"]["kind"], e.metadata["actor"]["id"], e.metadata["actor"]["name"]) for e in events
    }
    assert actors == {("token", created["id"], "Okta production")}
    assert {e.metadata["source"] for e in events} == {"scim"}


# --- isolation: a key of one workspace sees nothing of another ------------------------------------------
@pytest.fixture
async def foreign(client: httpx.AsyncClient, app: Any, workspace: Workspace) -> dict[str, str]:
    """Resources of another workspace: an IdP member, an invited member, an IdP team, a token."""
    other = await make_workspace(app.state.store, name="Other", domains=("other.test",), seats=10)
    await client.post("/api/v1/domains", json={"domain": "partner.test"}, headers=admin_auth(other))
    idp_member = await provisioned(client, other, "zed@other.test")
    invited = await provisioned(client, other, "yan@partner.test")
    team_id = (await push_group(client, other, "Other team", idp_member)).json()["id"]
    token_id = (await listed_tokens(client, other))[0]["id"]
    return {"member": idp_member, "invited": invited, "team": team_id, "token": token_id}


ADMIN_PROBES = {
    "get-member": ("GET", "/api/v1/members/{member}", None),
    "patch-member-role": ("PATCH", "/api/v1/members/{member}", {"role": "admin"}),
    "patch-member-active": ("PATCH", "/api/v1/members/{member}", {"active": False}),
    "accept-invite": ("POST", "/api/v1/members/{invited}/accept-invite", None),
    "revoke-token": ("DELETE", "/api/v1/tokens/{token}", None),
    "unlink-team": ("POST", "/api/v1/teams/{team}/unlink", None),
}


@pytest.mark.parametrize("probe", list(ADMIN_PROBES))
async def test_an_admin_key_gets_404_for_another_workspace_s_resources(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, foreign: dict[str, str], probe: str
) -> None:
    method, path, body = ADMIN_PROBES[probe]
    async with appends_nothing(app.state.pool):
        response = await client.request(
            method, path.format(**foreign), json=body, headers=admin_auth(workspace)
        )
    assert_admin_error(response, 404, "not_found")


async def test_an_admin_key_lists_nothing_of_another_workspace(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, foreign: dict[str, str]
) -> None:
    root = await provisioned(client, workspace, "root@example.com", roles=["admin"])
    ours = await provisioned(client, workspace, "ada@example.com")
    await client.patch(f"/api/v1/members/{ours}", json={"role": "admin"}, headers=admin_auth(workspace))
    await push_group(client, workspace, "Our team", root, ours)
    await runner.catch_up(app.state.pool)
    for path, key in (("/members", "members"), ("/teams", "teams"), ("/drift", "drift")):
        listed = (await admin_get(client, workspace, path))[key]
        assert all(item.get("id", item.get("resource_id")) not in foreign.values() for item in listed), path
    tokens = await listed_tokens(client, workspace)
    assert foreign["token"] not in {t["id"] for t in tokens}
    rows = (await admin_get(client, workspace, "/outbox"))["outbox"]
    assert foreign["member"] not in {r["member_id"] for r in rows}


SCIM_PROBES = {
    "get-user": ("GET", "/scim/v2/Users/{member}", None),
    "patch-user": ("PATCH", "/scim/v2/Users/{member}", patch_body(replace("active", False))),
    "put-user": ("PUT", "/scim/v2/Users/{member}", {"userName": "zed@other.test", "active": False}),
    "delete-user": ("DELETE", "/scim/v2/Users/{member}", None),
    "get-group": ("GET", "/scim/v2/Groups/{team}", None),
    "patch-group": ("PATCH", "/scim/v2/Groups/{team}", patch_body(replace("displayName", "Mine"))),
    "put-group": ("PUT", "/scim/v2/Groups/{team}", {"displayName": "Mine"}),
    "delete-group": ("DELETE", "/scim/v2/Groups/{team}", None),
}


@pytest.mark.parametrize("probe", list(SCIM_PROBES))
async def test_a_scim_token_gets_404_for_another_workspace_s_resources(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, foreign: dict[str, str], probe: str
) -> None:
    method, path, body = SCIM_PROBES[probe]
    async with appends_nothing(app.state.pool):
        response = await client.request(method, path.format(**foreign), json=body, headers=workspace.auth)
    assert_scim_error(response, 404)


async def test_a_scim_group_cannot_take_members_of_another_workspace(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, foreign: dict[str, str]
) -> None:
    """Seed 002: only members already in this workspace join a pushed team; others are skipped."""
    response = await push_group(client, workspace, "Raid", foreign["member"])
    assert response.status_code == 201, response.text
    assert "members" not in response.json()
    added = await app.state.pool.fetchval(
        "SELECT count(*) FROM events WHERE event_type = 'TeamMemberAdded' AND workspace_id = $1", workspace.id
    )
    assert added == 0


async def test_unlinking_an_app_team_changes_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    team_id = await create_app_team(client, workspace, "Design")
    async with appends_nothing(app.state.pool):
        response = await client.post(f"/api/v1/teams/{team_id}/unlink", headers=admin_auth(workspace))
    assert response.status_code == 200, response.text
    assert response.json()["managed_by"] == "app"


async def test_an_app_team_name_is_unique_regardless_of_case(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await create_app_team(client, workspace, "Design")
    async with appends_nothing(app.state.pool):
        response = await client.post("/api/v1/teams", json={"name": "DESIGN"}, headers=admin_auth(workspace))
    assert_admin_error(response, 409, "uniqueness")


async def test_an_idp_push_of_an_idp_team_s_name_is_409(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    assert (await push_group(client, workspace, "Ops")).status_code == 201
    async with appends_nothing(app.state.pool):
        response = await push_group(client, workspace, "Ops")
    assert_scim_error(response, 409, "uniqueness")
