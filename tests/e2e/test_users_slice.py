"""The first slice end to end: token auth, POST/GET /Users, userName filter, RFC 7644 §3.12 errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Workspace

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **extra}


async def log_count(app: Any, event_type: str | None = None) -> int:
    if event_type is None:
        return int(await app.state.pool.fetchval("SELECT count(*) FROM events"))
    return int(await app.state.pool.fetchval("SELECT count(*) FROM events WHERE event_type = $1", event_type))


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert body["detail"]


async def test_create_user_returns_rfc_shaped_resource(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    response = await client.post(
        "/scim/v2/Users",
        json=user_body("ada@example.com", name={"givenName": "Ada", "familyName": "Lovelace"}),
        headers=workspace.auth,
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body = response.json()
    assert body["schemas"] == [USER_SCHEMA]
    assert body["userName"] == "ada@example.com"
    assert body["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert body["active"] is True
    meta = body["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"] == f"https://scim.example.test/scim/v2/Users/{body['id']}"
    assert meta["version"] == 'W/"1"'
    assert meta["created"] == meta["lastModified"]
    assert response.headers["ETag"] == meta["version"]
    assert response.headers["Location"] == meta["location"]


async def test_get_user_returns_what_was_created(client: httpx.AsyncClient, workspace: Workspace) -> None:
    created = (
        await client.post("/scim/v2/Users", json=user_body("bob@example.com"), headers=workspace.auth)
    ).json()
    response = await client.get(f"/scim/v2/Users/{created['id']}", headers=workspace.auth)
    assert response.status_code == 200
    assert response.json() == created


async def test_password_is_never_stored_or_returned(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    response = await client.post(
        "/scim/v2/Users", json=user_body("pw@example.com", password="Hunter2-secret!"), headers=workspace.auth
    )
    assert response.status_code == 201
    assert "password" not in response.json()
    leaked = await app.state.pool.fetchval(
        "SELECT count(*) FROM events WHERE position(convert_to('Hunter2-secret!', 'UTF8') in state) > 0"
        " OR metadata::text LIKE '%Hunter2%'"
    )
    assert leaked == 0


async def test_filter_by_user_name_is_case_insensitive(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    await client.post("/scim/v2/Users", json=user_body("Carol@Example.com"), headers=workspace.auth)
    await client.post("/scim/v2/Users", json=user_body("dave@example.com"), headers=workspace.auth)
    response = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "carol@example.COM"'}, headers=workspace.auth
    )
    assert response.status_code == 200
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["totalResults"] == 1
    assert [r["userName"] for r in body["Resources"]] == ["Carol@Example.com"]


async def test_filter_matching_nothing_is_an_empty_list(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    response = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "nobody@example.com"'}, headers=workspace.auth
    )
    assert response.status_code == 200
    assert response.json()["totalResults"] == 0
    assert response.json()["Resources"] == []


async def test_missing_token_is_401(client: httpx.AsyncClient, workspace: Workspace) -> None:
    assert_scim_error(await client.get("/scim/v2/Users"), 401)


async def test_unknown_token_is_401(client: httpx.AsyncClient, workspace: Workspace) -> None:
    forged = workspace.token[:-8] + "AAAAAAAA"
    response = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {forged}"})
    assert_scim_error(response, 401)


async def test_duplicate_user_name_in_other_case_is_409_uniqueness(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    first = await client.post("/scim/v2/Users", json=user_body("erin@example.com"), headers=workspace.auth)
    assert first.status_code == 201
    before = await log_count(app)
    second = await client.post("/scim/v2/Users", json=user_body("ERIN@example.com"), headers=workspace.auth)
    assert_scim_error(second, 409, "uniqueness")
    assert await log_count(app) == before


async def test_malformed_json_is_400_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    before = await log_count(app)
    response = await client.post(
        "/scim/v2/Users", content=b'{"userName": ', headers={**workspace.auth, "Content-Type": SCIM_JSON}
    )
    assert_scim_error(response, 400, "invalidSyntax")
    assert await log_count(app) == before


async def test_missing_user_name_is_400_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    before = await log_count(app)
    response = await client.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA]}, headers=workspace.auth)
    assert_scim_error(response, 400, "invalidValue")
    assert await log_count(app) == before


async def test_unknown_id_is_404(client: httpx.AsyncClient, workspace: Workspace) -> None:
    response = await client.get("/scim/v2/Users/9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", headers=workspace.auth)
    assert_scim_error(response, 404)
    assert_scim_error(await client.get("/scim/v2/Users/not-a-uuid", headers=workspace.auth), 404)


async def test_other_workspace_cannot_see_the_user(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    from tests.conftest import make_workspace

    other = await make_workspace(app.state.store, name="Other")
    created = (
        await client.post("/scim/v2/Users", json=user_body("fay@example.com"), headers=workspace.auth)
    ).json()
    assert_scim_error(await client.get(f"/scim/v2/Users/{created['id']}", headers=other.auth), 404)


@pytest.mark.parametrize("content_type", ["application/json", "application/scim+json; charset=utf-8"])
async def test_both_media_types_are_accepted(
    client: httpx.AsyncClient, workspace: Workspace, content_type: str
) -> None:
    response = await client.post(
        "/scim/v2/Users",
        content=b'{"userName": "gil@example.com"}',
        headers={**workspace.auth, "Content-Type": content_type},
    )
    assert response.status_code == 201


async def test_the_token_is_the_actor_of_its_events(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await client.post("/scim/v2/Users", json=user_body("hal@example.com"), headers=workspace.auth)
    metadata = await app.state.pool.fetchval(
        "SELECT metadata FROM events WHERE event_type = 'MemberProvisioned'"
    )
    assert metadata["actor"]["kind"] == "token"
    assert metadata["actor"]["name"] == "IdP token"
    assert metadata["source"] == "scim"
