"""``GET /api/v1/audit`` (issue 7, "Audit API"): every filter, order, internal events, cursor pagination
while events are appended, the 400s, isolation between workspaces, no secrets, and entries rendered from the
bytes the hash chain covers (never from the ``data`` jsonb copy).

Expected answers are computed straight from the log with SQL (``data`` may select rows in a test, as in
the app); every response is also held to the OpenAPI document.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest

from scimledger.audit import entries
from tests.conftest import Workspace, make_workspace
from tests.e2e.rules_helpers import admin_auth, patch_body, provisioned, push_group, replace
from tests.e2e.test_openapi import documented

AUDIT = "/api/v1/audit"
Params = dict[str, str] | list[tuple[str, str]]


@dataclass(frozen=True)
class Story:
    """Ada (admin) and Bob provisioned by the IdP token, Bob pushed into team Eng, then made an admin by
    the admin key, which also issued a second token."""

    ada: str
    bob: str
    team: str
    token_id: str
    admin_key_id: str
    issued_secret: str


@pytest.fixture
async def story(client: httpx.AsyncClient, workspace: Workspace, app: Any) -> Story:
    ada = await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    bob = await provisioned(client, workspace, "bob@example.com")
    pushed = await push_group(client, workspace, "Eng", bob)
    assert pushed.status_code == 201, pushed.text
    promoted = await client.patch(
        f"/api/v1/members/{bob}", json={"role": "admin"}, headers=admin_auth(workspace)
    )
    assert promoted.status_code == 200, promoted.text
    issued = await client.post("/api/v1/tokens", json={"name": "Okta"}, headers=admin_auth(workspace))
    assert issued.status_code == 201, issued.text
    pool: asyncpg.Pool = app.state.pool
    token_id = await pool.fetchval(
        "SELECT id FROM tokens WHERE workspace_id = $1 AND name = 'IdP token'", workspace.id
    )
    key_id = await pool.fetchval("SELECT id FROM admin_keys WHERE workspace_id = $1", workspace.id)
    return Story(
        ada=ada,
        bob=bob,
        team=str(pushed.json()["id"]),
        token_id=str(token_id),
        admin_key_id=str(key_id),
        issued_secret=str(issued.json()["token"]),
    )


def query(params: Params | None) -> tuple[tuple[str, str], ...]:
    return tuple(params.items()) if isinstance(params, dict) else tuple(params or ())


async def get_page(client: httpx.AsyncClient, ws: Workspace, params: Params | None = None) -> dict[str, Any]:
    response = await client.get(AUDIT, params=query(params), headers=admin_auth(ws))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = documented(response, "get", AUDIT)
    return body


async def get_all(
    client: httpx.AsyncClient, ws: Workspace, params: Params | None = None
) -> list[dict[str, Any]]:
    """Every entry, following ``next_cursor`` page by page."""
    pairs = list(query(params))
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await get_page(client, ws, [*pairs, *([("cursor", cursor)] if cursor else [])])
        found += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def positions(found: list[dict[str, Any]]) -> list[int]:
    return [e["position"] for e in found]


async def expected(
    app: Any, ws: Workspace, where: str = "true", *args: Any, internal: bool = False
) -> list[int]:
    """Positions of the workspace's events matching ``where`` ($2...), in order, straight from the log."""
    hide = "" if internal else f"AND event_type <> ALL(${len(args) + 2}::text[])"
    extra = [] if internal else [sorted(entries.INTERNAL_TYPES)]
    rows = await app.state.pool.fetch(
        f"SELECT position FROM events WHERE workspace_id = $1 AND ({where}) {hide} ORDER BY position",
        ws.id,
        *args,
        *extra,
    )
    return [r["position"] for r in rows]


