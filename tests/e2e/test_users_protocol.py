"""Users beyond create: PUT, PATCH, DELETE, ETags, no-op writes, deactivation (RFC 7644 §3.5, §3.6, §3.14)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Workspace

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def create(client: httpx.AsyncClient, ws: Workspace, user_name: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/scim/v2/Users", json={"userName": user_name, **extra}, headers=ws.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def events(app: Any) -> int:
    return int(await app.state.pool.fetchval("SELECT count(*) FROM events"))


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def test_put_replaces_and_clears_unspecified_attributes(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    user = await create(client, workspace, "put@example.com", title="Engineer", nickName="p")
    body = {**user, "title": "Manager", "meta": {"version": 'W/"99"'}, "groups": [{"value": "x"}]}
    del body["nickName"]
    response = await client.put(f"/scim/v2/Users/{user['id']}", json=body, headers=workspace.auth)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced["title"] == "Manager"
    assert "nickName" not in replaced
    assert "groups" not in replaced
    assert replaced["meta"]["version"] == 'W/"2"'


async def test_patch_that_changes_nothing_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    user = await create(client, workspace, "same@example.com", displayName="Same")
    before = await events(app)
    response = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json=patch({"op": "replace", "path": "displayName", "value": "Same"}),
        headers=workspace.auth,
    )
    assert response.status_code == 200
    assert response.json()["meta"]["version"] == user["meta"]["version"]
    assert await events(app) == before


async def test_put_that_changes_nothing_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    user = await create(client, workspace, "same2@example.com", displayName="Same")
    before = await events(app)
    response = await client.put(f"/scim/v2/Users/{user['id']}", json=user, headers=workspace.auth)
    assert response.status_code == 200
    assert response.json() == user
    assert await events(app) == before


async def test_if_match_mismatch_is_412_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    user = await create(client, workspace, "etag@example.com")
    before = await events(app)
    response = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json=patch({"op": "replace", "path": "title", "value": "x"}),
        headers={**workspace.auth, "If-Match": 'W/"7"'},
    )
    assert response.status_code == 412
    assert await events(app) == before
    ok = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json=patch({"op": "replace", "path": "title", "value": "x"}),
        headers={**workspace.auth, "If-Match": user["meta"]["version"]},
    )
    assert ok.status_code == 200
    assert ok.headers["ETag"] == 'W/"2"'


async def test_if_none_match_current_version_is_304(client: httpx.AsyncClient, workspace: Workspace) -> None:
    user = await create(client, workspace, "cache@example.com")
    response = await client.get(
        f"/scim/v2/Users/{user['id']}", headers={**workspace.auth, "If-None-Match": user["meta"]["version"]}
    )
    assert response.status_code == 304
    stale = await client.get(
        f"/scim/v2/Users/{user['id']}", headers={**workspace.auth, "If-None-Match": 'W/"0"'}
    )
    assert stale.status_code == 200


async def test_active_false_suspends_but_stays_visible(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    user = await create(client, workspace, "off@example.com")
    response = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json=patch({"op": "Replace", "path": "active", "value": "False"}),
        headers=workspace.auth,
    )
    assert response.status_code == 200
    assert response.json()["active"] is False
    found = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "off@example.com"'}, headers=workspace.auth
    )
    assert found.json()["Resources"][0]["active"] is False
    kinds = [r[0] for r in await app.state.pool.fetch("SELECT event_type FROM events ORDER BY position")]
    assert kinds[-2:] == ["MemberSuspended", "MemberSessionsRevoked"]


async def test_delete_deprovisions_keeps_history_and_frees_the_user_name(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    user = await create(client, workspace, "gone@example.com", externalId="ext-gone")
    assert (await client.delete(f"/scim/v2/Users/{user['id']}", headers=workspace.auth)).status_code == 204
    assert (await client.get(f"/scim/v2/Users/{user['id']}", headers=workspace.auth)).status_code == 404
    listed = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "gone@example.com"'}, headers=workspace.auth
    )
    assert listed.json()["totalResults"] == 0
    again = await create(client, workspace, "gone@example.com", externalId="ext-gone")
    assert again["id"] != user["id"]
    kinds = [r[0] for r in await app.state.pool.fetch("SELECT event_type FROM events ORDER BY position")]
    assert "MemberDeprovisioned" in kinds
    assert kinds[-1] == "MemberLinked"
    assert "MemberLinked" in kinds


async def test_patch_entra_pathless_replace_with_path_keys(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    user = await create(client, workspace, "entra@example.com")
    response = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json=patch(
            {
                "op": "Replace",
                "value": {"name.givenName": "Ada", f"{ENTERPRISE}:department": "R&D", "active": "True"},
            }
        ),
        headers=workspace.auth,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"]["givenName"] == "Ada"
    assert body[ENTERPRISE]["department"] == "R&D"
    assert ENTERPRISE in body["schemas"]


async def test_renaming_to_a_taken_user_name_is_409(client: httpx.AsyncClient, workspace: Workspace) -> None:
    await create(client, workspace, "taken@example.com")
    other = await create(client, workspace, "other@example.com")
    response = await client.patch(
        f"/scim/v2/Users/{other['id']}",
        json=patch({"op": "replace", "path": "userName", "value": "TAKEN@example.com"}),
        headers=workspace.auth,
    )
    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


async def test_renaming_frees_the_old_user_name(client: httpx.AsyncClient, workspace: Workspace) -> None:
    user = await create(client, workspace, "old@example.com")
    renamed = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json=patch({"op": "replace", "path": "userName", "value": "new@example.com"}),
        headers=workspace.auth,
    )
    assert renamed.status_code == 200
    await create(client, workspace, "old@example.com")


async def test_bad_patch_is_400_and_atomic(client: httpx.AsyncClient, workspace: Workspace, app: Any) -> None:
    user = await create(client, workspace, "atomic@example.com")
    before = await events(app)
    response = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json=patch(
            {"op": "replace", "path": "title", "value": "ok"},
            {"op": "replace", "path": "noSuchAttribute", "value": "x"},
        ),
        headers=workspace.auth,
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidPath"
    assert await events(app) == before
    assert "title" not in (await client.get(f"/scim/v2/Users/{user['id']}", headers=workspace.auth)).json()


async def test_patch_remove_active_leaves_it_unassigned_and_keeps_access(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    """RFC 7644 §3.5.2.2: a removed attribute is unassigned; it neither suspends nor reactivates."""
    user = await create(client, workspace, "unassigned@example.com")
    response = await client.patch(
        f"/scim/v2/Users/{user['id']}", json=patch({"op": "remove", "path": "active"}), headers=workspace.auth
    )
    assert response.status_code == 200
    assert "active" not in response.json()
    status = await app.state.pool.fetchval("SELECT status FROM scim_users WHERE id = $1", user["id"])
    assert status == "active"


async def test_extension_value_carrying_schemas_is_accepted(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    user = await create(client, workspace, "ext@example.com")
    response = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json=patch(
            {"op": "add", "path": ENTERPRISE, "value": {"schemas": [ENTERPRISE], "employeeNumber": "7"}}
        ),
        headers=workspace.auth,
    )
    assert response.status_code == 200, response.text
    assert response.json()[ENTERPRISE] == {"employeeNumber": "7"}


async def test_removing_active_of_a_suspended_user_does_not_reactivate(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    user = await create(client, workspace, "stays-off@example.com", active=False)
    response = await client.patch(
        f"/scim/v2/Users/{user['id']}", json=patch({"op": "remove", "path": "active"}), headers=workspace.auth
    )
    assert response.status_code == 200
    assert "active" not in response.json()
    status = await app.state.pool.fetchval("SELECT status FROM scim_users WHERE id = $1", user["id"])
    assert status == "suspended"
