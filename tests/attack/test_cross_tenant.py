"""Cross-tenant probes (issue 8, "Attack suite"): workspace B's credentials aimed at workspace A.

Every route of the app's route table is probed, so a route added later is covered without editing this file:
a route whose path names a resource (``{id}``) is called with each of A's ids (members, an invited member,
teams, tokens) and must answer 404 (or 403); every other route is called with query parameters and bodies
that name A's ids (``member=``, ``team=``, ``actor=``, ``as_of``, SCIM filters, group members, Bulk
operations) and must answer without a 5xx. Whatever the answer, its body holds none of A's ids, names or
userNames (other than those the request itself carried), and A's rows and log are exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
from starlette.routing import Route

from projections import runner
from scimledger.app import routes
from scimledger.domain.ids import person_id
from tests.attack.conftest import admin
from tests.conftest import Workspace, make_workspace

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
A_DOMAIN = "tenant-a.test"
A_NAMES = (
    "Tenant A Corporation",
    "alice@tenant-a.test",
    "bob@tenant-a.test",
    "dave@elsewhere-a.test",
    "Alice Anderson",
    "A-Engineering",
    "A-Design",
    "A Okta token",
    "a-ext-alice",
)


@dataclass
class TenantA:
    """Workspace A and what it holds: an IdP admin (alice), an IdP member (bob), an app-managed invited
    member (dave), an IdP team with both, an app team, an extra token; drift, outbox and audit entries."""

    ws: Workspace
    alice: str
    bob: str
    dave: str
    group: str
    team: str
    token: str
    admin_key_id: str
    secrets: set[str] = field(default_factory=set)

    def ids(self) -> dict[str, str]:
        return {
            "alice": self.alice,
            "bob": self.bob,
            "dave": self.dave,
            "group": self.group,
            "team": self.team,
            "token": self.token,
        }


async def scim(client: httpx.AsyncClient, ws: Workspace, method: str, path: str, body: Any) -> Any:
    response = await client.request(method, path, json=body, headers=ws.auth)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def api(client: httpx.AsyncClient, ws: Workspace, method: str, path: str, body: Any = None) -> Any:
    response = await client.request(method, path, json=body, headers=admin(ws))
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture
async def tenant_a(unlimited: Any, client: httpx.AsyncClient) -> TenantA:
    store, pool = unlimited.state.store, unlimited.state.pool
    ws = await make_workspace(store, name="Tenant A Corporation", domains=(A_DOMAIN,), seats=20)
    alice = await scim(
        client,
        ws,
        "POST",
        "/scim/v2/Users",
        {
            "userName": "alice@tenant-a.test",
            "externalId": "a-ext-alice",
            "displayName": "Alice Anderson",
            "emails": [{"value": "alice@tenant-a.test", "type": "work", "primary": True}],
            "roles": [{"value": "admin"}],
        },
    )
    bob = await scim(client, ws, "POST", "/scim/v2/Users", {"userName": "bob@tenant-a.test"})
    group = await scim(
        client,
        ws,
        "POST",
        "/scim/v2/Groups",
        {"displayName": "A-Engineering", "members": [{"value": alice["id"]}, {"value": bob["id"]}]},
    )
    dave = await api(client, ws, "POST", "/api/v1/members", {"user_name": "dave@elsewhere-a.test"})
    team = await api(client, ws, "POST", "/api/v1/teams", {"name": "A-Design"})
    token = await api(client, ws, "POST", "/api/v1/tokens", {"name": "A Okta token"})
    await api(client, ws, "PATCH", f"/api/v1/members/{bob['id']}", {"role": "admin"})  # drift
    await runner.catch_up(pool)  # the outbox
    key_id = await pool.fetchval("SELECT id::text FROM admin_keys WHERE workspace_id = $1", ws.id)
    found = TenantA(ws, alice["id"], bob["id"], dave["id"], group["id"], team["id"], token["id"], key_id)
    streams = await pool.fetch(
        "SELECT DISTINCT stream_id::text AS id FROM events WHERE workspace_id = $1", ws.id
    )
    tokens = await pool.fetch("SELECT id::text AS id FROM tokens WHERE workspace_id = $1", ws.id)
    found.secrets = {str(ws.id), key_id, *(r["id"] for r in streams), *(r["id"] for r in tokens), *A_NAMES}
    return found


@pytest.fixture
async def tenant_b(unlimited: Any, client: httpx.AsyncClient) -> Workspace:
    """B has data of its own, so its listings are not trivially empty."""
    ws = await make_workspace(unlimited.state.store, name="Tenant B", domains=("tenant-b.test",), seats=20)
    user = await scim(client, ws, "POST", "/scim/v2/Users", {"userName": "erin@tenant-b.test"})
    await scim(
        client, ws, "POST", "/scim/v2/Groups", {"displayName": "B-Ops", "members": [{"value": user["id"]}]}
    )
    return ws


# --------------------------------------------------------------------------------------------------
# A's state: every row that belongs to it, and its log


async def snapshot(pool: Any, workspace_id: UUID) -> dict[str, list[str]]:
    """Every row of A: each table with a ``workspace_id`` column, the workspace row, its tokens' usage."""
    tables = await pool.fetch(
        """SELECT table_name FROM information_schema.columns
           WHERE table_schema = current_schema() AND column_name = 'workspace_id' ORDER BY table_name"""
    )
    found: dict[str, list[str]] = {}
    for row in tables:
        name = row["table_name"]
        rows = await pool.fetch(
            f'SELECT to_jsonb(t)::text AS r FROM "{name}" t WHERE workspace_id = $1', workspace_id
        )
        found[name] = sorted(r["r"] for r in rows)
    rows = await pool.fetch("SELECT to_jsonb(w)::text AS r FROM workspaces w WHERE id = $1", workspace_id)
    found["workspaces"] = [r["r"] for r in rows]
    rows = await pool.fetch(
        """SELECT to_jsonb(u)::text AS r FROM token_usage u
           WHERE token_id IN (SELECT id FROM tokens WHERE workspace_id = $1) ORDER BY 1""",
        workspace_id,
    )
    found["token_usage"] = [r["r"] for r in rows]
    assert found["events"], "the snapshot must hold A's log"
    return found


