"""Groups (teams): create with members, PATCH members as set operations, DELETE archives (RFC 7644 §3)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Workspace

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def user(client: httpx.AsyncClient, ws: Workspace, name: str) -> str:
    response = await client.post("/scim/v2/Users", json={"userName": name}, headers=ws.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def group(client: httpx.AsyncClient, ws: Workspace, name: str, *members: str) -> dict[str, Any]:
    body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    response = await client.post("/scim/v2/Groups", json=body, headers=ws.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count(app: Any, kind: str) -> int:
    return int(await app.state.pool.fetchval("SELECT count(*) FROM events WHERE event_type = $1", kind))


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def test_create_group_with_members_renders_them(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a = await user(client, workspace, "a@example.com")
    created = await group(client, workspace, "Engineering", a)
    assert created["displayName"] == "Engineering"
    assert created["members"] == [
        {
            "value": a,
            "display": "a@example.com",
            "$ref": f"https://scim.example.test/scim/v2/Users/{a}",
            "type": "User",
        }
    ]
    assert created["meta"]["resourceType"] == "Group"
    fetched = await client.get(f"/scim/v2/Users/{a}", headers=workspace.auth)
    assert [g["value"] for g in fetched.json()["groups"]] == [created["id"]]


async def test_excluded_members_are_not_returned(client: httpx.AsyncClient, workspace: Workspace) -> None:
    a = await user(client, workspace, "b@example.com")
    created = await group(client, workspace, "Sales", a)
    listed = await client.get(
        "/scim/v2/Groups", params={"excludedAttributes": "members"}, headers=workspace.auth
    )
    assert listed.status_code == 200
    assert "members" not in listed.json()["Resources"][0]
    one = await client.get(
        f"/scim/v2/Groups/{created['id']}", params={"excludedAttributes": "members"}, headers=workspace.auth
    )
    assert "members" not in one.json()
    assert one.json()["displayName"] == "Sales"


async def test_adding_an_existing_member_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    a = await user(client, workspace, "c@example.com")
    created = await group(client, workspace, "Ops", a)
    before = await count(app, "TeamMemberAdded")
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=patch({"op": "add", "path": "members", "value": [{"value": a}]}),
        headers=workspace.auth,
    )
    assert response.status_code == 200
    assert await count(app, "TeamMemberAdded") == before
    assert response.json()["meta"]["version"] == created["meta"]["version"]


async def test_entra_remove_with_value_list_removes_only_those(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a, b, c = [await user(client, workspace, f"{n}@example.com") for n in "def"]
    created = await group(client, workspace, "Support", a, b, c)
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=patch({"op": "Remove", "path": "members", "value": [{"value": b}]}),
        headers=workspace.auth,
    )
    assert response.status_code == 200
    assert sorted(m["value"] for m in response.json()["members"]) == sorted([a, c])


async def test_okta_remove_by_filter_and_add_in_one_patch(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com") for n in "gh"]
    created = await group(client, workspace, "Design", a)
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=patch(
            {"op": "remove", "path": f'members[value eq "{a}"]'},
            {"op": "add", "path": "members", "value": [{"value": b, "display": "h"}]},
        ),
        headers=workspace.auth,
    )
    assert response.status_code == 200, response.text
    assert [m["value"] for m in response.json()["members"]] == [b]


async def test_replace_members_with_empty_list_removes_everyone(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com") for n in "ij"]
    created = await group(client, workspace, "Legal", a, b)
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=patch({"op": "replace", "path": "members", "value": []}),
        headers=workspace.auth,
    )
    assert response.status_code == 200
    assert "members" not in response.json()
    assert await count(app, "TeamMemberRemoved") == 2


async def test_removing_an_absent_member_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com") for n in "kl"]
    created = await group(client, workspace, "Finance", a)
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=patch({"op": "remove", "path": f'members[value eq "{b}"]'}),
        headers=workspace.auth,
    )
    assert response.status_code == 200
    assert await count(app, "TeamMemberRemoved") == 0


async def test_rename_with_own_id_okta(client: httpx.AsyncClient, workspace: Workspace) -> None:
    created = await group(client, workspace, "Old name")
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=patch({"op": "replace", "value": {"id": created["id"], "displayName": "New name"}}),
        headers=workspace.auth,
    )
    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "New name"


async def test_duplicate_display_name_is_409(client: httpx.AsyncClient, workspace: Workspace) -> None:
    await group(client, workspace, "Unique")
    response = await client.post(
        "/scim/v2/Groups", json={"schemas": [GROUP], "displayName": "unique"}, headers=workspace.auth
    )
    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


async def test_delete_archives_and_frees_the_name(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    created = await group(client, workspace, "Temp")
    assert (
        await client.delete(f"/scim/v2/Groups/{created['id']}", headers=workspace.auth)
    ).status_code == 204
    assert (await client.get(f"/scim/v2/Groups/{created['id']}", headers=workspace.auth)).status_code == 404
    assert await count(app, "TeamArchived") == 1
    await group(client, workspace, "Temp")


async def test_members_not_in_the_workspace_are_skipped(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    """Seed 002: members of a pushed group who are already in the workspace are added; others are skipped."""
    a = await user(client, workspace, "known@example.com")
    response = await client.post(
        "/scim/v2/Groups",
        json={
            "displayName": "X",
            "members": [
                {"value": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"},
                {"value": "not-an-id"},
                {"value": a},
            ],
        },
        headers=workspace.auth,
    )
    assert response.status_code == 201
    assert [m["value"] for m in response.json()["members"]] == [a]
    assert await count(app, "TeamMemberAdded") == 1


async def test_filter_groups_by_display_name(client: httpx.AsyncClient, workspace: Workspace) -> None:
    await group(client, workspace, "Alpha")
    await group(client, workspace, "Beta")
    response = await client.get(
        "/scim/v2/Groups", params={"filter": 'displayName eq "beta"'}, headers=workspace.auth
    )
    assert [g["displayName"] for g in response.json()["Resources"]] == ["Beta"]


async def test_deprovisioned_user_leaves_its_teams(client: httpx.AsyncClient, workspace: Workspace) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com") for n in "mn"]
    created = await group(client, workspace, "Team", a, b)
    await client.delete(f"/scim/v2/Users/{a}", headers=workspace.auth)
    fetched = await client.get(f"/scim/v2/Groups/{created['id']}", headers=workspace.auth)
    assert [m["value"] for m in fetched.json()["members"]] == [b]
