"""Helpers for the workspace-rules, admin-API and seed-scenario tests (issue 4).

Every request goes through HTTP (the ``client`` fixture: SCIM on ``/scim/v2`` with a token, the admin API on
``/api/v1`` with an admin key) against real PostgreSQL. The log is read directly (``events``) to check which
events a request appended, and that a refused request appended none.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from projections import runner
from tests.conftest import Workspace

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"


# --- request bodies -------------------------------------------------------------------------------------
def user_body(user_name: str, *, roles: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": user_name, **extra}
    if roles is not None:
        body["roles"] = [{"value": r} for r in roles]
    return body


def okta_user_body(user_name: str, given: str, family: str) -> dict[str, Any]:
    """What Okta sends on "Create Users": a password and an empty ``groups``, both to be ignored."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": f"00u{zlib.crc32(user_name.encode()):010d}",
        "groups": [],
        "password": "Okta-generated-Passw0rd!",
        "active": True,
    }


def group_body(name: str, *member_ids: str, external_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": m} for m in member_ids],
    }
    if external_id is not None:
        body["externalId"] = external_id
    return body


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


def admin_auth(ws: Workspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.admin_key}"}


def token_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- SCIM shortcuts -------------------------------------------------------------------------------------
async def provision(
    client: httpx.AsyncClient, ws: Workspace, user_name: str, *, roles: list[str] | None = None, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/scim/v2/Users", json=user_body(user_name, roles=roles, **extra), headers=ws.auth
    )


async def provisioned(
    client: httpx.AsyncClient, ws: Workspace, user_name: str, *, roles: list[str] | None = None, **extra: Any
) -> str:
    """Provision through SCIM, insist on 201 and return the member id."""
    response = await provision(client, ws, user_name, roles=roles, **extra)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def set_active(
    client: httpx.AsyncClient, ws: Workspace, member_id: str, active: bool
) -> httpx.Response:
    body = patch_body(replace("active", active))
    return await client.patch(f"/scim/v2/Users/{member_id}", json=body, headers=ws.auth)


async def set_roles(
    client: httpx.AsyncClient, ws: Workspace, member_id: str, roles: list[str]
) -> httpx.Response:
    body = patch_body(replace("roles", [{"value": r} for r in roles]))
    return await client.patch(f"/scim/v2/Users/{member_id}", json=body, headers=ws.auth)


async def push_group(client: httpx.AsyncClient, ws: Workspace, name: str, *member_ids: str) -> httpx.Response:
    return await client.post("/scim/v2/Groups", json=group_body(name, *member_ids), headers=ws.auth)


# --- admin API shortcuts --------------------------------------------------------------------------------
async def admin_get(client: httpx.AsyncClient, ws: Workspace, path: str) -> Any:
    response = await client.get(f"/api/v1{path}", headers=admin_auth(ws))
    assert response.status_code == 200, response.text
    return response.json()


async def member(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> dict[str, Any]:
    return dict(await admin_get(client, ws, f"/members/{member_id}"))


async def seats(client: httpx.AsyncClient, ws: Workspace) -> dict[str, int]:
    return dict((await admin_get(client, ws, "/workspace"))["seats"])


async def teams(client: httpx.AsyncClient, ws: Workspace) -> list[dict[str, Any]]:
    return list((await admin_get(client, ws, "/teams"))["teams"])


async def team(client: httpx.AsyncClient, ws: Workspace, team_id: str) -> dict[str, Any]:
    found = [t for t in await teams(client, ws) if t["id"] == team_id]
    assert len(found) == 1, f"team {team_id} not listed exactly once: {found}"
    return found[0]


async def create_app_team(client: httpx.AsyncClient, ws: Workspace, name: str) -> str:
    response = await client.post("/api/v1/teams", json={"name": name}, headers=admin_auth(ws))
    assert response.status_code == 201, response.text
    assert response.json()["managed_by"] == "app"
    return str(response.json()["id"])


async def create_app_member(
    client: httpx.AsyncClient, ws: Workspace, user_name: str, role: str = "member"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/members", json={"user_name": user_name, "role": role}, headers=admin_auth(ws)
    )
    assert response.status_code == 201, response.text
    body = dict(response.json())
    assert body["managed_by"] == "app"
    return body


async def outbox(client: httpx.AsyncClient, ws: Workspace, pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """The workspace's outbox once the lagging projection has caught up with the log."""
    await runner.catch_up(pool)
    return list((await admin_get(client, ws, "/outbox"))["outbox"])


def kinds_for(rows: list[dict[str, Any]], member_id: str) -> list[str]:
    return sorted(r["kind"] for r in rows if r["member_id"] == member_id)


# --- the log --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    position: int
    workspace_id: str
    stream_id: str
    event_type: str
    data: dict[str, Any]
    metadata: dict[str, Any]


async def event_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


async def head(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))


async def events_since(pool: asyncpg.Pool, position: int) -> list[Event]:
    rows = await pool.fetch(
        """SELECT position, workspace_id, stream_id, event_type, data, metadata FROM events
            WHERE position > $1 ORDER BY position""",
        position,
    )
    return [
        Event(
            r["position"],
            str(r["workspace_id"]),
            str(r["stream_id"]),
            r["event_type"],
            r["data"] or {},
            r["metadata"],
        )
        for r in rows
    ]


async def all_events(pool: asyncpg.Pool, workspace: Workspace | None = None) -> list[Event]:
    found = await events_since(pool, 0)
    return [e for e in found if workspace is None or e.workspace_id == str(workspace.id)]


def types_of(events: list[Event], stream_id: str | None = None) -> list[str]:
    return [e.event_type for e in events if stream_id is None or e.stream_id == stream_id]


@contextlib.asynccontextmanager
async def appends_nothing(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """The block's requests leave the log exactly as it was."""
    before = await event_count(pool)
    yield
    after = await event_count(pool)
    assert after == before, f"a refused command appended {after - before} event(s)"


# --- errors ---------------------------------------------------------------------------------------------
def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body = dict(response.json())
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert body["detail"]
    return body


def assert_admin_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = dict(response.json()["error"])
    assert error["code"] == code
    assert error["message"]
    return error
