"""The admin API's OpenAPI 3.1 document (``src/scimledger/api/openapi.json``) stays true to the app.

Three kinds of checks: the document lists exactly the app's ``/api/v1`` routes and methods; it is a
structurally sound OpenAPI 3.1 document (every ``$ref`` resolves, every operation has responses, ...); and
every endpoint, driven through the real app, returns only statuses the document lists for it, with bodies
that validate (JSON Schema 2020-12, ``$ref``s resolved against the whole document) against its schema.
"""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from starlette.routing import Route

from projections import runner
from scimledger import credentials, notifications
from scimledger.api import openapi
from tests.conftest import Workspace, make_workspace
from tests.e2e.dns_server import DnsServer

DOC: dict[str, Any] = openapi.spec()
DOC_URI = "urn:scimledger:admin-api:openapi.json"
REGISTRY: Registry[Any] = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(DOC))
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
API = "/api/v1/"

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time (jsonschema checks it only with an optional extra installed)."""
    return not isinstance(value, str) or ("T" in value and datetime.fromisoformat(value).tzinfo is not None)


# --- reading the document -----------------------------------------------------------------------------------
def escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def at_pointer(pointer: str) -> Any:
    node: Any = DOC
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def deref(node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """A response or parameter object and its pointer, following a ``#/components/...`` reference."""
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = at_pointer(pointer)
    return node, pointer


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for template, item in DOC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield template, method, item[method]


def walk(node: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    yield pointer, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{pointer}/{escape(key)}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


def is_secured(operation: dict[str, Any]) -> bool:
    return bool(operation.get("security", DOC.get("security", [])))


SECURED = [(t, m) for t, m, op in operations() if is_secured(op)]
WITH_BODY = [(t, m) for t, m, op in operations() if "requestBody" in op]
WITH_REQUIRED_FIELDS = [
    (t, m)
    for t, m, op in operations()
    if "requestBody" in op
    and deref(op["requestBody"]["content"]["application/json"]["schema"], "")[0].get("required")
]
WITH_ID = [(t, m) for t, m, op in operations() if "{id}" in t]


def documented(response: httpx.Response, method: str, template: str) -> Any:
    """Fail unless the document lists ``response``'s status for the operation and its body validates against
    the schema documented for that status; returns the parsed body (None when none is documented)."""
    operation = DOC["paths"][template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method.upper()} {template} returned {status}, not documented: {response.text[:500]}"
    )
    base = f"/paths/{escape(template)}/{method.lower()}/responses/{status}"
    described, pointer = deref(operation["responses"][status], base)
    content = described.get("content")
    if not content:
        assert response.content == b"", f"{status} documents no body: {response.text[:500]}"
        return None
    media_type = response.headers["content-type"].split(";")[0].strip()
    assert media_type in content, f"{method.upper()} {template} {status}: content-type {media_type}"
    body = response.json()
    schema = {"$ref": f"{DOC_URI}#{pointer}/content/{escape(media_type)}/schema"}
    validator = Draft202012Validator(schema, registry=REGISTRY, format_checker=FORMATS)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{method.upper()} {template} {status} does not match the document: {errors}"
    return body


