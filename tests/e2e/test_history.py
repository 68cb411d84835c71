"""A member's and a team's history (issue 7): ``GET /api/v1/members/{id}/history`` and
``GET /api/v1/teams/{id}/history`` list the resource's events in log order, each as an audit entry with the
resource's state after it, computed from the log; pages follow a cursor."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from scimledger.audit import history
from tests.conftest import Workspace, make_workspace
from tests.e2e.history_helpers import Driver


@pytest.fixture
def drive(client: httpx.AsyncClient, app: Any, workspace: Workspace) -> Driver:
    return Driver(client, app.state.pool, workspace)


async def all_entries(drive: Driver, path: str, limit: int = 1000) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        body = await drive.get(path, **params)
        found += body["entries"]
        if body["next_cursor"] is None:
            return found
        params["cursor"] = body["next_cursor"]


async def test_a_members_history_shows_its_state_after_each_event(drive: Driver) -> None:
    boss = await drive.user("boss@example.com", roles=("admin",))
    bob = await drive.user("bob@example.com", request_id="create-bob")
    team = await drive.group("Design", bob, request_id="push-design")
    await drive.patch_user(bob, {"op": "replace", "path": "roles", "value": [{"value": "admin"}]})
    await drive.admin("PATCH", f"/members/{bob}", {"active": False}, request_id="suspend-bob")

    entries = await all_entries(drive, f"/members/{bob}/history")
    steps = [
        (e["type"], e["state"]["status"], e["state"]["role"], e["state"]["has_seat"], e["state"]["admin"])
        for e in entries
    ]
    assert steps == [
        ("SeatAssigned", None, None, True, False),
        ("MemberProvisioned", "active", "member", True, False),
        ("TeamMemberAdded", "active", "member", True, False),
        ("WorkspaceAdminGranted", "active", "member", True, True),
        ("MemberAttributesChanged", "active", "member", True, True),  # SCIM roles are attributes too
        ("MemberRoleChanged", "active", "admin", True, True),
        ("WorkspaceAdminRevoked", "active", "admin", True, False),
        ("SeatReleased", "active", "admin", False, False),
        ("MemberSuspended", "suspended", "admin", False, False),
        ("MemberSessionsRevoked", "suspended", "admin", False, False),
    ]
    assert [e["state"]["teams"] for e in entries][1:3] == [[], [team]]
    assert entries[1]["state"]["user_name"] == "bob@example.com"
    assert entries[1]["state"]["profile"]["userName"] == "bob@example.com"
    assert [e["request_id"] for e in entries if e["type"] == "MemberSuspended"] == ["suspend-bob"]
    assert entries[2]["request_id"] == "push-design"
    assert [e["position"] for e in entries] == sorted(e["position"] for e in entries)
    assert boss not in {e["stream_id"] for e in entries}


async def test_history_entries_are_the_audit_entries_of_the_log(drive: Driver) -> None:
    bob = await drive.user("bob@example.com", request_id="create-bob")
    [entry, *_] = [
        e for e in await all_entries(drive, f"/members/{bob}/history") if e["type"] != "SeatAssigned"
    ]
    logged = await drive.event("create-bob", "MemberProvisioned")
    assert (entry["position"], entry["stream_id"], entry["stream_version"]) == (logged["position"], bob, 1)
    assert entry["data"]["user_name"] == "bob@example.com"
    assert entry["actor"]["kind"] == "token" and entry["source"] == "scim"
    assert len(entry["hash"]) == 64


async def test_history_pages_follow_the_cursor_without_gaps_or_repeats(drive: Driver) -> None:
    bob = await drive.user("bob@example.com")
    for name in ("A", "B", "C"):
        await drive.group(name, bob)
    whole = await all_entries(drive, f"/members/{bob}/history")
    assert len(whole) == 5
    assert await all_entries(drive, f"/members/{bob}/history", limit=2) == whole
    first = await drive.get(f"/members/{bob}/history", limit=5)
    assert first["next_cursor"] is None


async def test_a_deprovisioned_members_history_is_kept(drive: Driver) -> None:
    bob = await drive.user("bob@example.com")
    team = await drive.group("Design", bob)
    await drive.scim("DELETE", f"/Users/{bob}")
    entries = await all_entries(drive, f"/members/{bob}/history")
    assert entries[-1]["state"]["status"] == "deprovisioned"
    assert entries[-1]["state"]["teams"] == []
    assert team in [t for e in entries for t in e["state"]["teams"]]


async def test_a_teams_history_shows_its_members_after_each_event(drive: Driver) -> None:
    ada, bob = await drive.user("ada@example.com"), await drive.user("bob@example.com")
    team = await drive.group("Design", ada)
    await drive.group_members(team, "add", bob)
    await drive.group_members(team, "remove", ada)
    await drive.scim(
        "PATCH",
        f"/Groups/{team}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Design Ops"}],
        },
    )
    entries = await all_entries(drive, f"/teams/{team}/history")
    steps = [
        (e["type"], e["state"]["name"], e["state"]["member_count"], e["state"]["members"]) for e in entries
    ]
    assert steps == [
        ("TeamCreated", "Design", 0, []),
        ("TeamMemberAdded", "Design", 1, [ada]),
        ("TeamMemberAdded", "Design", 2, sorted([ada, bob])),
        ("TeamMemberRemoved", "Design", 1, [bob]),
        ("TeamRenamed", "Design Ops", 1, [bob]),
    ]
    assert await all_entries(drive, f"/teams/{team}/history", limit=1) == entries


async def test_a_large_teams_history_counts_members_and_lists_them_only_when_few(
    drive: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above MEMBERS_IN_STATE members a state carries the count only, whatever the page boundaries."""
    monkeypatch.setattr(history, "MEMBERS_IN_STATE", 2)
    ids = [await drive.user(f"u{i}@example.com") for i in range(4)]
    team = await drive.group("Ops", *ids[:3])
    await drive.group_members(team, "remove", ids[0])
    await drive.group_members(team, "remove", ids[1])
    for limit in (1000, 1, 2, 3):
        entries = await all_entries(drive, f"/teams/{team}/history", limit=limit)
        counts = [(e["state"]["member_count"], len(e["state"].get("members", "-"))) for e in entries]
        assert counts == [(0, 0), (1, 1), (2, 2), (3, 1), (2, 2), (1, 1)], limit


