"""One identity rule for userName (issue 8, defect 2; README "Identity rule"): the uniqueness claim, every
``userName eq`` filter and the admin API compare the same key, so "409 on create" and "found by eq" always
agree — an IdP that gets 409 and then looks the user up finds them, and never loops."""

from __future__ import annotations

import json

import httpx
import pytest

from scimledger.domain.names import user_name_key
from tests.conftest import Workspace

# (first created, then created again / looked up, same identity?)
PAIRS = [
    pytest.param("ada@example.com", "ADA@EXAMPLE.COM", True, id="ascii-case"),
    pytest.param("émile@example.com", "ÉMILE@example.com", True, id="accented-capitals"),
    pytest.param("kelvin@example.com", "\u212aelvin@example.com", True, id="kelvin-sign"),
    pytest.param("strasse@example.com", "STRAßE@example.com", True, id="sharp-s"),
    pytest.param("\u0130pek@example.com", "i\u0307pek@example.com", True, id="dotted-capital-i"),
    pytest.param("\u0130pek@example.com", "ipek@example.com", False, id="dotted-vs-dotless-i"),
    pytest.param("e\u0301lodie@example.com", "\u00e9lodie@example.com", True, id="nfd-vs-nfc"),
    pytest.param("\uff41da@example.com", "ada@example.com", False, id="full-width"),
    pytest.param("  sp@example.com ", "sp@example.com", True, id="surrounding-spaces"),
    pytest.param("sp2@example.com", " SP2@example.com\t", True, id="spaces-and-case"),
    pytest.param("zw\u200b@example.com", "zw@example.com", True, id="zero-width-space"),
    pytest.param("a.b@example.com", "a b@example.com", False, id="inner-space"),
]


def user(name: str) -> dict[str, object]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}


async def found_by_eq(client: httpx.AsyncClient, ws: Workspace, name: str) -> int:
    literal = json.dumps(name, ensure_ascii=False)  # a filter's compValue is a JSON string
    response = await client.get(
        "/scim/v2/Users", params={"filter": f"userName eq {literal}"}, headers=ws.auth
    )
    assert response.status_code == 200, response.text
    total: int = response.json()["totalResults"]
    return total


@pytest.mark.parametrize(("first", "second", "same"), PAIRS)
async def test_409_on_create_and_found_by_eq_agree(
    client: httpx.AsyncClient, workspace: Workspace, first: str, second: str, same: bool
) -> None:
    created = await client.post("/scim/v2/Users", json=user(first), headers=workspace.auth)
    assert created.status_code == 201, created.text
    assert await found_by_eq(client, workspace, first) == 1
    again = await client.post("/scim/v2/Users", json=user(second), headers=workspace.auth)
    assert again.status_code == (409 if same else 201), again.text
    if same:
        assert again.json()["scimType"] == "uniqueness"
    assert await found_by_eq(client, workspace, second) == 1
    assert same == (user_name_key(first) == user_name_key(second))


@pytest.mark.parametrize(("first", "second", "same"), PAIRS)
async def test_the_admin_api_follows_the_same_rule(
    client: httpx.AsyncClient, workspace: Workspace, first: str, second: str, same: bool
) -> None:
    admin = {"Authorization": f"Bearer {workspace.admin_key}"}
    # Where the invitation goes, for a userName that is not itself a mail address (README "Where mail goes").
    mail = {"email": "invitee@example.com"}
    created = await client.post("/api/v1/members", json={"user_name": first, **mail}, headers=admin)
    assert created.status_code == 201, created.text
    again = await client.post("/api/v1/members", json={"user_name": second, **mail}, headers=admin)
    assert again.status_code == (409 if same else 201), again.text
    assert await found_by_eq(client, workspace, second) == 1


async def test_a_renamed_user_is_found_by_the_new_key_only(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    created = await client.post("/scim/v2/Users", json=user("old@example.com"), headers=workspace.auth)
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "NEUE@example.com"}],
    }
    renamed = await client.patch(f"/scim/v2/Users/{created.json()['id']}", json=patch, headers=workspace.auth)
    assert renamed.status_code == 200, renamed.text
    assert await found_by_eq(client, workspace, "neue@EXAMPLE.com") == 1
    assert await found_by_eq(client, workspace, "old@example.com") == 0


def test_the_key_is_nfc_casefolded_and_trimmed() -> None:
    assert user_name_key("  STRAßE@Example.COM\u200b ") == "strasse@example.com"
    assert user_name_key("E\u0301") == "\u00e9"
