"""The RFC 7643 §8 example resources, created and read back (RFC 7644 §3.3, §3.4.1).

Each example lives in ``tests/fixtures/rfc/resource_7643_8.<n>.json`` (``{"source", "note",
"resource_type", "example"}``): §8.1 the minimal User, §8.2 the full User, §8.3 the User with the
enterprise extension, §8.4 the Group. One test per example, each in a fresh database: POST the example
as the RFC prints it, GET the created resource, and check that

- every attribute the client sent comes back equal, except the readOnly ones, which the service provider
  assigns or ignores (``id``, ``meta``, ``groups``; the enterprise ``manager.displayName``, RFC 7643
  §4.3) and ``password``, which is never returned (RFC 7643 §4.1.1). "Equal" per SCIM: attribute names
  match case-insensitively (RFC 7643 §2.1), values match with their JSON types, multi-valued lists keep
  their length and order, and a complex value must have every sub-attribute sent (the server may add
  some, e.g. ``members.type``). A ``$ref`` names a resource: it matches when it names the same
  resource type and id (the RFC's service provider is ``https://example.com/v2``, ours is not);
- the readOnly values the client sent were not taken: the ``id`` and ``meta`` are the server's, and the
  RFC's ``groups`` are not the User's;
- ``meta`` has ``resourceType``, ``created``, ``lastModified``, ``location`` and ``version`` (RFC 7643
  §3.1), consistent with the ``Location`` and ``ETag`` headers, and ``password`` is absent.

Users come first: for the Group, the Users its members stand for are created, and the RFC's member ids
(also inside ``$ref``) are replaced with the ids the server assigned. Babs Jensen is the §8.2 User; the
RFC shows no resource for Mandy Pepperidge, so a User with her displayName stands in for her. The
examples are never edited to suit the server: the workspace is (its userName domains are verified).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Workspace, make_workspace

RFC = Path(__file__).resolve().parents[1] / "fixtures" / "rfc"
EXAMPLES = ["8.1", "8.2", "8.3", "8.4"]
BASE = "https://scim.example.test/scim/v2"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ENDPOINTS = {"User": "Users", "Group": "Groups"}

# Attributes (lower-cased paths, list indexes dropped) the service provider assigns or never returns.
NOT_ECHOED = {"id", "meta", "groups", "password", f"{ENTERPRISE.lower()}.manager.displayname"}


def load(section: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RFC / f"resource_7643_{section}.json").read_text(encoding="utf-8"))
    return data


# The Users that the §8.4 Group's members stand for, by the member id the RFC gives them.
GROUP_MEMBERS: dict[str, dict[str, Any]] = {
    "2819c223-7f76-453a-919d-413861904646": load("8.2")["example"],
    "902c246b-6245-4190-8e05-00816be7344a": {
        "schemas": [USER_URN],
        "userName": "mpepperidge@example.com",
        "displayName": "Mandy Pepperidge",
    },
}


def user_name_domains() -> tuple[str, ...]:
    """The domains of every userName the tests provision: the test workspace verifies them."""
    users = [load(s)["example"] for s in EXAMPLES if load(s)["resource_type"] == "User"]
    names = [u["userName"] for u in [*users, *GROUP_MEMBERS.values()]]
    return tuple(sorted({name.rpartition("@")[2] for name in names}))


def replace_ids(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with every occurrence of an RFC id (as a value, or inside a ``$ref``) replaced."""
    if isinstance(value, str):
        for old, new in ids.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [replace_ids(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: replace_ids(item, ids) for key, item in value.items()}
    return value


def named_resource(reference: str) -> list[str]:
    """The resource type and id a SCIM reference names: its last two path segments."""
    return urlsplit(reference).path.rstrip("/").split("/")[-2:]


def differences(sent: Any, got: Any, path: str = "") -> list[str]:
    """How ``got`` fails to echo ``sent`` (module docstring: "equal" per SCIM); empty when it does."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [f"{path}: sent an object, got {got!r}"]
        out = []
        for key, value in sent.items():
            where = f"{path}.{key}" if path else key
            if where.lower() in NOT_ECHOED:
                continue
            keys = [k for k in got if k.lower() == key.lower()]
            if not keys:
                out.append(f"{where}: sent {value!r}, missing from the response")
            elif key.lower() == "$ref" and isinstance(value, str) and isinstance(got[keys[0]], str):
                if named_resource(value) != named_resource(got[keys[0]]):
                    out.append(f"{where}: sent {value!r}, got {got[keys[0]]!r}")
            else:
                out += differences(value, got[keys[0]], where)
        return out
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) != len(sent):
            return [f"{path}: sent {sent!r}, got {got!r}"]
        pairs = enumerate(zip(sent, got, strict=True))
        return [d for i, (s, g) in pairs for d in differences(s, g, f"{path}[{i}]")]
    if type(sent) is not type(got) or sent != got:
        return [f"{path}: sent {sent!r}, got {got!r}"]
    return []


async def create(client: httpx.AsyncClient, ws: Workspace, endpoint: str, body: Any) -> httpx.Response:
    response = await client.post(f"/scim/v2/{endpoint}", json=body, headers=ws.auth)
    assert response.status_code == 201, response.text
    return response


def timestamp(text: Any) -> datetime:
    assert isinstance(text, str), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("section", EXAMPLES, ids=[f"7643-{s}" for s in EXAMPLES])
async def test_rfc_7643_example_round_trips(client: httpx.AsyncClient, app: Any, section: str) -> None:
    fixture = load(section)
    example, resource_type = fixture["example"], fixture["resource_type"]
    endpoint = ENDPOINTS[resource_type]
    ws = await make_workspace(app.state.store, domains=user_name_domains(), seats=10)
    body = copy.deepcopy(example)
    if resource_type == "Group":
        ids = {}
        for rfc_id, user in GROUP_MEMBERS.items():
            ids[rfc_id] = (await create(client, ws, "Users", user)).json()["id"]
        body = replace_ids(body, ids)

    posted = await create(client, ws, endpoint, body)
    created = posted.json()
    response = await client.get(f"/scim/v2/{endpoint}/{created['id']}", headers=ws.auth)
    assert response.status_code == 200, response.text
    got = response.json()

    assert got == created, "GET differs from the POST response"
    assert differences(body, got) == []
    assert "password" not in got and "password" not in created

    assert got["id"] != example["id"], "the client's id was taken"
    if resource_type == "User":
        rfc_groups = {g["value"] for g in example.get("groups", [])}
        assert not rfc_groups & {g.get("value") for g in got.get("groups", [])}, (
            "the client's groups were taken"
        )

    meta = got["meta"]
    assert set(meta) >= {"resourceType", "created", "lastModified", "location", "version"}
    assert meta["resourceType"] == resource_type
    assert meta["location"] == f"{BASE}/{endpoint}/{got['id']}"
    assert posted.headers["Location"] == meta["location"]
    assert response.headers["ETag"] == meta["version"]
    assert meta["version"] != example["meta"]["version"], "the client's meta.version was taken"
    created_at, modified_at = timestamp(meta["created"]), timestamp(meta["lastModified"])
    assert created_at.tzinfo is not None and created_at <= modified_at
    assert created_at != timestamp(example["meta"]["created"]), "the client's meta.created was taken"
