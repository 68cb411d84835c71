"""``POST /Bulk`` end to end (RFC 7644 §3.7): bulkId references, failOnErrors, limits."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Workspace

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def bulk(*operations: dict[str, Any], fail_on_errors: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [BULK], "Operations": list(operations)}
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    return body


async def test_bulk_creates_user_and_group_referencing_it(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    response = await client.post(
        "/scim/v2/Bulk",
        json=bulk(
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "bulk@example.com"}},
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g1",
                "data": {"displayName": "Bulk team", "members": [{"value": "bulkId:u1"}]},
            },
        ),
        headers=workspace.auth,
    )
    assert response.status_code == 200, response.text
    operations = response.json()["Operations"]
    assert [o["status"] for o in operations] == ["201", "201"]
    group = await client.get(
        operations[1]["location"].replace("https://scim.example.test", ""), headers=workspace.auth
    )
    user_id = operations[0]["location"].rsplit("/", 1)[1]
    assert [m["value"] for m in group.json()["members"]] == [user_id]


async def test_fail_on_errors_stops_and_failed_operations_append_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await client.post("/scim/v2/Users", json={"userName": "dup@example.com"}, headers=workspace.auth)
    before = await app.state.pool.fetchval("SELECT count(*) FROM events")
    response = await client.post(
        "/scim/v2/Bulk",
        json=bulk(
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "DUP@example.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "fine@example.com"}},
            fail_on_errors=1,
        ),
        headers=workspace.auth,
    )
    assert response.status_code == 200
    operations = response.json()["Operations"]
    assert len(operations) == 1
    assert operations[0]["status"] == "409"
    assert operations[0]["response"]["scimType"] == "uniqueness"
    assert await app.state.pool.fetchval("SELECT count(*) FROM events") == before


async def test_too_many_operations_is_413(client: httpx.AsyncClient, workspace: Workspace) -> None:
    ops = [{"method": "DELETE", "path": f"/Users/{n}"} for n in range(1001)]
    response = await client.post("/scim/v2/Bulk", json=bulk(*ops), headers=workspace.auth)
    assert response.status_code == 413
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_bulk_needs_write_scope(client: httpx.AsyncClient, workspace: Workspace) -> None:
    response = await client.post("/scim/v2/Bulk", json=bulk(), headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