# --- filters ------------------------------------------------------------------------------------------------
async def test_without_filters_the_workspaces_events_are_listed_oldest_first(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    found = await get_all(client, workspace)
    assert positions(found) == await expected(app, workspace)
    assert found[0]["type"] == "WorkspaceCreated"


async def test_member_picks_up_its_stream_and_the_seat_admin_and_team_events_naming_it(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    found = await get_all(client, workspace, {"member": story.bob})
    where = "stream_id = $2 OR data->>'member_id' = $3"
    assert positions(found) == await expected(app, workspace, where, story.bob, story.bob)
    assert {e["type"] for e in found} >= {
        "MemberProvisioned",
        "SeatAssigned",
        "TeamMemberAdded",
        "MemberRoleChanged",
        "WorkspaceAdminGranted",
    }
    assert story.ada not in str(found)


async def test_team_picks_up_its_stream_and_its_memberships(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    found = await get_all(client, workspace, {"team": story.team})
    where = "stream_id = $2 OR data->>'team_id' = $3"
    assert positions(found) == await expected(app, workspace, where, story.team, story.team)
    assert [e["type"] for e in found] == ["TeamCreated", "TeamMemberAdded"]


@pytest.mark.parametrize("who", ["token_id", "admin_key_id"])
async def test_actor_is_a_token_or_an_admin_key(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story, who: str
) -> None:
    actor = getattr(story, who)
    found = await get_all(client, workspace, {"actor": actor})
    assert positions(found) == await expected(app, workspace, "metadata->'actor'->>'id' = $2", actor)
    assert found and {e["actor"]["id"] for e in found} == {actor}
    assert {e["actor"]["kind"] for e in found} == {"token" if who == "token_id" else "admin"}


@pytest.mark.parametrize("source", ["scim", "admin", "system"])
async def test_source(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story, source: str
) -> None:
    found = await get_all(client, workspace, {"source": source})
    assert found
    assert positions(found) == await expected(app, workspace, "metadata->>'source' = $2", source)


async def test_type_is_repeatable(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    wanted = ["SeatAssigned", "TeamCreated", "WorkspaceAdminGranted"]
    found = await get_all(client, workspace, [("type", t) for t in wanted])
    assert positions(found) == await expected(app, workspace, "event_type = ANY($2::text[])", wanted)
    assert {e["type"] for e in found} == set(wanted)


async def boundary(client: httpx.AsyncClient, ws: Workspace) -> tuple[str, list[dict[str, Any]]]:
    """A recorded_at that some events share and others precede, and every entry."""
    found = await get_all(client, ws)
    times = sorted({e["recorded_at"] for e in found})
    assert len(times) >= 3
    return times[len(times) // 2], found


async def test_since_is_inclusive_and_until_exclusive(
    client: httpx.AsyncClient, workspace: Workspace, story: Story
) -> None:
    at, everything = await boundary(client, workspace)
    since = await get_all(client, workspace, {"since": at})
    until = await get_all(client, workspace, {"until": at})
    assert since == [e for e in everything if e["recorded_at"] >= at]
    assert until == [e for e in everything if e["recorded_at"] < at]
    assert since[0]["recorded_at"] == at


async def test_since_accepts_any_offset_and_an_unencoded_plus(
    client: httpx.AsyncClient, workspace: Workspace, story: Story
) -> None:
    at, _ = await boundary(client, workspace)
    in_utc = await get_all(client, workspace, {"since": at})
    instant = datetime.fromisoformat(at)
    east = instant.astimezone(timezone(timedelta(hours=2))).isoformat()  # ...T06:..+02:00
    assert await get_all(client, workspace, {"since": east}) == in_utc
    raw = await client.get(f"{AUDIT}?since={instant.isoformat()}", headers=admin_auth(workspace))
    assert "+00:00" in str(raw.request.url)  # sent unencoded: the server reads a space
    assert raw.status_code == 200, raw.text
    assert raw.json()["entries"] == in_utc


async def test_request_id_finds_exactly_the_events_of_that_request(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    body = {"userName": "cy@example.com"}
    headers = {**workspace.auth, "X-Request-Id": "okta-req-42"}
    created = await client.post("/scim/v2/Users", json=body, headers=headers)
    assert created.status_code == 201, created.text
    found = await get_all(client, workspace, {"request_id": "okta-req-42"})
    assert positions(found) == await expected(app, workspace, "metadata->>'request_id' = 'okta-req-42'")
    assert {e["type"] for e in found} >= {"MemberProvisioned", "SeatAssigned"}
    assert {e["request_id"] for e in found} == {"okta-req-42"}


async def test_a_generated_request_id_is_the_one_answered_and_finds_the_requests_events(
    client: httpx.AsyncClient, workspace: Workspace, story: Story
) -> None:
    response = await client.patch(
        f"/scim/v2/Users/{story.ada}",
        json=patch_body(replace("displayName", "Ada L.")),
        headers=workspace.auth,
    )
    assert response.status_code == 200, response.text
    found = await get_all(client, workspace, {"request_id": response.headers["x-request-id"]})
    assert [(e["type"], e["stream_id"]) for e in found] == [("MemberAttributesChanged", story.ada)]


async def test_order_desc_is_newest_first(
    client: httpx.AsyncClient, workspace: Workspace, story: Story
) -> None:
    ascending = await get_all(client, workspace, {"limit": "4"})
    descending = await get_all(client, workspace, {"order": "desc", "limit": "4"})
    assert descending == ascending[::-1]


async def test_internal_events_are_listed_only_with_include_internal(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    shown = await get_all(client, workspace)
    everything = await get_all(client, workspace, {"include": "internal"})
    assert not {e["type"] for e in shown} & entries.INTERNAL_TYPES
    assert "UniquenessClaimed" in {e["type"] for e in everything}
    assert positions(everything) == await expected(app, workspace, internal=True)


async def test_an_empty_value_is_no_filter(
    client: httpx.AsyncClient, workspace: Workspace, story: Story
) -> None:
    blank = {name: "" for name in ("member", "team", "actor", "source", "type", "since", "request_id")}
    assert await get_all(client, workspace, blank) == await get_all(client, workspace)


# --- pages and cursors --------------------------------------------------------------------------------------
async def test_limit_pages_through_everything_and_the_last_page_has_no_cursor(
    client: httpx.AsyncClient, workspace: Workspace, story: Story
) -> None:
    everything = (await get_page(client, workspace, {"limit": "1000"}))["entries"]
    first = await get_page(client, workspace, {"limit": "3"})
    assert first["entries"] == everything[:3] and first["next_cursor"]
    assert await get_all(client, workspace, {"limit": "3"}) == everything
    assert (await get_page(client, workspace, {"limit": str(len(everything))}))["next_cursor"] is None
    assert len((await get_page(client, workspace))["entries"]) == min(len(everything), 100)


async def test_a_cursor_reused_with_other_filters_is_400(
    client: httpx.AsyncClient, workspace: Workspace, story: Story
) -> None:
    cursor = (await get_page(client, workspace, {"source": "scim", "limit": "2"}))["next_cursor"]
    for other in ({"source": "admin"}, {"source": "scim", "order": "desc"}, {}):
        response = await client.get(AUDIT, params={**other, "cursor": cursor}, headers=admin_auth(workspace))
        assert response.status_code == 400, other
        assert documented(response, "get", AUDIT)["error"]["code"] == "invalid_command"
    same = await client.get(AUDIT, params={"source": "scim", "cursor": cursor}, headers=admin_auth(workspace))
    assert same.status_code == 200  # the limit may change between pages


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_pages_never_skip_or_repeat_an_event_while_events_are_appended(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story, order: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    started = asyncio.Event()

    async def append() -> None:
        for n in range(25):
            await provisioned(client, workspace, f"writer{n}@example.com")
            started.set()

    async def read() -> tuple[list[int], list[int], int]:
        await started.wait()
        committed = await expected(app, workspace)  # before the first page
        found: list[int] = []
        cursor = None
        while True:
            params = {"order": order, "limit": "3", **({"cursor": cursor} if cursor else {})}
            page = await get_page(client, workspace, params)
            found += positions(page["entries"])
            cursor = page["next_cursor"]
            if cursor is None:
                return committed, found, await pool.fetchval("SELECT max(position) FROM events")
            await asyncio.sleep(0.02)  # a client between pages: the writer goes on meanwhile

    _, (committed, found, head_after_reading) = await asyncio.gather(append(), read())
    assert head_after_reading > committed[-1]  # events were appended while the pages were read
    assert len(found) == len(set(found))
    assert found == sorted(found, reverse=order == "desc")
    assert set(committed) <= set(found)
    every = await expected(app, workspace)
    if order == "asc":  # nothing skipped up to the last event read
        assert found == [p for p in every if p <= found[-1]]
    else:  # from the newest at the first page down to the first event
        assert found == [p for p in reversed(every) if p <= found[0]]


# --- refusals -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"member": "not-a-uuid"},
        {"team": "123"},
        {"source": "ldap"},
        {"order": "newest"},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"limit": "-5"},
        {"since": "yesterday"},
        {"since": "2025-03-01"},
        {"since": "2025-03-01T00:00:00"},
        {"until": "2025-13-01T00:00:00Z"},
        {"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"},
        {"include": "everything"},
        {"type": "Seat Assigned"},
        {"request_id": "has space"},
        {"actor": "x" * 257},
        {"actor": "nul\x00"},
        {"cursor": "garbage"},
        {"colour": "red"},
        [("order", "asc"), ("order", "desc")],
    ],
)
async def test_a_value_that_cannot_be_used_is_400(
    client: httpx.AsyncClient, workspace: Workspace, params: Params
) -> None:
    response = await client.get(AUDIT, params=query(params), headers=admin_auth(workspace))
    assert response.status_code == 400, response.text
    body = documented(response, "get", AUDIT)
    assert body["error"]["code"] == "invalid_command"
    assert not any(word in body["error"]["message"] for word in ("Traceback", "asyncpg", "SELECT"))


async def test_a_cursor_of_another_workspace_is_400(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    other = await make_workspace(app.state.store, name="Other")
    cursor = (await get_page(client, workspace, {"limit": "1"}))["next_cursor"]
    response = await client.get(AUDIT, params={"limit": "1", "cursor": cursor}, headers=admin_auth(other))
    assert response.status_code == 400


async def test_another_workspaces_key_sees_none_of_this_workspaces_events(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    other = await make_workspace(app.state.store, name="Other", domains=("example.com",), seats=5)
    theirs = await get_all(client, other, {"include": "internal"})
    ours = set(positions(await get_all(client, workspace, {"include": "internal"})))
    assert theirs and not set(positions(theirs)) & ours
    for probe in ({"member": story.bob}, {"team": story.team}, {"actor": story.token_id}):
        assert await get_all(client, other, probe) == []


# --- what an entry shows ------------------------------------------------------------------------------------
async def test_no_secret_appears_in_any_entry(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, story: Story
) -> None:
    response = await client.get(
        AUDIT, params={"include": "internal", "limit": "1000"}, headers=admin_auth(workspace)
    )
    hashes = await app.state.pool.fetch(
        """SELECT encode(secret_hash, 'hex') AS h FROM tokens WHERE workspace_id = $1
           UNION ALL SELECT encode(secret_hash, 'hex') FROM admin_keys WHERE workspace_id = $1""",
        workspace.id,
    )
    secrets = [story.issued_secret, workspace.token, workspace.admin_key, *(r["h"] for r in hashes)]
    assert len(secrets) == 6
    assert not [s for s in secrets if s in response.text]
    issued = [e for e in response.json()["entries"] if e["type"] in ("TokenIssued", "AdminKeyIssued")]
    assert len(issued) == 3
    assert {e["data"]["secret_hash"] for e in issued} == {entries.REDACTED}


async def test_an_entry_shows_the_hashed_bytes_not_the_jsonb_copy(
    client: httpx.AsyncClient, workspace: Workspace, story: Story, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)  # the owner, a superuser: may disable the log's triggers
    try:
        await conn.execute("SET session_replication_role = replica")
        changed = await conn.execute(
            """UPDATE events SET data = jsonb_set(data, '{user_name}', '"mallory@evil.test"')
                WHERE stream_id = $1 AND event_type = 'MemberProvisioned'""",
            story.bob,
        )
    finally:
        await conn.close()
    assert changed == "UPDATE 1"
    found = await get_all(client, workspace, {"member": story.bob, "type": "MemberProvisioned"})
    assert [e["data"]["user_name"] for e in found] == ["bob@example.com"]
