"""schemathesis against the admin API's OpenAPI document (issue 8, "Attack suite"): for every operation of
``/api/v1/openapi.json`` as the app serves it (the merged document), schemathesis generates requests from
the document (valid ones, and invalid ones: wrong types, missing fields, bad path parameters), sends them
with an admin key, and checks every answer: no 5xx, and status, content type, headers and body as the
document says (``not_a_server_error``, ``status_code_conformance``, ``content_type_conformance``,
``response_headers_conformance``, ``response_schema_conformance``).

The app is served by uvicorn in a thread (``tests/e2e/live_server.py``; schemathesis's in-process ASGI
transport runs the app on an event loop of its own, where the app's asyncpg pool cannot follow), on a
database of its own with rate limits off. Path parameters are either generated or those of seeded
resources (a member, an invited member, a team, a token, a domain), so that operations reach real rows.
Derandomized, with a bounded number of examples per operation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from scimledger import pg
from scimledger.api import openapi
from scimledger.app import build_store
from tests.conftest import Workspace, make_workspace, with_database
from tests.e2e.live_server import live_server

RUNS = settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
METHODS = ("get", "put", "post", "patch", "delete")
OPERATIONS = sorted(
    (method.upper(), template)
    for template, item in openapi.spec()["paths"].items()
    for method in item
    if method in METHODS
)


@dataclass(frozen=True)
class Api:
    url: str
    admin_key: str
    ids: dict[str, str]

    def path_parameters(self, template: str) -> dict[str, str]:
        """The seeded resource a template names (``{id}``, ``{domain}``)."""
        if "/tokens/" in template:
            return {"id": self.ids["token"]}
        if "/teams/" in template:
            return {"id": self.ids["team"]}
        if template.endswith("/accept-invite"):
            return {"id": self.ids["invited"]}
        return {"id": self.ids["member"], "domain": "example.com"}


@pytest.fixture(scope="module")
async def api_database(server_url: str, template_database: str) -> AsyncIterator[tuple[str, Workspace]]:
    """A database of the module's own, and a workspace in it."""
    name = f"scimledger_schemathesis_{uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        url = with_database(server_url, name)
        pool = await pg.create_pool(url, min_size=1, max_size=2)
        try:
            ws = await make_workspace(
                build_store(pool), domains=("example.com",), seats=10, automatic_seat_assignment=True
            )
        finally:
            await pool.close()
        yield url, ws
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def api(api_database: tuple[str, Workspace]) -> Iterator[Api]:
    url, ws = api_database
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCIMLEDGER_RATE_LIMIT", "0")  # read when the app is made
        patch.setenv("SCIMLEDGER_AUTH_FAILURE_LIMIT", "0")
        with live_server(url, run_lagging=False) as base:
            patch.undo()
            yield Api(base, ws.admin_key, seed(base, ws.admin_key, ws.token))


def seed(base: str, admin_key: str, token: str) -> dict[str, str]:
    scim = {"Authorization": f"Bearer {token}"}
    admin = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base) as client:
        member = client.post("/scim/v2/Users", json={"userName": "idp@example.com"}, headers=scim)
        team = client.post(
            "/scim/v2/Groups",
            json={"displayName": "Engineering", "members": [{"value": member.json()["id"]}]},
            headers=scim,
        )
        invited = client.post("/api/v1/members", json={"user_name": "guest@other.org"}, headers=admin)
        issued = client.post("/api/v1/tokens", json={"name": "Okta"}, headers=admin)
        made = [member, team, invited, issued]
        assert [r.status_code for r in made] == [201] * 4, [r.text for r in made]
    return {
        "member": member.json()["id"],
        "team": team.json()["id"],
        "invited": invited.json()["id"],
        "token": issued.json()["id"],
    }


@pytest.fixture(scope="module")
def schema(api: Api) -> Any:
    """The document as the app serves it (loaded from its JSON: ``from_url`` would leave out the operation
    that serves the document)."""
    served = httpx.get(f"{api.url}/api/v1/openapi.json")
    assert served.status_code == 200
    return schemathesis.openapi.from_dict(served.json())


def test_every_operation_of_the_document_is_tested(schema: Any) -> None:
    found = sorted((r.ok().method.upper(), r.ok().path) for r in schema.get_all_operations())
    assert found == OPERATIONS


@pytest.mark.parametrize(("method", "template"), OPERATIONS)
def test_operation_conforms_to_the_document(api: Api, schema: Any, method: str, template: str) -> None:
    operation = schema[template][method]
    seeded = api.path_parameters(template)
    used = {k: v for k, v in seeded.items() if "{" + k + "}" in template}
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=used),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    headers = {"Authorization": f"Bearer {api.admin_key}"}

    @RUNS
    @given(case=cases)
    def conforms(case: Any) -> None:
        case.call_and_validate(base_url=api.url, headers=headers, checks=CHECKS)

    conforms()


@pytest.mark.parametrize("path", ["/api/v1/admins", "/api/v1/seats"])
def test_an_as_of_before_the_year_1000_is_echoed_as_rfc_3339(api: Api, path: str) -> None:
    """Found by schemathesis: ``as_of=0219-04-13T07:21:31+16:11`` was answered with ``"as_of":
    "219-04-12T15:10:31.000000Z"``, which is not an RFC 3339 date-time (four-digit year, §5.6)."""
    response = httpx.get(
        f"{api.url}{path}",
        params={"as_of": "0219-04-13T07:21:31+16:11"},
        headers={"Authorization": f"Bearer {api.admin_key}"},
    )
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["as_of"] == "0219-04-12T15:10:31.000000Z"
