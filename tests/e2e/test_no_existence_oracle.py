"""Issue 8, defect 1: what one workspace learns never depends on another workspace's people.

A person who is a member of workspace A and a person who exists nowhere are provisioned in workspace B. Every
channel B has is compared: the SCIM response, the audit log (every event, internal ones too), the outbox
listing, the member's history and explanation, and the time a provisioning takes (medians of 100 each
way). Ids, times and the userName itself are taken out; everything else must be the same. The person new to
the product still gets the product's welcome, which is not B's to see.
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import httpx
import pytest

from projections import runner
from tests.conftest import Workspace, make_workspace
from tests.e2e.rules_helpers import admin_auth, admin_get, outbox, provisioned, user_body

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
WORKSPACE_STREAM = "<the workspace>"
VARYING_KEYS = {
    "position",
    "hash",
    "prev_hash",
    "recorded_at",
    "occurred_at",
    "request_id",
    "x-request-id",
    "at",
}


def scrubbed(value: Any, user_name: str) -> Any:
    """``value`` with what must differ between two people taken out: ids, times, the userName, positions
    and hashes (they follow from the log's length), and the version of the workspace's own stream (it grows
    with each provisioning; an event of a person's or a member's stream keeps its version)."""
    if isinstance(value, dict):
        varying = VARYING_KEYS | ({"stream_version"} if value.get("stream_id") == WORKSPACE_STREAM else set())
        return {k: "<varies>" if k in varying else scrubbed(v, user_name) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v, user_name) for v in value]
    if isinstance(value, str):
        return TIME_TEXT.sub("<time>", UUID_TEXT.sub("<id>", value.replace(user_name, "<user>")))
    return value


@pytest.fixture
async def pair(app: Any) -> tuple[Workspace, Workspace]:
    """A, where some people are members, and B, where they are provisioned next."""
    a = await make_workspace(app.state.store, name="A", domains=("example.com",), seats=300)
    b = await make_workspace(app.state.store, name="B", domains=("example.com",), seats=300)
    return a, b


def request_id(user_name: str) -> str:
    return "rq-" + user_name.replace("@", "-at-")


async def provision_in_b(client: httpx.AsyncClient, b: Workspace, user_name: str) -> httpx.Response:
    headers = {**b.auth, "X-Request-Id": request_id(user_name)}
    response = await client.post("/scim/v2/Users", json=user_body(user_name), headers=headers)
    assert response.status_code == 201, response.text
    return response


def workspace_named(value: Any, b: Workspace) -> Any:
    """``value`` with B's own id (the workspace stream's) replaced by a marker ``scrubbed`` knows."""
    if isinstance(value, dict):
        return {k: workspace_named(v, b) for k, v in value.items()}
    if isinstance(value, list):
        return [workspace_named(v, b) for v in value]
    return WORKSPACE_STREAM if value == str(b.id) else value


async def what_b_sees(client: httpx.AsyncClient, app: Any, b: Workspace, user_name: str) -> dict[str, Any]:
    """Every view B has of one provisioning, scrubbed of what must differ."""
    response = await provision_in_b(client, b, user_name)
    member_id = response.json()["id"]
    audit = await client.get(
        "/api/v1/audit",
        params={"request_id": request_id(user_name), "include": "internal", "limit": "1000"},
        headers=admin_auth(b),
    )
    assert audit.status_code == 200, audit.text
    entries = workspace_named(audit.json()["entries"], b)
    notifications = [r for r in await outbox(client, b, app.state.pool) if r["member_id"] == member_id]
    return {
        "response": scrubbed({**response.json(), "headers": dict(response.headers)}, user_name),
        "audit": [(e["type"], sorted(e["data"]), e["actor"]) for e in entries],
        "audit_entries": scrubbed(entries, user_name),
        "outbox": scrubbed(notifications, user_name),
        "member": scrubbed(await admin_get(client, b, f"/members/{member_id}"), user_name),
        "history": scrubbed(
            workspace_named(await admin_get(client, b, f"/members/{member_id}/history"), b), user_name
        ),
        "explain": scrubbed(
            workspace_named(await admin_get(client, b, f"/members/{member_id}/explain"), b), user_name
        ),
    }


@pytest.mark.parametrize("domain", ["example.com", "partner.test"], ids=["verified", "unverified"])
async def test_b_sees_the_same_whether_or_not_the_person_is_in_another_workspace(
    client: httpx.AsyncClient, app: Any, pair: tuple[Workspace, Workspace], domain: str
) -> None:
    a, b = pair
    await provisioned(client, a, f"kim@{domain}")  # known elsewhere; "lee" exists nowhere
    known = await what_b_sees(client, app, b, f"kim@{domain}")
    fresh = await what_b_sees(client, app, b, f"lee@{domain}")
    assert known["audit"] == fresh["audit"]
    for view in ("response", "audit_entries", "outbox", "member", "history", "explain"):
        assert known[view] == fresh[view], view
    expected = ["added"] if domain == "example.com" else ["invite"]
    assert [r["kind"] for r in known["outbox"]] == expected


async def test_the_person_new_to_the_product_is_still_welcomed_out_of_the_workspaces_sight(
    client: httpx.AsyncClient, app: Any, pair: tuple[Workspace, Workspace]
) -> None:
    a, b = pair
    await provisioned(client, a, "kim@example.com")
    await provision_in_b(client, b, "kim@example.com")
    await provision_in_b(client, b, "lee@example.com")
    await runner.catch_up(app.state.pool)
    welcomed = await app.state.pool.fetch(
        "SELECT workspace_id, recipient FROM outbox WHERE kind = 'welcome' ORDER BY position"
    )
    assert [(r["workspace_id"], r["recipient"]) for r in welcomed] == [
        (a.id, "kim@example.com"),  # her first membership anywhere
        (b.id, "lee@example.com"),
    ]
    assert "welcome" not in {r["kind"] for r in await outbox(client, b, app.state.pool)}


async def test_provisioning_takes_as_long_whether_or_not_the_person_is_in_another_workspace(
    client: httpx.AsyncClient, app: Any, pair: tuple[Workspace, Workspace]
) -> None:
    a, b = pair
    rounds = 100
    for n in range(rounds):
        await provisioned(client, a, f"known{n:03}@example.com")
    timings: dict[str, list[float]] = {"known": [], "fresh": []}
    for n in range(rounds):  # interleaved, so that drift (caches, autovacuum) hits both alike
        for kind in ("known", "fresh") if n % 2 else ("fresh", "known"):
            started = time.perf_counter()
            await provision_in_b(client, b, f"{kind}{n:03}@example.com")
            timings[kind].append(time.perf_counter() - started)
    known, fresh = statistics.median(timings["known"]), statistics.median(timings["fresh"])
    assert abs(known - fresh) < 0.3 * min(known, fresh) + 0.002, (known, fresh)