# --- driving the app ----------------------------------------------------------------------------------------
@pytest.fixture
async def api(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``client``, but a 500 is a response (judged against the document), not a raised exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://scim.example.test") as c:
        yield c


def key(ws: Workspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.admin_key}"}


async def call(
    api: httpx.AsyncClient,
    method: str,
    template: str,
    headers: dict[str, str],
    *,
    path: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """Send ``method`` to ``template`` (filled from ``path``); the status and the body, checked against the
    document."""
    response = await api.request(method.upper(), template.format(**(path or {})), headers=headers, **kwargs)
    return response.status_code, documented(response, method, template)


def error_code(body: Any) -> str:
    return str(body["error"]["code"])


async def scim_user(api: httpx.AsyncClient, ws: Workspace, user_name: str) -> str:
    response = await api.post("/scim/v2/Users", json={"userName": user_name}, headers=ws.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def scim_group(api: httpx.AsyncClient, ws: Workspace, name: str, *members: str) -> str:
    body = {"displayName": name, "externalId": f"ext-{name}", "members": [{"value": m} for m in members]}
    response = await api.post("/scim/v2/Groups", json=body, headers=ws.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@dataclass(frozen=True)
class Seeded:
    """Resources of ``workspace``: an IdP-managed member in an IdP-managed team, an invited app-managed
    member, and a token."""

    member: str
    invited: str
    team: str
    token: str

    def ids(self, template: str) -> dict[str, str]:
        if template.startswith(f"{API}tokens/"):
            return {"id": self.token}
        if template.startswith(f"{API}teams/"):
            return {"id": self.team}
        if template.endswith("/accept-invite"):
            return {"id": self.invited}
        return {"id": self.member, "domain": "example.com"}


@pytest.fixture
async def seeded(api: httpx.AsyncClient, workspace: Workspace) -> Seeded:
    member = await scim_user(api, workspace, "idp@example.com")
    team = await scim_group(api, workspace, "Engineering", member)
    _, invited = await call(
        api, "post", f"{API}members", key(workspace), json={"user_name": "guest@other.org"}
    )
    _, token = await call(api, "post", f"{API}tokens", key(workspace), json={"name": "Okta"})
    return Seeded(member=member, invited=invited["id"], team=team, token=token["id"])


# --- the document lists exactly the app's routes ------------------------------------------------------------
def app_operations(app: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith(API):
            methods = {m.lower() for m in route.methods or ()}
            if "get" in methods:
                methods.discard("head")  # Starlette answers HEAD wherever it answers GET
            found[re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)] |= methods
    return dict(found)


def test_document_lists_exactly_the_apps_admin_routes_and_methods(app: Any) -> None:
    in_document: dict[str, set[str]] = defaultdict(set)
    for template, method, _ in operations():
        in_document[template].add(method)
    assert dict(in_document) == app_operations(app)


async def test_document_is_served_at_api_v1_openapi_json(api: httpx.AsyncClient) -> None:
    status, body = await call(api, "get", f"{API}openapi.json", {})
    assert status == 200
    assert body["openapi"] == "3.1.0"
    assert body == DOC


# --- the document is sound OpenAPI 3.1 ----------------------------------------------------------------------
def test_every_ref_resolves_inside_the_document() -> None:
    refs = [(p, n["$ref"]) for p, n in walk(DOC) if isinstance(n, dict) and isinstance(n.get("$ref"), str)]
    assert refs
    unresolved = []
    for pointer, target in refs:
        try:
            assert target.startswith("#/")
            at_pointer(target[1:])
        except (AssertionError, KeyError, IndexError, ValueError):
            unresolved.append(f"{pointer}: {target}")
    assert not unresolved


def test_document_has_the_required_openapi_3_1_fields() -> None:
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] and DOC["info"]["version"]
    assert DOC["jsonSchemaDialect"] == "https://json-schema.org/draft/2020-12/schema"
    assert DOC["paths"] and all(template.startswith("/") for template in DOC["paths"])


def test_every_operation_documents_responses_with_descriptions() -> None:
    for template, method, operation in operations():
        responses = operation["responses"]
        assert responses, f"{method} {template}"
        for status, response in responses.items():
            assert re.fullmatch(r"[1-5](\d\d|XX)|default", status), f"{method} {template} {status}"
            described, _ = deref(response, "")
            assert described["description"], f"{method} {template} {status}"
            for media in described.get("content", {}).values():
                assert "schema" in media, f"{method} {template} {status}"


def test_operation_ids_are_unique() -> None:
    ids = [operation["operationId"] for _, _, operation in operations()]
    assert len(ids) == len(set(ids))


def test_path_parameters_are_exactly_the_template_variables() -> None:
    for template, method, operation in operations():
        shared = DOC["paths"][template].get("parameters", [])
        declared = [deref(p, "")[0] for p in [*shared, *operation.get("parameters", [])]]
        in_path = {p["name"] for p in declared if p["in"] == "path"}
        assert in_path == set(re.findall(r"\{(\w+)\}", template)), f"{method} {template}"
        assert all(p["required"] is True and "schema" in p for p in declared if p["in"] == "path")


def test_every_schema_is_a_valid_json_schema_2020_12() -> None:
    schemas = [n["schema"] for _, n in walk(DOC) if isinstance(n, dict) and isinstance(n.get("schema"), dict)]
    schemas += list(DOC["components"]["schemas"].values())
    for schema in schemas:
        Draft202012Validator.check_schema(schema)


def test_every_operation_but_the_document_needs_the_bearer_admin_key_and_documents_401() -> None:
    scheme = DOC["components"]["securitySchemes"]["adminKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert DOC["security"] == [{"adminKey": []}]
    public = [(t, m) for t, m, op in operations() if not is_secured(op)]
    assert public == [(f"{API}openapi.json", "get")]
    for template, method in SECURED:
        assert "401" in DOC["paths"][template][method]["responses"], f"{method} {template}"


# --- every endpoint, driven through the app -----------------------------------------------------------------
@pytest.mark.parametrize(("template", "method"), SECURED)
async def test_no_admin_key_is_401(api: httpx.AsyncClient, template: str, method: str) -> None:
    path = {"id": str(uuid4()), "domain": "example.com"}
    status, body = await call(api, method, template, {}, path=path, json={})
    assert status == 401
    assert error_code(body) == "401"


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {credentials.generate(credentials.ADMIN_KEY_PREFIX)}",
        "Bearer slkey_0000000000000000000000000000000000000000000000000",
        "Bearer",
        "Basic dXNlcjpwYXNz",
    ],
    ids=["unknown-key", "bad-checksum", "no-key", "basic"],
)
async def test_a_header_that_is_no_valid_admin_key_is_401(api: httpx.AsyncClient, authorization: str) -> None:
    status, _ = await call(api, "get", f"{API}workspace", {"Authorization": authorization})
    assert status == 401


async def test_a_scim_token_is_not_an_admin_key(api: httpx.AsyncClient, workspace: Workspace) -> None:
    status, _ = await call(api, "get", f"{API}workspace", workspace.auth)
    assert status == 401


async def test_a_revoked_admin_key_is_401(api: httpx.AsyncClient, app: Any) -> None:
    other = await make_workspace(app.state.store, name="Gone")
    await api.post(f"{API}admin-keys", headers=key(other))  # a workspace keeps an active admin key
    secret_hash = credentials.secret_hash(other.admin_key)
    await app.state.pool.execute(
        "UPDATE admin_keys SET revoked_at = now() WHERE secret_hash = $1", secret_hash
    )
    status, _ = await call(api, "get", f"{API}workspace", key(other))
    assert status == 401


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
@pytest.mark.parametrize(("template", "method"), WITH_BODY)
async def test_a_body_that_is_not_a_json_object_is_400(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded, template: str, method: str, raw: bytes
) -> None:
    headers = {**key(workspace), "Content-Type": "application/json"}
    status, body = await call(api, method, template, headers, path=seeded.ids(template), content=raw)
    assert status == 400
    assert error_code(body) == "invalid_command"


@pytest.mark.parametrize(("template", "method"), WITH_REQUIRED_FIELDS)
async def test_a_body_without_a_required_field_is_400(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded, template: str, method: str
) -> None:
    status, body = await call(api, method, template, key(workspace), path=seeded.ids(template), json={})
    assert status == 400
    assert error_code(body) == "invalid_command"


@pytest.mark.parametrize(
    ("template", "method", "payload"),
    [
        (f"{API}workspace/settings", "patch", {"automatic_seat_assignment": 1}),
        (f"{API}seats", "post", {"count": "3"}),
        (f"{API}seats", "post", {"count": True}),
        (f"{API}seats", "post", {"count": 0}),
        (f"{API}domains", "post", {"domain": "localhost"}),
        (f"{API}tokens", "post", {"name": "   "}),
        (f"{API}tokens", "post", {"name": "x", "scopes": ["admin"]}),
        (f"{API}tokens", "post", {"name": "x", "scopes": []}),
        (f"{API}tokens", "post", {"name": "x", "description": 7}),
        (f"{API}members", "post", {"user_name": "x@example.com", "role": "owner"}),
        (f"{API}members/{{id}}", "patch", {"role": "owner"}),
        (f"{API}members/{{id}}", "patch", {"active": "no"}),
        (f"{API}teams", "post", {"name": ""}),
    ],
)
async def test_a_field_of_the_wrong_type_or_value_is_400(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded, template: str, method: str, payload: Any
) -> None:
    path = seeded.ids(template)
    status, body = await call(api, method, template, key(workspace), path=path, json=payload)
    assert status == 400
    assert error_code(body) == "invalid_command"


async def test_a_value_that_cannot_be_stored_is_400_invalid_value(
    api: httpx.AsyncClient, workspace: Workspace
) -> None:
    status, body = await call(api, "post", f"{API}teams", key(workspace), json={"name": "a\u0000b"})
    assert status == 400
    assert error_code(body) == "invalid_value"


@pytest.mark.parametrize("missing", [lambda: str(uuid4()), lambda: "not-a-uuid"], ids=["uuid", "not-uuid"])
@pytest.mark.parametrize(("template", "method"), WITH_ID)
async def test_an_unknown_id_is_404(
    api: httpx.AsyncClient, workspace: Workspace, template: str, method: str, missing: Any
) -> None:
    status, body = await call(api, method, template, key(workspace), path={"id": missing()}, json={})
    assert status == 404
    assert error_code(body) == "not_found"


async def snapshot(api: httpx.AsyncClient, ws: Workspace, seeded: Seeded) -> list[Any]:
    headers = key(ws)
    return [
        (await call(api, "get", f"{API}members/{{id}}", headers, path={"id": seeded.member}))[1],
        (await call(api, "get", f"{API}members/{{id}}", headers, path={"id": seeded.invited}))[1],
        (await call(api, "get", f"{API}tokens", headers))[1],
        (await call(api, "get", f"{API}teams", headers))[1],
    ]


@pytest.mark.parametrize(("template", "method"), WITH_ID)
async def test_another_workspaces_key_gets_404_and_changes_nothing(
    api: httpx.AsyncClient, app: Any, workspace: Workspace, seeded: Seeded, template: str, method: str
) -> None:
    other = await make_workspace(app.state.store, name="Other", domains=("example.com",), seats=10)
    before = await snapshot(api, workspace, seeded)
    path = seeded.ids(template)
    status, body = await call(api, method, template, key(other), path=path, json={"active": False})
    assert status == 404
    assert error_code(body) == "not_found"
    assert await snapshot(api, workspace, seeded) == before


@pytest.mark.parametrize("listing", ["members", "teams", "tokens", "drift", "outbox"])
async def test_another_workspaces_key_lists_none_of_its_resources(
    api: httpx.AsyncClient, app: Any, workspace: Workspace, seeded: Seeded, listing: str
) -> None:
    path = {"id": seeded.member}
    await call(api, "patch", f"{API}members/{{id}}", key(workspace), path=path, json={"role": "admin"})
    await runner.catch_up(app.state.pool)
    _, own = await call(api, "get", f"{API}{listing}", key(workspace))
    other = await make_workspace(app.state.store, name="Other")
    status, body = await call(api, "get", f"{API}{listing}", key(other))
    assert status == 200
    assert own[listing]
    expected = ["IdP token"] if listing == "tokens" else []  # the other workspace's own token
    found = [t["name"] for t in body[listing]] if listing == "tokens" else body[listing]
    assert found == expected


async def test_get_workspace(api: httpx.AsyncClient, workspace: Workspace) -> None:
    status, body = await call(api, "get", f"{API}workspace", key(workspace))
    assert status == 200
    assert body["id"] == str(workspace.id)
    assert body["seats"] == {"total": 100, "assigned": 0, "available": 100}
    assert body["domains"] == [{"domain": "example.com", "verified": True}]


async def test_change_settings(api: httpx.AsyncClient, workspace: Workspace) -> None:
    payload = {"automatic_seat_assignment": True, "ignored": 1}
    status, body = await call(api, "patch", f"{API}workspace/settings", key(workspace), json=payload)
    assert status == 200
    assert body["settings"] == {"automatic_seat_assignment": True}


async def test_add_seats(api: httpx.AsyncClient, workspace: Workspace) -> None:
    status, body = await call(api, "post", f"{API}seats", key(workspace), json={"count": 5})
    assert status == 200
    assert body["seats"]["total"] == 105


async def test_add_domain_is_201_and_unverified(api: httpx.AsyncClient, workspace: Workspace) -> None:
    status, body = await call(api, "post", f"{API}domains", key(workspace), json={"domain": "Other.ORG."})
    assert status == 201
    challenge = body["challenge"]
    assert (challenge["record"], challenge["type"]) == ("_scimledger-challenge.other.org", "TXT")
    assert {"domain": "other.org", "verified": False, "challenge": challenge} in body["domains"]


async def test_verify_domain(api: httpx.AsyncClient, workspace: Workspace, dns_server: DnsServer) -> None:
    _, added = await call(api, "post", f"{API}domains", key(workspace), json={"domain": "other.org"})
    template = f"{API}domains/{{domain}}/verify"
    status, body = await call(api, "post", template, key(workspace), path={"domain": "other.org"})
    assert status == 409
    assert error_code(body) == "domain_not_proven"
    dns_server.publish(added["challenge"]["record"], added["challenge"]["value"])
    status, body = await call(api, "post", template, key(workspace), path={"domain": "other.org"})
    assert status == 200
    assert {"domain": "other.org", "verified": True} in body["domains"]


async def test_verifying_a_domain_not_added_is_400(api: httpx.AsyncClient, workspace: Workspace) -> None:
    template = f"{API}domains/{{domain}}/verify"
    status, body = await call(api, "post", template, key(workspace), path={"domain": "nope.org"})
    assert status == 400
    assert error_code(body) == "invalid_command"


async def test_issue_token_shows_the_secret_once(api: httpx.AsyncClient, workspace: Workspace) -> None:
    payload = {"name": "Okta", "description": "prod", "scopes": ["scim:read"]}
    status, issued = await call(api, "post", f"{API}tokens", key(workspace), json=payload)
    assert status == 201
    assert issued["token"].startswith("sltok_")
    assert (issued["scopes"], issued["status"]) == (["scim:read"], "active")
    _, listed = await call(api, "get", f"{API}tokens", key(workspace))
    assert {k: v for k, v in issued.items() if k != "token"} in listed["tokens"]
    assert all("token" not in t for t in listed["tokens"])


async def test_tokens_list_shows_use_and_revocation(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    assert (await api.get("/scim/v2/Users", headers=workspace.auth)).status_code == 200
    path = {"id": seeded.token}
    status, body = await call(api, "delete", f"{API}tokens/{{id}}", key(workspace), path=path)
    assert (status, body) == (204, None)
    status, body = await call(api, "delete", f"{API}tokens/{{id}}", key(workspace), path=path)
    assert status == 204  # revoking a revoked token changes nothing
    _, listed = await call(api, "get", f"{API}tokens", key(workspace))
    by_id = {t["id"]: t for t in listed["tokens"]}
    assert by_id[seeded.token]["status"] == "revoked"
    assert by_id[seeded.token]["revoked_by"] and by_id[seeded.token]["revoked_at"]
    [idp_token] = [t for t in listed["tokens"] if t["name"] == "IdP token"]
    assert idp_token["last_used_at"] is not None


async def test_create_member_in_a_verified_domain_is_active(
    api: httpx.AsyncClient, workspace: Workspace
) -> None:
    payload = {"user_name": " ada@example.com ", "role": "admin"}
    status, body = await call(api, "post", f"{API}members", key(workspace), json=payload)
    assert status == 201
    assert body["user_name"] == "ada@example.com"
    assert (body["status"], body["role"], body["managed_by"]) == ("active", "admin", "app")
    assert (body["has_seat"], body["teams"]) == (True, [])


async def test_create_member_outside_the_verified_domains_is_invited(
    api: httpx.AsyncClient, workspace: Workspace
) -> None:
    payload = {"user_name": "bob@elsewhere.org", "role": None}
    status, body = await call(api, "post", f"{API}members", key(workspace), json=payload)
    assert status == 201
    assert (body["status"], body["role"], body["has_seat"]) == ("invited", "member", True)


async def test_a_user_name_in_use_is_409_uniqueness(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    payload = {"user_name": "idp@example.com"}
    status, body = await call(api, "post", f"{API}members", key(workspace), json=payload)
    assert status == 409
    assert error_code(body) == "uniqueness"


async def test_no_free_seat_is_409(api: httpx.AsyncClient, app: Any) -> None:
    full = await make_workspace(app.state.store, name="Full", domains=("full.com",))
    status, body = await call(api, "post", f"{API}members", key(full), json={"user_name": "a@full.com"})
    assert status == 409
    assert error_code(body) == "no_free_seat"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"idp@example.com", "guest@other.org"}),
        ({"status": "invited"}, {"guest@other.org"}),
        ({"status": "active", "managed_by": "idp"}, {"idp@example.com"}),
        ({"role": "admin"}, set()),
        ({"managed_by": "app", "role": "member"}, {"guest@other.org"}),
        ({"status": ""}, {"idp@example.com", "guest@other.org"}),
    ],
)
async def test_list_members_filters(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded, query: dict[str, str], expected: set[str]
) -> None:
    status, body = await call(api, "get", f"{API}members", key(workspace), params=query)
    assert status == 200
    assert {m["user_name"] for m in body["members"]} == expected


