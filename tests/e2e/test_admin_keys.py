"""Admin keys (issue 10; README "Admin API", "Admin keys"): ``GET /api/v1/admin-keys`` lists a workspace's
keys without any secret, ``POST`` issues one (its secret shown in that answer only), ``DELETE`` revokes one
(its next request is 401). The last active key of a workspace cannot be revoked (409 ``last_admin_key``),
even by two revocations at once. The handlers are the domain commands the CLI shares
(``handlers.issue_admin_key``, ``handlers.revoke_admin_key``). Answers are checked against the document.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from scimledger import credentials, handlers
from scimledger.domain.errors import LastAdminKey, UnknownResource
from scimledger.store.event_store import Metadata
from tests.conftest import Workspace, make_workspace
from tests.e2e.rules_helpers import appends_nothing, assert_admin_error, events_since, head, types_of
from tests.e2e.test_openapi import documented

KEYS = "/api/v1/admin-keys"
KEY = "/api/v1/admin-keys/{id}"
OPERATOR = Metadata(actor_kind="operator", actor_id="root", actor_name="operator root", source="system")


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def listed(client: httpx.AsyncClient, secret: str) -> list[dict[str, Any]]:
    response = await client.get(KEYS, headers=auth(secret))
    documented(response, "get", KEYS)
    assert response.status_code == 200, response.text
    return list(response.json()["admin_keys"])


async def issue(client: httpx.AsyncClient, secret: str) -> dict[str, Any]:
    response = await client.post(KEYS, json={}, headers=auth(secret))
    documented(response, "post", KEYS)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def revoke(client: httpx.AsyncClient, secret: str, key_id: str) -> httpx.Response:
    response = await client.delete(KEY.format(id=key_id), headers=auth(secret))
    documented(response, "delete", KEY)
    return response


async def works(client: httpx.AsyncClient, secret: str) -> bool:
    status = (await client.get("/api/v1/workspace", headers=auth(secret))).status_code
    assert status in (200, 401)
    return status == 200


async def test_the_list_shows_the_workspaces_key_and_no_secret(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    [key] = await listed(client, workspace.admin_key)
    assert (key["status"], key["current"], key["revoked_at"], key["revoked_by"]) == (
        "active",
        True,
        None,
        None,
    )
    assert key["created_by"] == "tests"  # the actor that created the workspace
    hashed = credentials.secret_hash(workspace.admin_key).hex()
    text = str(await listed(client, workspace.admin_key))
    assert workspace.admin_key not in text and hashed not in text


async def test_a_new_key_is_shown_once_and_works(client: httpx.AsyncClient, workspace: Workspace) -> None:
    issued = await issue(client, workspace.admin_key)
    secret = issued.pop("admin_key")
    assert credentials.well_formed(secret, credentials.ADMIN_KEY_PREFIX)
    assert (issued["status"], issued["current"]) == ("active", False)
    assert issued["created_by"].startswith("admin key ")
    assert await works(client, secret)
    keys = await listed(client, workspace.admin_key)
    assert {**issued, "current": False} in keys
    assert all("admin_key" not in k for k in keys)
    as_new = await listed(client, secret)
    assert [k["current"] for k in as_new if k["id"] == issued["id"]] == [True]


async def test_a_revoked_keys_next_request_is_401(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    issued = await issue(client, workspace.admin_key)
    start = await head(app.state.pool)
    response = await revoke(client, workspace.admin_key, issued["id"])
    assert (response.status_code, response.content) == (204, b"")
    assert types_of(await events_since(app.state.pool, start)) == ["AdminKeyRevoked"]
    assert not await works(client, issued["admin_key"])
    [gone] = [k for k in await listed(client, workspace.admin_key) if k["id"] == issued["id"]]
    assert gone["status"] == "revoked" and gone["revoked_at"] and gone["revoked_by"].startswith("admin key ")
    async with appends_nothing(app.state.pool):  # revoking a revoked key changes nothing
        assert (await revoke(client, workspace.admin_key, issued["id"])).status_code == 204


async def test_a_key_may_revoke_itself_while_another_remains(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    issued = await issue(client, workspace.admin_key)
    [own] = [k for k in await listed(client, workspace.admin_key) if k["current"]]
    assert (await revoke(client, workspace.admin_key, own["id"])).status_code == 204
    assert not await works(client, workspace.admin_key)
    assert await works(client, issued["admin_key"])


async def test_the_last_key_cannot_be_revoked(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    [own] = await listed(client, workspace.admin_key)
    async with appends_nothing(app.state.pool):
        response = await revoke(client, workspace.admin_key, own["id"])
        error = assert_admin_error(response, 409, "last_admin_key")
        assert "last" in error["message"]
    assert await works(client, workspace.admin_key)
    issued = await issue(client, workspace.admin_key)
    assert (await revoke(client, issued["admin_key"], own["id"])).status_code == 204
    async with appends_nothing(app.state.pool):
        response = await revoke(client, issued["admin_key"], issued["id"])
        assert_admin_error(response, 409, "last_admin_key")


async def test_two_revocations_at_once_leave_one_key(client: httpx.AsyncClient, app: Any) -> None:
    """Each request sees the other key still active; the read-model guard (schema.sql §6) makes the second
    to commit decide again, and it finds itself the last."""
    for round_ in range(5):
        ws = await make_workspace(app.state.store, name=f"Race {round_}")
        [first] = await listed(client, ws.admin_key)
        second = await issue(client, ws.admin_key)
        results = await asyncio.gather(
            revoke(client, second["admin_key"], first["id"]),
            revoke(client, ws.admin_key, second["id"]),
        )
        assert sorted(r.status_code for r in results) == [204, 409], [r.text for r in results]
        survivors = [s for s in (ws.admin_key, second["admin_key"]) if await works(client, s)]
        assert len(survivors) == 1
        assert [k["status"] for k in await listed(client, survivors[0])].count("active") == 1


@pytest.mark.parametrize("key_id", ["00000000-0000-0000-0000-000000000000", "nope"])
async def test_revoking_an_unknown_key_is_404(
    client: httpx.AsyncClient, workspace: Workspace, key_id: str
) -> None:
    assert_admin_error(await revoke(client, workspace.admin_key, key_id), 404, "not_found")


async def test_another_workspaces_key_is_404_and_stays(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    other = await make_workspace(app.state.store, name="Other")
    await issue(client, other.admin_key)
    theirs = await listed(client, other.admin_key)
    for key in theirs:
        assert_admin_error(await revoke(client, workspace.admin_key, key["id"]), 404, "not_found")
    assert await listed(client, other.admin_key) == theirs
    assert {k["id"] for k in await listed(client, workspace.admin_key)}.isdisjoint({k["id"] for k in theirs})


async def test_the_domain_commands_the_cli_shares(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    store = app.state.store
    start = await head(app.state.pool)
    issued = await handlers.issue_admin_key(store, handlers.IssueAdminKey(workspace.id), OPERATOR)
    assert await works(client, issued.admin_key)
    [own] = [k for k in await listed(client, issued.admin_key) if k["current"]]
    assert (own["id"], own["created_by"]) == (str(issued.key_id), "operator root")
    await handlers.revoke_admin_key(store, handlers.RevokeAdminKey(workspace.id, issued.key_id), OPERATOR)
    assert not await works(client, issued.admin_key)
    events = await events_since(app.state.pool, start)
    assert types_of(events) == ["AdminKeyIssued", "AdminKeyRevoked"]
    assert all(e.metadata["actor"]["name"] == "operator root" for e in events)
    [first] = [k for k in await listed(client, workspace.admin_key) if k["status"] == "active"]
    with pytest.raises(LastAdminKey):
        await handlers.revoke_admin_key(
            store, handlers.RevokeAdminKey(workspace.id, UUID(first["id"])), OPERATOR
        )
    with pytest.raises(UnknownResource):
        await handlers.issue_admin_key(store, handlers.IssueAdminKey(uuid4()), OPERATOR)
