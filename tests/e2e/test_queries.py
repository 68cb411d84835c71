"""Queries: pagination, cursors (RFC 9865), sorting, .search, attributes (RFC 7644 §3.4, §3.9)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import Workspace

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
async def people(client: httpx.AsyncClient, workspace: Workspace) -> list[str]:
    names = [f"p{n:02d}@example.com" for n in range(23)]
    responses = await asyncio.gather(
        *(
            client.post("/scim/v2/Users", json={"userName": n, "title": f"t{n[1:3]}"}, headers=workspace.auth)
            for n in names
        )
    )
    assert all(r.status_code == 201 for r in responses)
    return names


@pytest.mark.parametrize("count", [1, 5, 7, 23, 100])
async def test_index_pages_return_every_user_once(
    client: httpx.AsyncClient, workspace: Workspace, people: list[str], count: int
) -> None:
    seen: list[str] = []
    start = 1
    while True:
        page = (
            await client.get(
                "/scim/v2/Users", params={"startIndex": start, "count": count}, headers=workspace.auth
            )
        ).json()
        assert page["totalResults"] == 23
        seen += [r["userName"] for r in page["Resources"]]
        start += count
        if start > page["totalResults"]:
            break
    assert sorted(seen) == people


@pytest.mark.parametrize("count", [1, 4, 10])
async def test_cursor_pages_return_every_user_once(
    client: httpx.AsyncClient, workspace: Workspace, people: list[str], count: int
) -> None:
    seen: list[str] = []
    cursor = ""
    for _ in range(100):
        page = (
            await client.get(
                "/scim/v2/Users", params={"cursor": cursor, "count": count}, headers=workspace.auth
            )
        ).json()
        seen += [r["userName"] for r in page["Resources"]]
        if "nextCursor" not in page:
            break
        cursor = page["nextCursor"]
    assert sorted(seen) == people
    assert len(seen) == len(set(seen))


async def test_forged_cursor_is_400_invalid_cursor(client: httpx.AsyncClient, workspace: Workspace) -> None:
    response = await client.get(
        "/scim/v2/Users", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=workspace.auth
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidCursor"


async def test_count_zero_gives_totals_only(
    client: httpx.AsyncClient, workspace: Workspace, people: list[str]
) -> None:
    page = (await client.get("/scim/v2/Users", params={"count": 0}, headers=workspace.auth)).json()
    assert page["totalResults"] == 23
    assert page.get("Resources", []) == []


async def test_sort_by_user_name_descending(
    client: httpx.AsyncClient, workspace: Workspace, people: list[str]
) -> None:
    page = (
        await client.get(
            "/scim/v2/Users",
            params={"sortBy": "userName", "sortOrder": "descending", "count": 3},
            headers=workspace.auth,
        )
    ).json()
    assert [r["userName"] for r in page["Resources"]] == sorted(people, reverse=True)[:3]


async def test_post_search_with_filter_and_attributes(
    client: httpx.AsyncClient, workspace: Workspace, people: list[str]
) -> None:
    body = {"schemas": [SEARCH], "filter": 'userName sw "p1"', "attributes": ["userName"], "count": 50}
    response = await client.post("/scim/v2/Users/.search", json=body, headers=workspace.auth)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["totalResults"] == 10
    assert all(set(r) <= {"schemas", "id", "userName"} for r in page["Resources"])


async def test_unknown_filter_attribute_is_400_invalid_filter(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    response = await client.get(
        "/scim/v2/Users", params={"filter": 'shoeSize eq "9"'}, headers=workspace.auth
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


async def test_bad_filter_syntax_is_400_invalid_filter(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    response = await client.get("/scim/v2/Users", params={"filter": "userName eq"}, headers=workspace.auth)
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


async def test_excluded_attributes_on_get(client: httpx.AsyncClient, workspace: Workspace) -> None:
    created = (
        await client.post(
            "/scim/v2/Users", json={"userName": "ex@example.com", "title": "T"}, headers=workspace.auth
        )
    ).json()
    response = await client.get(
        f"/scim/v2/Users/{created['id']}", params={"excludedAttributes": "title,meta"}, headers=workspace.auth
    )
    body = response.json()
    assert "title" not in body and "meta" not in body
    assert body["id"] == created["id"] and body["userName"] == "ex@example.com"


async def test_root_search_spans_users_and_groups(client: httpx.AsyncClient, workspace: Workspace) -> None:
    await client.post("/scim/v2/Users", json={"userName": "r@example.com"}, headers=workspace.auth)
    await client.post("/scim/v2/Groups", json={"displayName": "R team"}, headers=workspace.auth)
    response = await client.post("/scim/v2/.search", json={"schemas": [SEARCH]}, headers=workspace.auth)
    assert response.status_code == 200, response.text
    types = sorted(r["meta"]["resourceType"] for r in response.json()["Resources"])
    assert types == ["Group", "User"]


async def test_discovery_needs_no_token(client: httpx.AsyncClient) -> None:
    config = await client.get("/scim/v2/ServiceProviderConfig")
    assert config.status_code == 200
    body: dict[str, Any] = config.json()
    assert body["patch"]["supported"] is True
    assert body["bulk"]["supported"] is True and body["bulk"]["maxOperations"] > 0
    assert body["filter"]["maxResults"] == 500
    assert body["etag"]["supported"] is True
    types = (await client.get("/scim/v2/ResourceTypes")).json()
    assert {r["name"] for r in types["Resources"]} == {"User", "Group"}
    schemas = (await client.get("/scim/v2/Schemas")).json()
    assert "urn:ietf:params:scim:schemas:core:2.0:User" in {s["id"] for s in schemas["Resources"]}
    one = await client.get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
    assert one.status_code == 200 and one.json()["name"] == "Group"


async def test_root_search_filter_of_one_type_matches_only_that_type(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    await client.post("/scim/v2/Users", json={"userName": "only@example.com"}, headers=workspace.auth)
    await client.post("/scim/v2/Groups", json={"displayName": "Only team"}, headers=workspace.auth)
    body = {"schemas": [SEARCH], "filter": 'userName eq "only@example.com"'}
    response = await client.post("/scim/v2/.search", json=body, headers=workspace.auth)
    assert response.status_code == 200, response.text
    assert [r["userName"] for r in response.json()["Resources"]] == ["only@example.com"]
    bad = await client.post(
        "/scim/v2/.search", json={"schemas": [SEARCH], "filter": 'nope eq "x"'}, headers=workspace.auth
    )
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"