async def test_a_member_filter_that_cannot_be_used_is_400(
    api: httpx.AsyncClient, workspace: Workspace
) -> None:
    status, body = await call(api, "get", f"{API}members", key(workspace), params={"role": "\x00"})
    assert status == 400
    assert error_code(body) == "invalid_command"  # not a role (issue 10: an unknown filter value is 400)


async def test_get_member_lists_its_teams(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    path = {"id": seeded.member}
    status, body = await call(api, "get", f"{API}members/{{id}}", key(workspace), path=path)
    assert status == 200
    assert (body["managed_by"], body["teams"]) == ("idp", [{"id": seeded.team, "name": "Engineering"}])


async def test_get_a_deprovisioned_member(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    assert (await api.delete(f"/scim/v2/Users/{seeded.member}", headers=workspace.auth)).status_code == 204
    path = {"id": seeded.member}
    status, body = await call(api, "get", f"{API}members/{{id}}", key(workspace), path=path)
    assert status == 200
    assert (body["status"], body["has_seat"], body["teams"]) == ("deprovisioned", False, [])


async def test_patch_member_suspends_and_reactivates(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    template, path = f"{API}members/{{id}}", {"id": seeded.member}
    status, body = await call(api, "patch", template, key(workspace), path=path, json={"active": False})
    assert (status, body["status"], body["has_seat"]) == (200, "suspended", False)
    status, body = await call(api, "patch", template, key(workspace), path=path, json={"active": True})
    assert (status, body["status"], body["has_seat"]) == (200, "active", True)


async def test_patch_member_with_nothing_to_change(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    template, path = f"{API}members/{{id}}", {"id": seeded.member}
    _, before = await call(api, "get", template, key(workspace), path=path)
    status, body = await call(api, "patch", template, key(workspace), path=path, json={"role": None})
    assert (status, body) == (200, before)


async def test_the_last_admin_cannot_be_suspended_or_downgraded(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    template, path = f"{API}members/{{id}}", {"id": seeded.member}
    status, body = await call(api, "patch", template, key(workspace), path=path, json={"role": "admin"})
    assert (status, body["role"]) == (200, "admin")
    for change in ({"active": False}, {"role": "member"}):
        status, body = await call(api, "patch", template, key(workspace), path=path, json=change)
        assert status == 409
        assert error_code(body) == "last_admin"


async def test_accept_invite(api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded) -> None:
    template, path = f"{API}members/{{id}}/accept-invite", {"id": seeded.invited}
    status, body = await call(api, "post", template, key(workspace), path=path)
    assert (status, body["status"]) == (200, "active")
    status, body = await call(api, "post", template, key(workspace), path=path)
    assert status == 400
    assert error_code(body) == "invalid_command"


async def test_create_team(api: httpx.AsyncClient, workspace: Workspace) -> None:
    status, body = await call(api, "post", f"{API}teams", key(workspace), json={"name": " Design "})
    assert status == 201
    assert (body["name"], body["managed_by"], body["external_id"], body["members"]) == (
        "Design",
        "app",
        None,
        0,
    )
    _, listed = await call(api, "get", f"{API}teams", key(workspace))
    assert listed["teams"] == [body]


async def test_a_team_name_in_use_is_409_uniqueness(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    status, body = await call(api, "post", f"{API}teams", key(workspace), json={"name": "Engineering"})
    assert status == 409
    assert error_code(body) == "uniqueness"


async def test_unlink_team(api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded) -> None:
    template, path = f"{API}teams/{{id}}/unlink", {"id": seeded.team}
    status, body = await call(api, "post", template, key(workspace), path=path)
    assert status == 200
    assert (body["managed_by"], body["external_id"], body["members"]) == ("app", "ext-Engineering", 1)


async def test_drift_lists_an_admin_change_to_an_idp_managed_member(
    api: httpx.AsyncClient, workspace: Workspace, seeded: Seeded
) -> None:
    path = {"id": seeded.member}
    await call(api, "patch", f"{API}members/{{id}}", key(workspace), path=path, json={"role": "admin"})
    status, body = await call(api, "get", f"{API}drift", key(workspace))
    assert status == 200
    [drift] = body["drift"]
    assert (drift["resource_id"], drift["event_type"], drift["change"]) == (
        seeded.member,
        "MemberRoleChanged",
        {"role": "admin"},
    )
    assert drift["actor"]["kind"] == "admin"


async def test_outbox_lists_queued_and_sent_notifications(
    api: httpx.AsyncClient, app: Any, workspace: Workspace, seeded: Seeded
) -> None:
    await runner.catch_up(app.state.pool)
    assert await notifications.deliver_pending(app.state.pool, notifications.LogSender(), limit=1) == 1
    status, body = await call(api, "get", f"{API}outbox", key(workspace))
    assert status == 200
    assert [(o["kind"], o["recipient"]) for o in body["outbox"]] == [
        ("added", "idp@example.com"),  # the product's welcome is not listed (issue 8)
        ("invite", "guest@other.org"),
    ]
    assert [o["sent_at"] is not None for o in body["outbox"]] == [True, False]


# --- defects found while writing this file, now fixed -------------------------------------------------------
async def test_a_blank_user_name_is_400(api: httpx.AsyncClient, workspace: Workspace) -> None:
    status, _ = await call(api, "post", f"{API}members", key(workspace), json={"user_name": "   "})
    assert status == 400


@pytest.mark.parametrize(
    ("template", "field"),
    [(f"{API}teams", "name"), (f"{API}domains", "domain"), (f"{API}members", "user_name")],
)
async def test_an_overlong_value_is_400_not_500(
    api: httpx.AsyncClient, workspace: Workspace, template: str, field: str
) -> None:
    value = f"{secrets.token_hex(3000)}.example.com"  # random: too long for an index even compressed
    status, _ = await call(api, "post", template, key(workspace), json={field: value})
    assert status == 400
