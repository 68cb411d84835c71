"""A Group's ``members`` rendered by PostgreSQL (issue 9, "Big teams") are the bytes the per-member rendering
writes: same members, order and fields, strings escaped exactly as orjson escapes them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import orjson

from scimledger import views
from scimledger.api import scim_groups
from tests.conftest import Workspace

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
AWKWARD = 'Zoë "Q" \\ back\nslash\t\x01\x1f \u2028 😀 </script> / é'


async def test_default_group_body_is_byte_identical_to_the_per_member_rendering(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    ids = []
    for name, display in (("a@example.com", AWKWARD), ("b@example.com", None), ("c@example.com", "Plain")):
        body: dict[str, Any] = {"userName": name}
        if display is not None:
            body["displayName"] = display
        response = await client.post("/scim/v2/Users", json=body, headers=workspace.auth)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    members = [{"value": ids[2], "display": "set by the IdP \x7f ü"}, {"value": ids[0]}, {"value": ids[1]}]
    created = await client.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP], "displayName": "Awkward", "externalId": "x", "members": members},
        headers=workspace.auth,
    )
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]

    response = await client.get(f"/scim/v2/Groups/{group_id}", headers=workspace.auth)

    pool = app.state.pool
    row = await views.get_group(pool, workspace.id, UUID(group_id))
    assert row is not None
    loaded = (await views.members_for_groups(pool, [row.id]))[row.id]
    expected = orjson.dumps(scim_groups.render(row, loaded, "https://scim.example.test/scim/v2"))
    assert len(loaded) == 3 and b'"display":"Zo\xc3\xab \\"Q\\" \\\\ back\\nslash\\t\\u0001' in expected
    assert response.content == expected
    assert created.content == expected