# --------------------------------------------------------------------------------------------------
# The route table, and how to aim each route at A


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def carried(self) -> str:
        """Everything the request itself says (its ids are no leak when echoed)."""
        return f"{self.path} {self.params} {orjson.dumps(self.body).decode()}"

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.params or ''}"


def route_table() -> list[tuple[str, str]]:
    """(method, template) of every route the app serves (HEAD is GET's)."""
    found = []
    for route in routes():
        assert isinstance(route, Route)
        found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return found


PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
ROUTES = route_table()
ID_ROUTES = [(m, t) for m, t in ROUTES if "{id}" in t]
OTHER_ROUTES = [(m, t) for m, t in ROUTES if "{id}" not in t]


def scim_body(method: str, template: str, a: TenantA, b_user: str | None = None) -> Any:
    """A body for a SCIM write that, if it reached A, would change A or pull A's data into B."""
    if "/Groups" in template:
        if method == "PATCH":
            return {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": a.alice}, {"value": a.bob}]},
                    {"op": "remove", "path": f'members[value eq "{a.bob}"]'},
                    {"op": "replace", "path": "displayName", "value": "hijacked"},
                ],
            }
        return {"displayName": "B-hijack", "members": [{"value": a.alice}, {"value": a.dave}]}
    if method == "PATCH":
        return {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "value": {"active": False}},
                {"op": "replace", "path": "roles", "value": [{"value": "member"}]},
            ],
        }
    return {
        "userName": "mallory@tenant-b.test",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": a.alice}},
    }


def bulk_body(a: TenantA) -> dict[str, Any]:
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    return {
        "schemas": [BULK],
        "Operations": [
            {"method": "PATCH", "path": f"/Users/{a.alice}", "data": patch},
            {"method": "PUT", "path": f"/Users/{a.bob}", "data": {"userName": "bob@tenant-a.test"}},
            {"method": "DELETE", "path": f"/Users/{a.bob}"},
            {"method": "DELETE", "path": f"/Groups/{a.group}"},
            {"method": "PATCH", "path": f"/Groups/{a.group}", "data": scim_body("PATCH", "/Groups", a)},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": scim_body("POST", "/Groups", a)},
        ],
    }


ADMIN_BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/api/v1/members/{id}"): {"active": False},
    ("PATCH", "/api/v1/workspace/settings"): {"automatic_seat_assignment": True},
    ("POST", "/api/v1/seats"): {"count": 1},
    ("POST", "/api/v1/domains"): {"domain": A_DOMAIN},
    ("POST", "/api/v1/tokens"): {"name": "b token"},
    ("POST", "/api/v1/members"): {"user_name": "alice@tenant-a.test"},
    ("POST", "/api/v1/teams"): {"name": "A-Design"},
}


