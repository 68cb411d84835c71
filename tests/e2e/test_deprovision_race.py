"""Issue 8, defect 6: "a deprovisioned member belongs to no team" holds under concurrency. A DELETE of a
user racing a group PATCH that adds the same user must never end with the user deprovisioned and still a
member (the add and the delete decide on the read model and touch no common stream; the read model's
guard serialises them and the loser retries)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import Workspace

RACES = 30
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def test_a_deleted_user_never_stays_in_a_group(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    auth = workspace.auth
    group = await client.post("/scim/v2/Groups", json={"displayName": "Racers"}, headers=auth)
    group_id = group.json()["id"]
    for n in range(RACES):
        created = await client.post(
            "/scim/v2/Users", json={"userName": f"racer{n}@example.com"}, headers=auth
        )
        user_id = created.json()["id"]
        add = {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
        }
        deleted, added = await asyncio.gather(
            client.delete(f"/scim/v2/Users/{user_id}", headers=auth),
            client.patch(f"/scim/v2/Groups/{group_id}", json=add, headers=auth),
        )
        assert deleted.status_code == 204, deleted.text
        assert added.status_code in (200, 204), added.text
        assert (await client.get(f"/scim/v2/Users/{user_id}", headers=auth)).status_code == 404
    members = await app.state.pool.fetch(
        """SELECT m.member_id FROM scim_group_members m JOIN scim_users u ON u.id = m.member_id
            WHERE u.status = 'deprovisioned'"""
    )
    assert members == []
    group_now = await client.get(f"/scim/v2/Groups/{group_id}", headers=auth)
    assert group_now.json().get("members", []) == []
