"""Third-party SCIM conformance tools run against a live server (issue 3): ``scim2-tester`` and
``scim-sanity probe``.

Each test serves the app with uvicorn on 127.0.0.1 and a free port (``tests/e2e/live_server.py``: a real
socket, the app's own pool and lifespan) on the test's fresh database, so ``DATABASE_URL`` works as for
the rest of the suite. It creates a workspace (verified domain ``example.com``, 1000 seats and automatic
seat assignment, so seat rules never refuse a tool's user) and a read-write token, then runs one tool:

* **scim2-tester** (``scim2_tester.check_server``) discovers the server from its ServiceProviderConfig,
  ResourceTypes and Schemas, then runs its discovery, CRUD, attribute-projection and PATCH checks on every
  resource type. Every check must be ``SUCCESS``. A check may only be skipped for a reason listed in
  ``SKIPPABLE``, i.e. because the server itself says it lacks the feature, which the test confirms by
  asking the server.
* **scim-sanity** (``run_probe_api``, strict mode) runs its discovery, User and Group lifecycles, search
  and error-handling phases, then deletes what it created. Every FAIL or ERROR must be in
  ``SANITY_ALLOWED`` with its exact message and the RFC text that makes our answer the correct one;
  warnings and skips (the Agent resource types, which we do not serve) are only printed.

Generated data: scim2-tester makes userNames and ``emails.value`` from random UUIDs (``<uuid>`` and
``<uuid>@<uuid>.com``, ``scim2_tester.filling.generate_random_value``), so none of its domains can be
verified ahead of time (its users are invited members, which SCIM shows like any other); scim-sanity's
userNames and emails are ``scim-sanity-test-<hex>@example.com`` (``scim_sanity.payload_factory``; its only
other address, ``nonexistent@test.invalid``, is a filter value). Hence the one verified domain.

Run: ``.venv/bin/pytest tests/e2e/test_conformance_tools.py -s`` (``-s`` prints the counts and every check
that did not pass). On failure every HTTP exchange the tool made is written to ``<tmp_path>/traffic.json``
(its path is in the assertion message). Requests time out after ``REQUEST_TIMEOUT`` s; a tool run longer
than ``TOOL_TIMEOUT`` s fails the test, and stopping the server then ends the tool's thread. The server
thread is stopped and joined before each test returns.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from scim2_client import BaseSyncSCIMClient, RequestNetworkException
from scim2_tester import CheckResult, Status, check_server
from scim_sanity.http_client import SCIMClient as SanityClient
from scim_sanity.http_client import SCIMResponse
from scim_sanity.probe.runner import run_probe_api

from scimledger.store.event_store import EventStore
from tests.conftest import make_workspace
from tests.e2e.live_server import live_server

pytestmark = pytest.mark.slow

VERIFIED_DOMAINS = ("example.com",)
SEATS = 1000
REQUEST_TIMEOUT = 10.0
TOOL_TIMEOUT = 40.0

PASSING = {Status.SUCCESS}  # 0.5.2 reports nothing between SUCCESS and ERROR but SKIPPED

# scim2-tester skips a check with one of these reasons only when the server says it lacks the feature;
# the value is how the test confirms that the server does say so.
PATCH_UNSUPPORTED = "PATCH operations not supported by server"
ROOT_SEARCH_UNSUPPORTED = (
    "POST /.search: searching several resource types at once is not supported by the server"
)
SKIPPABLE: dict[str, str] = {
    PATCH_UNSUPPORTED: "ServiceProviderConfig patch.supported is false (RFC 7643 §5)",
    ROOT_SEARCH_UNSUPPORTED: "POST /.search at the root answers 501 (RFC 7644 §3.4.3, §3.12)",
}

# scim-sanity checks that may FAIL: test name -> (the exact failure message, why our answer is correct).
# The message must match too, so a different failure of the same check is still reported.
SANITY_ALLOWED: dict[str, tuple[str, str]] = {}  # none needed: every check passes or is skipped


class Traffic:
    """Every exchange a tool made, for the failure report."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []

    def add(self, method: str, url: str, body: Any, status: int, response: str) -> None:
        try:
            decoded: Any = json.loads(response) if response else None
        except ValueError:
            decoded = response
        self.exchanges.append(
            {"method": method, "url": url, "body": body, "status": status, "response": decoded}
        )

    def dump(self, path: Path) -> Path:
        path.write_text(json.dumps(self.exchanges, indent=2, default=str))
        return path


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's sync engine on ``httpx.Client``: scim2-client's own network engine needs the
    ``httpx2`` package, which is not a dependency here; this is that engine, on the same API."""

    def __init__(self, client: httpx.Client, traffic: Traffic) -> None:
        super().__init__()
        self.client = client
        self.traffic = traffic

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        url = self.client.build_request("GET", endpoint).url
        same_origin = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
        return same_origin and url.path.startswith(base.path)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.RequestError as error:
            raised = RequestNetworkException()
            raised.add_note(str(error))
            raise raised from error
        self.traffic.add(method, str(response.url), kwargs.get("json"), response.status_code, response.text)
        return response


class RecordingSanityClient(SanityClient):
    """scim-sanity's HTTP client, recording each exchange."""

    traffic: Traffic

    def _request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> SCIMResponse:
        response = super()._request(method, path, payload, extra_headers)
        self.traffic.add(method, f"{self.base_url}{path}", payload, response.status_code, response.body)
        return response


