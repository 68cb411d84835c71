"""Admin API lists page with an opaque cursor (issue 10; README "Admin API", "Lists").

``members``, ``teams``, ``tokens``, ``outbox`` and ``drift`` answer at most ``limit`` items (default 100,
1..1000) and ``next_cursor`` (null on the last page); the cursor continues after the last item shown, so
pages never repeat or skip one while others are added; it is bound to the list and its filters. A bad
``limit`` or ``cursor``, an unknown filter value and an unknown parameter are 400 ``invalid_command``.
``GET /api/v1/teams/{id}`` answers one team. Every answer is checked against the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from projections import runner
from tests.conftest import Workspace, make_workspace
from tests.e2e.rules_helpers import (
    admin_auth,
    assert_admin_error,
    create_app_team,
    patch_body,
    replace,
    user_body,
)
from tests.e2e.test_openapi import documented

LISTS = ("members", "teams", "tokens", "outbox", "drift")


async def get(
    client: httpx.AsyncClient, ws: Workspace, template: str, path: str = "", **params: Any
) -> httpx.Response:
    """GET ``template`` (``path`` fills its ``{id}``) and check the answer against the OpenAPI document."""
    response = await client.get(template.replace("{id}", path), params=params, headers=admin_auth(ws))
    documented(response, "get", template)
    return response


async def every_page(client: httpx.AsyncClient, ws: Workspace, listing: str, **params: Any) -> list[Any]:
    """Every item of ``listing``, page after page."""
    items: list[Any] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await get(client, ws, f"/api/v1/{listing}", **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body[listing]) <= int(params.get("limit", 100))
        items += body[listing]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("more than 100 pages")


async def seed(client: httpx.AsyncClient, ws: Workspace, app: Any, n: int) -> None:
    """``n`` of everything each list shows: members, teams, tokens, outbox rows and drift."""
    for i in range(n):
        created = await client.post("/scim/v2/Users", json=user_body(f"u{i}@example.com"), headers=ws.auth)
        assert created.status_code == 201, created.text
        member_id = created.json()["id"]
        await create_app_team(client, ws, f"Team {i}")
        token = await client.post("/api/v1/tokens", json={"name": f"t{i}"}, headers=admin_auth(ws))
        assert token.status_code == 201
        changed = await client.patch(
            f"/api/v1/members/{member_id}", json={"active": False}, headers=admin_auth(ws)
        )
        assert changed.status_code == 200, changed.text
    await runner.catch_up(app.state.pool)


@pytest.mark.parametrize("listing", LISTS)
async def test_pages_of_one_hold_every_item_once_in_order(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, listing: str
) -> None:
    await seed(client, workspace, app, 3)
    whole = (await get(client, workspace, f"/api/v1/{listing}", limit=1000)).json()
    assert whole["next_cursor"] is None
    assert len(whole[listing]) >= 3
    assert await every_page(client, workspace, listing, limit=1) == whole[listing]
    assert await every_page(client, workspace, listing, limit=2) == whole[listing]


async def test_the_default_page_is_100(client: httpx.AsyncClient, app: Any) -> None:
    workspace = await make_workspace(app.state.store, domains=("example.com",), seats=101)
    for i in range(101):
        body = user_body(f"m{i}@example.com")
        assert (await client.post("/scim/v2/Users", json=body, headers=workspace.auth)).status_code == 201
    first = (await get(client, workspace, "/api/v1/members")).json()
    assert len(first["members"]) == 100 and first["next_cursor"]
    rest = (await get(client, workspace, "/api/v1/members", cursor=first["next_cursor"])).json()
    assert [m["user_name"] for m in rest["members"]] == ["m100@example.com"]
    assert rest["next_cursor"] is None


async def test_items_added_while_paging_are_neither_repeated_nor_skipped(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    for name in ("a", "b", "c"):
        await client.post("/scim/v2/Users", json=user_body(f"{name}@example.com"), headers=workspace.auth)
    first = (await get(client, workspace, "/api/v1/members", limit=2)).json()
    await client.post("/scim/v2/Users", json=user_body("d@example.com"), headers=workspace.auth)
    rest = await every_page(client, workspace, "members", limit=2, cursor=first["next_cursor"])
    names = [m["user_name"] for m in first["members"] + rest]
    assert names == ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]


async def test_filters_page_too(client: httpx.AsyncClient, workspace: Workspace) -> None:
    for i in range(4):
        created = await client.post(
            "/scim/v2/Users", json=user_body(f"f{i}@example.com"), headers=workspace.auth
        )
        if i % 2:
            off = patch_body(replace("active", False))
            await client.patch(f"/scim/v2/Users/{created.json()['id']}", json=off, headers=workspace.auth)
    suspended = await every_page(client, workspace, "members", limit=1, status="suspended")
    assert [m["user_name"] for m in suspended] == ["f1@example.com", "f3@example.com"]
    assert await every_page(client, workspace, "members", limit=1, status="") == await every_page(
        client, workspace, "members"
    )  # an empty value is no filter


async def test_a_cursor_is_bound_to_its_list_and_filters(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    for i in range(3):
        await client.post("/scim/v2/Users", json=user_body(f"g{i}@example.com"), headers=workspace.auth)
        await create_app_team(client, workspace, f"G{i}")
    cursor = (await get(client, workspace, "/api/v1/members", limit=1, status="active")).json()["next_cursor"]
    assert cursor
    for template, params in [
        ("/api/v1/members", {"status": "invited"}),
        ("/api/v1/members", {}),
        ("/api/v1/teams", {}),
    ]:
        response = await get(client, workspace, template, cursor=cursor, limit=1, **params)
        assert_admin_error(response, 400, "invalid_command")


async def test_another_workspaces_cursor_is_refused(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    for i in range(2):
        await client.post("/scim/v2/Users", json=user_body(f"h{i}@example.com"), headers=workspace.auth)
    cursor = (await get(client, workspace, "/api/v1/members", limit=1)).json()["next_cursor"]
    other = await make_workspace(app.state.store, name="Other")
    response = await get(client, other, "/api/v1/members", cursor=cursor)
    assert_admin_error(response, 400, "invalid_command")


@pytest.mark.parametrize("listing", LISTS)
@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": "-1"},
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJlIjo5OTk5OTk5OTk5LCJwIjp7fX0.AAAAAAAAAAAAAAAAAAAAAA"},  # forged
        {"bogus": "1"},
    ],
    ids=[
        "limit-0",
        "limit-1001",
        "limit-word",
        "limit-fraction",
        "limit-negative",
        "cursor",
        "forged",
        "param",
    ],
)
async def test_a_bad_page_request_is_400(
    client: httpx.AsyncClient, workspace: Workspace, listing: str, params: dict[str, str]
) -> None:
    response = await get(client, workspace, f"/api/v1/{listing}", **params)
    assert_admin_error(response, 400, "invalid_command")


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"status": "Active"},
        {"role": "owner"},
        {"managed_by": "scim"},
        {"role": "\x00"},
    ],
)
async def test_an_unknown_filter_value_is_400(
    client: httpx.AsyncClient, workspace: Workspace, params: dict[str, str]
) -> None:
    response = await get(client, workspace, "/api/v1/members", **params)
    error = assert_admin_error(response, 400, "invalid_command")
    assert next(iter(params)) in error["message"]


async def test_a_repeated_parameter_is_400(client: httpx.AsyncClient, workspace: Workspace) -> None:
    response = await client.get("/api/v1/members?status=active&status=invited", headers=admin_auth(workspace))
    assert_admin_error(documented_response(response, "/api/v1/members"), 400, "invalid_command")


def documented_response(response: httpx.Response, template: str) -> httpx.Response:
    documented(response, "get", template)
    return response


async def test_get_one_team(client: httpx.AsyncClient, workspace: Workspace) -> None:
    member = await client.post("/scim/v2/Users", json=user_body("t@example.com"), headers=workspace.auth)
    pushed = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "Pushed", "externalId": "ext-1", "members": [{"value": member.json()["id"]}]},
        headers=workspace.auth,
    )
    team_id = pushed.json()["id"]
    response = await get(client, workspace, "/api/v1/teams/{id}", team_id)
    assert response.status_code == 200
    team = response.json()
    assert (team["id"], team["name"], team["external_id"], team["managed_by"], team["members"]) == (
        team_id,
        "Pushed",
        "ext-1",
        "idp",
        1,
    )
    listed = (await get(client, workspace, "/api/v1/teams")).json()["teams"]
    assert listed == [team]
    await client.delete(f"/scim/v2/Groups/{team_id}", headers=workspace.auth)
    archived = (await get(client, workspace, "/api/v1/teams/{id}", team_id)).json()
    assert archived["archived"] is True


async def test_get_an_unknown_team_is_404(client: httpx.AsyncClient, workspace: Workspace, app: Any) -> None:
    for missing in ("00000000-0000-0000-0000-000000000000", "nope"):
        response = await get(client, workspace, "/api/v1/teams/{id}", missing)
        assert_admin_error(response, 404, "not_found")
    team_id = await create_app_team(client, workspace, "Mine")
    other = await make_workspace(app.state.store, name="Other")
    assert_admin_error(await get(client, other, "/api/v1/teams/{id}", team_id), 404, "not_found")
