"""Limits (issue 8, defect 3; README "Limits"): every route refuses an oversized body before reading it
(413), a chunked body is cut off at the limit, and the strings the log keeps for ever are bounded (400,
nothing appended)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from scimledger.api.body_limit import MAX_BODY_BYTES
from scimledger.domain.limits import MAX_DESCRIPTION, MAX_NAME
from tests.conftest import Workspace

ROUTES = [
    ("POST", "/scim/v2/Users"),
    ("POST", "/scim/v2/Groups"),
    ("POST", "/scim/v2/Bulk"),
    ("POST", "/scim/v2/Users/.search"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/members"),
    ("PATCH", "/api/v1/workspace/settings"),
]


async def log_size(app: Any) -> int:
    count: int = await app.state.pool.fetchval("SELECT count(*) FROM events")
    return count


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_declared_oversized_body_is_413_before_it_is_read(
    app: Any, client: httpx.AsyncClient, workspace: Workspace, method: str, path: str
) -> None:
    received: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):
            received.append(1)
            yield b"x" * 65536

    auth = workspace.auth if path.startswith("/scim") else {"Authorization": f"Bearer {workspace.admin_key}"}
    headers = {**auth, "Content-Type": "application/json", "Content-Length": str(MAX_BODY_BYTES + 1)}
    before = await log_size(app)
    response = await client.request(method, path, content=body(), headers=headers)
    assert response.status_code == 413
    if path.startswith("/scim"):
        assert response.json()["status"] == "413"
    else:
        assert response.json()["error"]["message"].startswith("request bodies are limited")
    assert len(received) <= 1  # the app never asked for the body
    assert await log_size(app) == before


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_chunked_body_is_cut_off_at_the_limit(
    app: Any, client: httpx.AsyncClient, workspace: Workspace, method: str, path: str
) -> None:
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(100):  # 6.4 MB if read to the end
            sent.append(1)
            yield b" " * 65536

    auth = workspace.auth if path.startswith("/scim") else {"Authorization": f"Bearer {workspace.admin_key}"}
    before = await log_size(app)
    response = await client.request(
        method, path, content=body(), headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert len(sent) <= MAX_BODY_BYTES // 65536 + 2
    assert await log_size(app) == before


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/api/v1/tokens", {"name": "n" * (MAX_NAME + 1)}),
        ("/api/v1/tokens", {"name": "ok", "description": "d" * (MAX_DESCRIPTION + 1)}),
        ("/api/v1/teams", {"name": "t" * (MAX_NAME + 1)}),
        ("/api/v1/members", {"user_name": "u" * MAX_NAME + "@example.com"}),
    ],
)
async def test_admin_strings_are_bounded(
    app: Any, client: httpx.AsyncClient, workspace: Workspace, path: str, payload: dict[str, str]
) -> None:
    before = await log_size(app)
    response = await client.post(
        path, json=payload, headers={"Authorization": f"Bearer {workspace.admin_key}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_command"
    assert await log_size(app) == before


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/scim/v2/Users", {"userName": "u" * MAX_NAME + "@example.com"}),
        ("/scim/v2/Groups", {"displayName": "g" * (MAX_NAME + 1)}),
    ],
)
async def test_scim_names_are_bounded(
    app: Any, client: httpx.AsyncClient, workspace: Workspace, path: str, payload: dict[str, str]
) -> None:
    before = await log_size(app)
    response = await client.post(path, json=payload, headers=workspace.auth)
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == "invalidValue"
    assert await log_size(app) == before


async def test_a_name_at_the_limit_is_accepted(client: httpx.AsyncClient, workspace: Workspace) -> None:
    admin = {"Authorization": f"Bearer {workspace.admin_key}"}
    response = await client.post("/api/v1/tokens", json={"name": "n" * MAX_NAME}, headers=admin)
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("path", "payload"),
    [("/api/v1/teams", {"name": "a\u0000b"}), ("/api/v1/seats", {"count": 2**40})],
    ids=["nul", "int32"],
)
async def test_an_error_body_never_quotes_the_database(
    client: httpx.AsyncClient, workspace: Workspace, path: str, payload: dict[str, Any]
) -> None:
    response = await client.post(
        path, json=payload, headers={"Authorization": f"Bearer {workspace.admin_key}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_command", "invalid_value")
    for database_text in ("UTF8", "0x00", "int32", "query argument", "asyncpg", "Traceback"):
        assert database_text not in response.text