async def test_unknown_and_foreign_ids_are_404(drive: Driver, app: Any) -> None:
    other = Driver(
        drive.client,
        drive.pool,
        await make_workspace(app.state.store, name="Other", seats=5, domains=("example.com",)),
    )
    theirs_member = await other.user("eve@example.com")
    theirs_team = await other.group("Theirs", theirs_member)
    mine = await drive.user("bob@example.com")
    for path in (
        f"/members/{theirs_member}/history",
        f"/teams/{theirs_team}/history",
        f"/members/{uuid4()}/history",
        f"/teams/{uuid4()}/history",
        "/members/not-a-uuid/history",
        f"/teams/{mine}/history",  # a member's id is no team's
    ):
        response = await drive.admin("GET", path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"cursor": "-1"}, {"cursor": "x1"}])
async def test_bad_page_parameters_are_400(drive: Driver, params: dict[str, str]) -> None:
    bob = await drive.user("bob@example.com")
    response = await drive.admin("GET", f"/members/{bob}/history", **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_command"


async def test_history_is_decoded_from_the_hashed_bytes_not_the_jsonb_copy(
    drive: Driver, database_url: str
) -> None:
    """``data`` only selects rows: a row whose jsonb copy was altered to name bob is not bob's, and what is
    shown of bob's own events comes from ``state``."""
    ada, bob = await drive.user("ada@example.com"), await drive.user("bob@example.com")
    before = await all_entries(drive, f"/members/{bob}/history")
    db = await asyncpg.connect(database_url)  # the tests' superuser: the log's triggers can be disabled
    try:
        await db.execute("SET session_replication_role = replica")
        await db.execute(
            """UPDATE events SET data = jsonb_set(data, '{member_id}', to_jsonb($2::text))
                WHERE event_type = 'SeatAssigned' AND data->>'member_id' = $1""",
            ada,
            bob,
        )
        await db.execute(
            """UPDATE events SET data = jsonb_set(data, '{user_name}', '"mallory@example.com"')
                WHERE stream_id = $1::uuid""",
            bob,
        )
    finally:
        await db.close()
    assert await all_entries(drive, f"/members/{bob}/history") == before
    assert before[1]["data"]["user_name"] == "bob@example.com"
