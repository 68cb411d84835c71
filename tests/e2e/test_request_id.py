"""Request identity (issue 7): every request gets an id — the caller's well-formed ``X-Request-Id`` or a
generated one — returned in the response, written to the access log line and stored in the metadata of every
event the request causes."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest

from scimledger.api.request_context import MAX_USER_AGENT
from tests.conftest import Workspace

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com"}
GENERATED = re.compile(r"[0-9a-f]{32}")


async def request_ids_in_log(app: Any) -> list[str | None]:
    rows = await app.state.pool.fetch(
        "SELECT metadata->>'request_id' FROM events WHERE metadata->>'source' <> 'system' ORDER BY position"
    )
    return [r[0] for r in rows]


async def test_a_request_without_an_id_gets_a_generated_one_stored_in_every_event(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    response = await client.post("/scim/v2/Users", json=USER, headers=workspace.auth)
    assert response.status_code == 201
    rid = response.headers["x-request-id"]
    assert GENERATED.fullmatch(rid)
    stored = await request_ids_in_log(app)
    assert len(stored) >= 2  # a provisioning appends several events
    assert set(stored) == {rid}


async def test_the_callers_well_formed_id_is_kept(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    headers = {**workspace.auth, "X-Request-Id": "entra-7f3a:sync/42"}
    response = await client.post("/scim/v2/Users", json=USER, headers=headers)
    assert response.headers["x-request-id"] == "entra-7f3a:sync/42"
    assert set(await request_ids_in_log(app)) == {"entra-7f3a:sync/42"}


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "-leading-dash", "semi;colon", "é"])
async def test_a_malformed_id_is_replaced(
    app: Any, client: httpx.AsyncClient, workspace: Workspace, bad: str
) -> None:
    headers = {**workspace.auth, "X-Request-Id": bad.encode()}
    response = await client.post("/scim/v2/Users", json=USER, headers=headers)
    assert response.status_code == 201
    rid = response.headers["x-request-id"]
    assert GENERATED.fullmatch(rid)
    assert set(await request_ids_in_log(app)) == {rid}


async def test_admin_api_events_carry_the_request_id(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    headers = {"Authorization": f"Bearer {workspace.admin_key}", "X-Request-Id": "admin-req-1"}
    response = await client.post("/api/v1/seats", json={"count": 2}, headers=headers)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "admin-req-1"
    assert await request_ids_in_log(app) == ["admin-req-1"]


async def test_errors_and_unauthenticated_requests_get_an_id_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/scim/v2/Users", headers={"X-Request-Id": "probe-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "probe-1"


async def test_each_request_gets_its_own_generated_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/scim/v2/ServiceProviderConfig")
    second = await client.get("/scim/v2/ServiceProviderConfig")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_the_access_log_line_names_the_request_id_and_workspace(
    client: httpx.AsyncClient, workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="scimledger.access"):
        await client.get("/scim/v2/Users", headers={**workspace.auth, "X-Request-Id": "logged-1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "scimledger.access"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /scim/v2/Users 200 ")
    assert "request_id=logged-1" in lines[0]
    assert f"workspace={workspace.id}" in lines[0]
    assert workspace.token not in lines[0]


async def test_a_huge_user_agent_is_cut_before_it_reaches_the_log(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    headers = {**workspace.auth, "User-Agent": "A" * 100_000}
    assert (await client.post("/scim/v2/Users", json=USER, headers=headers)).status_code == 201
    agents = await app.state.pool.fetch(
        "SELECT DISTINCT metadata->>'user_agent' FROM events WHERE metadata->>'source' = 'scim'"
    )
    assert [len(r[0]) for r in agents] == [MAX_USER_AGENT]