def body_for(method: str, template: str, a: TenantA) -> Any:
    if method in ("GET", "DELETE"):
        return None
    if template == "/scim/v2/Bulk":
        return bulk_body(a)
    if template.endswith(".search"):
        return {"schemas": [SEARCH], "filter": f'id eq "{a.alice}" or members.value eq "{a.alice}"'}
    if template.startswith("/scim/"):
        return scim_body(method, template, a)
    return ADMIN_BODIES.get((method, template), {"active": False, "name": "x", "role": "admin"})


OTHER_VALUES = {"domain": A_DOMAIN, "name": "User", "urn": "urn:ietf:params:scim:schemas:core:2.0:User"}
"""Template parameters other than ``{id}``: A's domain, or a harmless name (discovery, page assets)."""


def fill(template: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values.get(m.group(1), "x"), template)


def id_probes(a: TenantA) -> list[Probe]:
    """Each ``{id}`` route with each of A's ids; GETs also at a point in time."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    probes = []
    for method, template in ID_ROUTES:
        for a_id in a.ids().values():
            path = fill(template, {**OTHER_VALUES, "id": a_id})
            body = body_for(method, template, a)
            probes.append(Probe(method, path, {}, body))
            if method == "GET":
                probes.append(Probe(method, path, {"as_of": now}))
    return probes


def query_variants(template: str, a: TenantA) -> list[dict[str, str]]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if template.startswith("/scim/"):
        return [
            {},
            {"filter": f'id eq "{a.alice}"'},
            {"filter": 'userName eq "alice@tenant-a.test"'},
            {"filter": f'members.value eq "{a.alice}"'},
            {"filter": 'displayName eq "A-Engineering"'},
        ]
    return [
        {},
        {"member": a.alice},
        {"team": a.group},
        {"actor": a.token},
        {"actor": a.admin_key_id},
        {"as_of": now},
        {"status": "active"},
    ]


def other_probes(a: TenantA) -> list[Probe]:
    """Reads first (while B holds nothing it copied from A), then writes."""
    probes = []
    for method, template in OTHER_ROUTES:
        path = fill(template, OTHER_VALUES)
        variants = query_variants(template, a) if method == "GET" else [{}]
        probes += [Probe(method, path, params, body_for(method, template, a)) for params in variants]
    return sorted(probes, key=lambda p: p.method != "GET")


def credentials_for(path: str, b: Workspace) -> dict[str, str]:
    return b.auth if path.startswith("/scim/") else admin(b)


async def send(client: httpx.AsyncClient, probe: Probe, b: Workspace) -> httpx.Response:
    return await client.request(
        probe.method,
        probe.path,
        params=probe.params,
        json=probe.body,
        headers=credentials_for(probe.path, b),
    )


def leaked(response: httpx.Response, carried: str, a: TenantA) -> list[str]:
    """A's ids and names in the answer that B did not send itself (``carried``). A person's id is derived
    from the email (``domain/ids.py``), so it is known to whoever sends the email."""
    known = carried + " ".join(str(person_id(name)) for name in A_NAMES if name in carried)
    return sorted(s for s in a.secrets if s in response.text and s not in known)


# --------------------------------------------------------------------------------------------------
# The probes


def test_the_route_table_is_probed() -> None:
    """Enumerated from the app: resource routes of both APIs and the listings are all there."""
    assert ("DELETE", "/scim/v2/Users/{id}") in ID_ROUTES
    assert ("GET", "/api/v1/members/{id}/history") in ID_ROUTES
    assert ("GET", "/api/v1/audit") in OTHER_ROUTES
    assert len(ROUTES) >= 50


async def test_b_gets_404_for_every_route_that_names_one_of_as_resources(
    client: httpx.AsyncClient, unlimited: Any, tenant_a: TenantA, tenant_b: Workspace
) -> None:
    control = await client.get(f"/api/v1/members/{tenant_a.alice}/history", headers=admin(tenant_a.ws))
    assert leaked(control, "", tenant_a), "the oracle sees A's data where A's own key reads it"
    before = await snapshot(unlimited.state.pool, tenant_a.ws.id)
    wrong: list[str] = []
    for probe in id_probes(tenant_a):
        response = await send(client, probe, tenant_b)
        if response.status_code not in (403, 404):
            wrong.append(f"{probe} -> {response.status_code}: {response.text[:200]}")
        if found := leaked(response, probe.carried(), tenant_a):
            wrong.append(f"{probe} -> {response.status_code} shows A's {found}")
    assert not wrong, "\n".join(wrong)
    assert await snapshot(unlimited.state.pool, tenant_a.ws.id) == before


async def test_no_route_shows_b_any_of_as_data_or_changes_a(
    client: httpx.AsyncClient, unlimited: Any, tenant_a: TenantA, tenant_b: Workspace
) -> None:
    pool = unlimited.state.pool
    before = await snapshot(pool, tenant_a.ws.id)
    wrong: list[str] = []
    written = ""  # what B's earlier writes stored in B: B's own data from then on
    for probe in other_probes(tenant_a):
        response = await send(client, probe, tenant_b)
        if probe.method != "GET":
            written += probe.carried()
        if response.status_code >= 500:
            wrong.append(f"{probe} -> {response.status_code}: {response.text[:200]}")
        if found := leaked(response, written + probe.carried(), tenant_a):
            wrong.append(f"{probe} -> {response.status_code} shows A's {found}: {response.text[:300]}")
    assert not wrong, "\n".join(wrong)
    assert await snapshot(pool, tenant_a.ws.id) == before
    # nothing of B refers to A's members (a group push naming them skipped them)
    crossed = await pool.fetchval(
        """SELECT count(*) FROM scim_group_members
           WHERE workspace_id = $1 AND member_id IN (SELECT id FROM scim_users WHERE workspace_id = $2)""",
        tenant_b.id,
        tenant_a.ws.id,
    )
    assert crossed == 0


async def test_audit_filters_with_as_ids_are_empty(
    client: httpx.AsyncClient, unlimited: Any, tenant_a: TenantA, tenant_b: Workspace
) -> None:
    request_ids = await unlimited.state.pool.fetchval(
        """SELECT array_agg(DISTINCT metadata->>'request_id') FROM events
           WHERE workspace_id = $1 AND metadata->>'request_id' IS NOT NULL""",
        tenant_a.ws.id,
    )
    filters = {
        "member": [tenant_a.alice, tenant_a.bob, tenant_a.dave],
        "team": [tenant_a.group, tenant_a.team],
        "actor": [tenant_a.token, tenant_a.admin_key_id, str(tenant_a.ws.id)],
        "request_id": request_ids,
    }
    assert all(filters.values())
    for name, values in filters.items():
        for value in values:
            for extra in ({}, {"include": "internal"}):
                response = await client.get(
                    "/api/v1/audit", params={name: value, **extra}, headers=admin(tenant_b)
                )
                assert response.status_code == 200, response.text
                assert response.json()["entries"] == [], f"{name}={value}"


async def test_bulk_operations_on_as_resources_each_fail_404(
    client: httpx.AsyncClient, unlimited: Any, tenant_a: TenantA, tenant_b: Workspace
) -> None:
    before = await snapshot(unlimited.state.pool, tenant_a.ws.id)
    body = bulk_body(tenant_a)
    response = await client.post("/scim/v2/Bulk", json=body, headers=tenant_b.auth)
    assert response.status_code == 200, response.text
    statuses = [op["status"] for op in response.json()["Operations"]]
    assert statuses[:5] == ["404"] * 5
    assert statuses[5] == "201"  # B's own group, without A's members
    assert await snapshot(unlimited.state.pool, tenant_a.ws.id) == before


async def test_bs_own_group_cannot_take_in_as_members(
    client: httpx.AsyncClient, unlimited: Any, tenant_a: TenantA, tenant_b: Workspace
) -> None:
    """PATCH add, PUT and POST of B's group naming A's users: they are skipped, not added."""
    pool = unlimited.state.pool
    before = await snapshot(pool, tenant_a.ws.id)
    made = await scim(client, tenant_b, "POST", "/scim/v2/Groups", {"displayName": "B-Mixed"})
    path = f"/scim/v2/Groups/{made['id']}"
    writes = [
        ("PATCH", scim_body("PATCH", "/Groups", tenant_a)),
        ("PUT", {"displayName": "B-Mixed", "members": [{"value": tenant_a.alice}, {"value": tenant_a.bob}]}),
    ]
    for method, body in writes:
        response = await client.request(method, path, json=body, headers=tenant_b.auth)
        assert response.status_code == 200, response.text
        assert response.json().get("members", []) == []
    listed = await client.get(path, headers=tenant_b.auth)
    assert listed.json().get("members", []) == []
    assert await snapshot(pool, tenant_a.ws.id) == before
