"""Helpers for the history, point-in-time and explain tests (issue 7): drive the app over HTTP (SCIM with the
workspace's token, the admin API with its admin key, each request with an ``X-Request-Id``), and read times
from the log itself (``recorded_at`` of the events a request appended) instead of sleeping."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import asyncpg
import httpx

from tests.conftest import Workspace

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
API = "/api/v1"


class Driver:
    """One workspace, driven through the app."""

    def __init__(self, client: httpx.AsyncClient, pool: asyncpg.Pool, ws: Workspace) -> None:
        self.client, self.pool, self.ws = client, pool, ws

    @property
    def admin_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ws.admin_key}"}

    async def scim(self, method: str, path: str, body: Any = None, *, request_id: str = "") -> httpx.Response:
        headers = {**self.ws.auth, **({"X-Request-Id": request_id} if request_id else {})}
        response = await self.client.request(method, f"/scim/v2{path}", json=body, headers=headers)
        assert response.status_code < 300, response.text
        return response

    async def user(self, user_name: str, *, roles: tuple[str, ...] = (), request_id: str = "") -> str:
        body = {"schemas": [USER], "userName": user_name, "roles": [{"value": r} for r in roles]}
        return str((await self.scim("POST", "/Users", body, request_id=request_id)).json()["id"])

    async def patch_user(self, member_id: str, *operations: dict[str, Any], request_id: str = "") -> None:
        body = {"schemas": [PATCH_OP], "Operations": list(operations)}
        await self.scim("PATCH", f"/Users/{member_id}", body, request_id=request_id)

    async def group(self, name: str, *member_ids: str, request_id: str = "") -> str:
        body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in member_ids]}
        return str((await self.scim("POST", "/Groups", body, request_id=request_id)).json()["id"])

    async def group_members(self, team_id: str, op: str, *member_ids: str, request_id: str = "") -> None:
        operation = {"op": op, "path": "members", "value": [{"value": m} for m in member_ids]}
        if op == "remove":
            operation = {"op": "remove", "path": f'members[value eq "{member_ids[0]}"]'}
        body = {"schemas": [PATCH_OP], "Operations": [operation]}
        await self.scim("PATCH", f"/Groups/{team_id}", body, request_id=request_id)

    async def admin(
        self, method: str, path: str, body: Any = None, *, request_id: str = "", **params: Any
    ) -> httpx.Response:
        headers = {**self.admin_auth, **({"X-Request-Id": request_id} if request_id else {})}
        return await self.client.request(method, f"{API}{path}", json=body, headers=headers, params=params)

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.admin("GET", path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    async def now(self) -> str:
        """The time of the workspace's latest event, from the log: "at" it, everything so far has happened."""
        at = await self.pool.fetchval(
            "SELECT max(recorded_at) FROM events WHERE workspace_id = $1", self.ws.id
        )
        return str(at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    async def event(self, request_id: str, event_type: str) -> dict[str, Any]:
        """The position, stream and recorded_at of the event of ``event_type`` a request caused."""
        row = await self.pool.fetchrow(
            """SELECT position, stream_id, recorded_at FROM events
                WHERE workspace_id = $1 AND metadata->>'request_id' = $2 AND event_type = $3""",
            self.ws.id,
            request_id,
            event_type,
        )
        assert row is not None, (request_id, event_type)
        return dict(row)
