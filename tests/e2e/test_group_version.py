"""A group's version moves with its members (issue 10, defect 2; RFC 7644 §3.14: the version changes
whenever the resource does, and a group's ``members`` are part of it).

Every change of who is in a team — a PATCH or PUT of members, a member deprovisioned out of it — moves the
group's ``meta.version``, its ``ETag`` and ``meta.lastModified``; ``If-None-Match`` with an older tag is then
answered in full and ``If-Match`` with an older tag is 412. A read model rebuilt from the log agrees.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from projections.rebuild import rebuild
from tests.conftest import Workspace

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


async def user(client: httpx.AsyncClient, ws: Workspace, name: str, **extra: Any) -> str:
    response = await client.post("/scim/v2/Users", json={"userName": name, **extra}, headers=ws.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def group(client: httpx.AsyncClient, ws: Workspace, name: str, *members: str) -> dict[str, Any]:
    body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    response = await client.post("/scim/v2/Groups", json=body, headers=ws.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def members_op(op: str, *ids: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": op, "path": "members", "value": [{"value": i} for i in ids]}],
    }


async def fetch(client: httpx.AsyncClient, ws: Workspace, group_id: str, **headers: str) -> httpx.Response:
    return await client.get(f"/scim/v2/Groups/{group_id}", headers={**ws.auth, **headers})


async def events(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


async def later() -> None:
    """Let the clock pass a millisecond (``meta.lastModified`` is shown with milliseconds)."""
    await asyncio.sleep(0.005)


async def test_adding_a_member_moves_version_etag_and_last_modified(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a = await user(client, workspace, "a@example.com")
    created = await group(client, workspace, "Engineering")
    await later()
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}", json=members_op("add", a), headers=workspace.auth
    )
    assert response.status_code == 200
    meta = response.json()["meta"]
    assert meta["version"] != created["meta"]["version"]
    assert response.headers["ETag"] == meta["version"]
    assert meta["lastModified"] > created["meta"]["lastModified"]
    fetched = await fetch(client, workspace, created["id"])
    assert (fetched.headers["ETag"], fetched.json()["meta"]) == (meta["version"], meta)


async def test_removing_a_member_moves_the_version(client: httpx.AsyncClient, workspace: Workspace) -> None:
    a = await user(client, workspace, "b@example.com")
    created = await group(client, workspace, "Sales", a)
    await later()
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}", json=members_op("remove", a), headers=workspace.auth
    )
    assert response.status_code == 200
    assert "members" not in response.json()
    assert response.json()["meta"]["version"] != created["meta"]["version"]
    assert response.json()["meta"]["lastModified"] > created["meta"]["lastModified"]


async def test_replacing_the_members_with_put_moves_the_version(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com") for n in ("c", "d")]
    created = await group(client, workspace, "Ops", a)
    body = {"schemas": [GROUP], "displayName": "Ops", "members": [{"value": b}]}
    response = await client.put(f"/scim/v2/Groups/{created['id']}", json=body, headers=workspace.auth)
    assert response.status_code == 200
    assert [m["value"] for m in response.json()["members"]] == [b]
    assert response.json()["meta"]["version"] != created["meta"]["version"]


async def test_if_none_match_with_the_tag_from_before_a_member_change_is_answered_in_full(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a = await user(client, workspace, "e@example.com")
    created = await group(client, workspace, "Design")
    old_tag = (await fetch(client, workspace, created["id"])).headers["ETag"]
    assert (await fetch(client, workspace, created["id"], **{"If-None-Match": old_tag})).status_code == 304
    await client.patch(f"/scim/v2/Groups/{created['id']}", json=members_op("add", a), headers=workspace.auth)
    response = await fetch(client, workspace, created["id"], **{"If-None-Match": old_tag})
    assert response.status_code == 200
    assert [m["value"] for m in response.json()["members"]] == [a]
    assert response.headers["ETag"] != old_tag


async def test_if_match_with_the_tag_from_before_a_member_change_is_412_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com") for n in ("f", "g")]
    created = await group(client, workspace, "Finance")
    old_tag = created["meta"]["version"]
    await client.patch(f"/scim/v2/Groups/{created['id']}", json=members_op("add", a), headers=workspace.auth)
    before = await events(app.state.pool)
    stale = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=members_op("add", b),
        headers={**workspace.auth, "If-Match": old_tag},
    )
    assert stale.status_code == 412
    assert stale.json()["status"] == "412"
    body = {"schemas": [GROUP], "displayName": "Renamed"}
    put = await client.put(
        f"/scim/v2/Groups/{created['id']}", json=body, headers={**workspace.auth, "If-Match": old_tag}
    )
    assert put.status_code == 412
    delete = await client.delete(
        f"/scim/v2/Groups/{created['id']}", headers={**workspace.auth, "If-Match": old_tag}
    )
    assert delete.status_code == 412
    assert await events(app.state.pool) == before


async def test_if_match_with_the_current_tag_after_member_changes_is_accepted(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com") for n in ("h", "i")]
    created = await group(client, workspace, "Legal", a)
    moved = await client.patch(
        f"/scim/v2/Groups/{created['id']}", json=members_op("add", b), headers=workspace.auth
    )
    tag = moved.headers["ETag"]
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=members_op("remove", a),
        headers={**workspace.auth, "If-Match": tag},
    )
    assert response.status_code == 200
    assert [m["value"] for m in response.json()["members"]] == [b]
    deleted = await client.delete(
        f"/scim/v2/Groups/{created['id']}", headers={**workspace.auth, "If-Match": response.headers["ETag"]}
    )
    assert deleted.status_code == 204


async def test_a_member_deprovisioned_out_of_the_team_moves_the_version(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com") for n in ("j", "k")]
    created = await group(client, workspace, "Research", a, b)
    await later()
    assert (await client.delete(f"/scim/v2/Users/{a}", headers=workspace.auth)).status_code == 204
    response = await fetch(client, workspace, created["id"], **{"If-None-Match": created["meta"]["version"]})
    assert response.status_code == 200
    assert [m["value"] for m in response.json()["members"]] == [b]
    assert response.json()["meta"]["version"] != created["meta"]["version"]
    assert response.json()["meta"]["lastModified"] > created["meta"]["lastModified"]


async def test_a_members_new_display_name_moves_the_version_of_the_teams_showing_it(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a = await user(client, workspace, "l@example.com", displayName="Lee")
    created = await group(client, workspace, "Support", a)
    assert created["members"][0]["display"] == "Lee"
    change = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Lea"}]}
    assert (await client.patch(f"/scim/v2/Users/{a}", json=change, headers=workspace.auth)).status_code == 200
    response = await fetch(client, workspace, created["id"], **{"If-None-Match": created["meta"]["version"]})
    assert response.status_code == 200
    assert response.json()["members"][0]["display"] == "Lea"


async def test_a_no_op_member_change_keeps_the_version(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    a = await user(client, workspace, "m@example.com")
    created = await group(client, workspace, "Quiet", a)
    response = await client.patch(
        f"/scim/v2/Groups/{created['id']}",
        json=members_op("add", a),
        headers={**workspace.auth, "If-Match": created["meta"]["version"]},
    )
    assert response.status_code == 200
    assert response.json()["meta"] == created["meta"]


async def test_the_rebuilt_read_model_has_the_same_versions(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    a, b = [await user(client, workspace, f"{n}@example.com", displayName=n) for n in ("n", "o")]
    created = await group(client, workspace, "Rebuilt", a)
    await client.patch(f"/scim/v2/Groups/{created['id']}", json=members_op("add", b), headers=workspace.auth)
    rename = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}
    await client.patch(f"/scim/v2/Users/{b}", json=rename, headers=workspace.auth)
    await client.delete(f"/scim/v2/Users/{a}", headers=workspace.auth)
    before = (await fetch(client, workspace, created["id"])).json()["meta"]
    digests = await rebuild(app.state.pool, verify=True)
    assert all(d.equal for d in digests)
    assert (await fetch(client, workspace, created["id"])).json()["meta"] == before