def is_allowed(result: dict[str, Any]) -> bool:
    """A scim-sanity FAIL listed in SANITY_ALLOWED with this very message."""
    allowed = SANITY_ALLOWED.get(result["name"])
    return result["status"] == "fail" and allowed is not None and result.get("message") == allowed[0]


async def read_write_token(store: EventStore) -> str:
    """A read-write SCIM token of a fresh workspace the tools may fill freely."""
    workspace = await make_workspace(
        store, name="Conformance", domains=VERIFIED_DOMAINS, seats=SEATS, automatic_seat_assignment=True
    )
    return workspace.token


def describe(result: CheckResult) -> str:
    data = result.data if isinstance(result.data, dict | list | str | None) else repr(result.data)
    shown = json.dumps(data, default=str)[:800] if data is not None else ""
    return (
        f"  [{result.status.name}] {result.resource_type or '-'} {result.title}: {result.reason}\n    {shown}"
    )


def run_scim2_tester(
    base_url: str, token: str, traffic: Traffic
) -> tuple[list[CheckResult], dict[str, bool]]:
    """All of scim2-tester's checks, and whether the server says it lacks each skippable feature."""
    with httpx.Client(
        base_url=f"{base_url}/scim/v2",
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT,
        trust_env=False,
    ) as http:
        results = check_server(HttpxSCIMClient(http, traffic))
        config = http.get("/ServiceProviderConfig").json()
        root_search = http.post(
            "/.search",
            json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]},
            headers={"Content-Type": "application/scim+json"},
        )
    unsupported = {
        PATCH_UNSUPPORTED: not config.get("patch", {}).get("supported", False),
        ROOT_SEARCH_UNSUPPORTED: root_search.status_code == 501,
    }
    return results, unsupported


def run_scim_sanity(base_url: str, token: str) -> Any:
    return run_probe_api(f"{base_url}/scim/v2", token=token, strict=True, timeout=int(REQUEST_TIMEOUT))


async def test_scim2_tester_checks_all_pass(database_url: str, store: EventStore, tmp_path: Path) -> None:
    token = await read_write_token(store)
    traffic = Traffic()
    started = time.monotonic()
    with live_server(database_url) as url:
        results, unsupported = await asyncio.wait_for(
            asyncio.to_thread(run_scim2_tester, url, token, traffic), TOOL_TIMEOUT
        )
    counts = Counter(r.status.name for r in results)
    print(f"\nscim2-tester: {len(results)} checks in {time.monotonic() - started:.1f} s: {dict(counts)}")
    for r in results:
        if r.status not in PASSING:
            print(describe(r))
    bad = [
        r
        for r in results
        if r.status not in PASSING
        and not (r.status is Status.SKIPPED and r.reason in SKIPPABLE and unsupported[r.reason or ""])
    ]
    assert results, "scim2-tester ran no check"
    assert not bad, (
        f"{len(bad)} of {len(results)} scim2-tester checks did not pass "
        f"(traffic: {traffic.dump(tmp_path / 'traffic.json')}):\n" + "\n".join(describe(r) for r in bad)
    )


async def test_scim_sanity_probe_has_no_unexplained_failures(
    database_url: str, store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await read_write_token(store)
    traffic = Traffic()
    monkeypatch.setattr(RecordingSanityClient, "traffic", traffic, raising=False)
    monkeypatch.setattr("scim_sanity.probe.runner.SCIMClient", RecordingSanityClient)
    started = time.monotonic()
    with live_server(database_url) as url:
        report = await asyncio.wait_for(asyncio.to_thread(run_scim_sanity, url, token), TOOL_TIMEOUT)
    summary = report["summary"]
    print(f"\nscim-sanity probe ({report['mode']}) in {time.monotonic() - started:.1f} s: {summary}")
    for r in report["results"]:
        if r["status"] != "pass":
            allowed = f" (allowed: {SANITY_ALLOWED[r['name']][1]})" if is_allowed(r) else ""
            print(f"  [{r['status']}] {r.get('phase', '')} | {r['name']}: {r.get('message', '')}{allowed}")
    unexplained = [r for r in report["results"] if r["status"] in ("fail", "error") and not is_allowed(r)]
    assert summary["total"] > 0 and summary["passed"] > 0
    assert not unexplained, (
        f"scim-sanity failures not in SANITY_ALLOWED (traffic: {traffic.dump(tmp_path / 'traffic.json')}):\n"
        + json.dumps(unexplained, indent=2)
    )
