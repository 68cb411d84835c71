"""SCIM responses honour ``Accept`` (RFC 7644 §3.8; issue 10, defect 8): ``application/json`` when the client
prefers it (OneLogin documents that it needs it), ``application/scim+json`` otherwise — on every SCIM route,
errors included. The body is the same either way; the admin API stays ``application/json``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Workspace

JSON = {"Accept": "application/json"}


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


@pytest.mark.parametrize(
    "path", ["/scim/v2/ServiceProviderConfig", "/scim/v2/ResourceTypes", "/scim/v2/Schemas", "/scim/v2/Users"]
)
async def test_the_same_body_in_the_media_type_asked_for(
    client: httpx.AsyncClient, workspace: Workspace, path: str
) -> None:
    default = await client.get(path, headers=workspace.auth)
    as_json = await client.get(path, headers={**workspace.auth, **JSON})
    assert (default.status_code, as_json.status_code) == (200, 200)
    assert (media_type(default), media_type(as_json)) == ("application/scim+json", "application/json")
    assert as_json.json() == default.json()
    assert "accept" in as_json.headers["vary"].lower()
    assert "accept" in default.headers["vary"].lower()


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("*/*", "application/scim+json"),
        ("application/scim+json", "application/scim+json"),
        ("application/json;q=0.5, application/scim+json", "application/scim+json"),
        ("application/scim+json;q=0.5, application/json", "application/json"),
        ("application/json, text/plain, */*", "application/json"),
    ],
)
async def test_quality_values_decide(
    client: httpx.AsyncClient, workspace: Workspace, accept: str, expected: str
) -> None:
    response = await client.get("/scim/v2/Users", headers={**workspace.auth, "Accept": accept})
    assert media_type(response) == expected


async def test_writes_and_their_errors_answer_in_the_media_type_asked_for(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    headers = {**workspace.auth, **JSON, "Content-Type": "application/json"}
    created = await client.post("/scim/v2/Users", json={"userName": "ann@example.com"}, headers=headers)
    assert (created.status_code, media_type(created)) == (201, "application/json")
    again = await client.post("/scim/v2/Users", json={"userName": "ann@example.com"}, headers=headers)
    assert (again.status_code, media_type(again)) == (409, "application/json")
    assert again.json()["scimType"] == "uniqueness"
    bad = await client.post("/scim/v2/Users", content=b"{nope", headers=headers)
    assert (bad.status_code, media_type(bad)) == (400, "application/json")
    assert bad.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_an_unauthenticated_request_and_an_oversized_body_too(client: httpx.AsyncClient) -> None:
    unauthenticated = await client.get("/scim/v2/Users", headers=JSON)
    assert (unauthenticated.status_code, media_type(unauthenticated)) == (401, "application/json")
    too_large = await client.post(
        "/scim/v2/Users",
        content=b"x" * (1024 * 1024 + 1),
        headers={**JSON, "Content-Type": "application/json"},
    )
    assert (too_large.status_code, media_type(too_large)) == (413, "application/json")


async def test_bulk_answers_in_the_media_type_asked_for(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "bulk@example.com"}}
        ],
    }
    response = await client.post("/scim/v2/Bulk", json=body, headers={**workspace.auth, **JSON})
    assert (response.status_code, media_type(response)) == (200, "application/json")
    assert response.json()["Operations"][0]["status"] == "201"


async def test_a_304_carries_no_body(client: httpx.AsyncClient, workspace: Workspace) -> None:
    created = await client.post("/scim/v2/Users", json={"userName": "bo@example.com"}, headers=workspace.auth)
    user = created.json()
    response = await client.get(
        f"/scim/v2/Users/{user['id']}",
        headers={**workspace.auth, **JSON, "If-None-Match": user["meta"]["version"]},
    )
    assert response.status_code == 304
    assert response.content == b""


async def test_the_admin_api_is_not_affected(client: httpx.AsyncClient, workspace: Workspace) -> None:
    headers = {"Authorization": f"Bearer {workspace.admin_key}", "Accept": "application/scim+json"}
    response = await client.get("/api/v1/workspace", headers=headers)
    assert (response.status_code, media_type(response)) == (200, "application/json")
