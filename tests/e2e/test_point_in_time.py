"""Point-in-time answers from the log (issue 7): ``GET /api/v1/members/{id}?as_of=T``,
``/teams/{id}/members?as_of=T``, ``/admins?as_of=T`` and ``/seats?as_of=T``, against real PostgreSQL through
the app. Times come from the log (``recorded_at`` of the events a request appended), never from sleeping."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from scimledger.audit import timeline
from scimledger.domain import Workspace as WorkspaceAggregate
from scimledger.domain.base import replay
from tests.conftest import Workspace, make_workspace
from tests.e2e.history_helpers import Driver
from tests.e2e.test_openapi import documented


@pytest.fixture
def drive(client: httpx.AsyncClient, app: Any, workspace: Workspace) -> Driver:
    return Driver(client, app.state.pool, workspace)


def role(value: str) -> dict[str, Any]:
    return {"op": "replace", "path": "roles", "value": [{"value": value}]}


# --- a member at T ------------------------------------------------------------------------------------------
async def test_a_member_as_of_a_past_time_is_as_it_was_then(drive: Driver) -> None:
    bob = await drive.user("bob@example.com")
    team = await drive.group("Design", bob)
    joined = await drive.now()
    await drive.patch_user(bob, role("admin"))
    await drive.user("boss@example.com", roles=("admin",))
    await drive.admin("PATCH", f"/members/{bob}", {"active": False})
    await drive.group_members(team, "remove", bob)

    then = await drive.get(f"/members/{bob}", as_of=joined)
    today = await drive.get(f"/members/{bob}")
    assert (then["role"], then["status"], then["has_seat"]) == ("member", "active", True)
    assert then["teams"] == [{"id": team, "name": "Design"}]
    assert then["as_of"] == joined
    assert (today["role"], today["status"], today["has_seat"], today["teams"]) == (
        "admin",
        "suspended",
        False,
        [],
    )


async def test_a_member_as_of_now_is_todays_view(drive: Driver) -> None:
    bob = await drive.user("bob@example.com", roles=("admin",))
    await drive.scim(
        "PATCH",
        f"/Users/{bob}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Bob B."}],
        },
    )
    await drive.group("Ops", bob)
    await drive.group("Dev", bob)
    now = await drive.now()
    as_of = await drive.get(f"/members/{bob}", as_of=now)
    assert as_of.pop("as_of") == now
    assert as_of == await drive.get(f"/members/{bob}")


async def test_each_as_of_answer_follows_the_events_up_to_that_time(drive: Driver) -> None:
    bob = await drive.user("bob@example.com")
    times = [await drive.now()]
    await drive.patch_user(bob, role("admin"))
    times.append(await drive.now())
    await drive.patch_user(bob, {"op": "replace", "path": "userName", "value": "robert@example.com"})
    times.append(await drive.now())
    await drive.user("boss@example.com", roles=("admin",))
    await drive.admin("PATCH", f"/members/{bob}", {"role": "member"})
    times.append(await drive.now())
    seen = [await drive.get(f"/members/{bob}", as_of=t) for t in times]
    assert [(m["user_name"], m["role"]) for m in seen] == [
        ("bob@example.com", "member"),
        ("bob@example.com", "admin"),
        ("robert@example.com", "admin"),
        ("robert@example.com", "member"),
    ]


async def test_a_time_before_the_member_existed_is_404(drive: Driver) -> None:
    early = "2001-01-01T00:00:00Z"
    bob = await drive.user("bob@example.com")
    response = await drive.admin("GET", f"/members/{bob}", as_of=early)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_deprovisioned_member_is_found_as_it_was_before(drive: Driver) -> None:
    bob = await drive.user("bob@example.com")
    alive = await drive.now()
    await drive.scim("DELETE", f"/Users/{bob}")
    assert (await drive.get(f"/members/{bob}"))["status"] == "deprovisioned"
    assert (await drive.get(f"/members/{bob}", as_of=alive))["status"] == "active"


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2025-03-01",
        "2025-03-01T00:00:00",
        "2025-13-01T00:00:00Z",
        "2025-03-01T25:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "2025-03-01T00:00:00Z junk",
        "\uff12\uff10\uff12\uff15-03-01T00:00:00Z",  # full-width digits
    ],
)
async def test_an_as_of_that_is_no_rfc3339_date_time_is_400(drive: Driver, value: str) -> None:
    bob = await drive.user("bob@example.com")
    for path in (f"/members/{bob}", "/admins", "/seats", f"/members/{bob}/explain"):
        response = await drive.admin("GET", path, as_of=value)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_command"


@pytest.mark.parametrize(
    "value", ["2099-01-01T00:00:00z", "2099-01-01t00:00:00.123456789+02:00", "2099-01-01T00:00:00 02:00"]
)
async def test_rfc3339_variants_are_accepted(drive: Driver, value: str) -> None:
    """Lower-case t/z, nanoseconds, and an unencoded "+" that the query string turned into a space."""
    bob = await drive.user("bob@example.com")
    assert (await drive.get(f"/members/{bob}", as_of=value))["id"] == bob


async def test_another_workspaces_member_is_404_at_any_time(drive: Driver, app: Any) -> None:
    other = await make_workspace(app.state.store, name="Other", domains=("example.com",), seats=5)
    theirs = await Driver(drive.client, drive.pool, other).user("eve@example.com")
    for path in (f"/members/{theirs}", f"/members/{theirs}/explain"):
        response = await drive.admin("GET", path, as_of="2099-01-01T00:00:00Z")
        assert response.status_code == 404


async def test_as_of_answers_come_from_the_log_not_the_read_model(drive: Driver, database_url: str) -> None:
    bob = await drive.user("bob@example.com")
    team = await drive.group("Design", bob)
    now = await drive.now()
    before = {
        "member": await drive.get(f"/members/{bob}", as_of=now),
        "team": await drive.get(f"/teams/{team}/members", as_of=now),
        "seats": await drive.get("/seats", as_of=now),
    }
    db = await asyncpg.connect(database_url)  # the tests' superuser
    try:
        await db.execute("UPDATE scim_users SET role = 'admin', status = 'suspended', has_seat = false")
        await db.execute("DELETE FROM scim_group_members")
        await db.execute("UPDATE workspaces SET seats_total = 0, seats_assigned = 0")
    finally:
        await db.close()
    assert (await drive.get(f"/members/{bob}"))["status"] == "suspended"  # today's view reads the tables
    assert await drive.get(f"/members/{bob}", as_of=now) == before["member"]
    assert await drive.get(f"/teams/{team}/members", as_of=now) == before["team"]
    assert await drive.get("/seats", as_of=now) == before["seats"]


# --- a team's members at T ------------------------------------------------------------------------------
async def test_team_members_as_of_follow_adds_and_removes(drive: Driver) -> None:
    ada, bob, cy = [await drive.user(f"{n}@example.com") for n in ("ada", "bob", "cy")]
    before = await drive.now()
    team = await drive.group("Design", ada, request_id="create-design")
    t1 = await drive.now()
    await drive.group_members(team, "add", bob, cy, request_id="add-two")
    t2 = await drive.now()
    await drive.group_members(team, "remove", ada, request_id="remove-ada")
    t3 = await drive.now()
    await drive.group_members(team, "add", ada, request_id="ada-back")

    async def members(at: str | None) -> list[tuple[str, str]]:
        body = await drive.get(f"/teams/{team}/members", **({"as_of": at} if at else {}))
        return [(m["user_name"], m["added"]["request_id"]) for m in body["members"]]

    assert await members(before) == []
    assert await members(t1) == [("ada@example.com", "create-design")]
    assert sorted(await members(t2)) == sorted(
        [("ada@example.com", "create-design"), ("bob@example.com", "add-two"), ("cy@example.com", "add-two")]
    )
    assert sorted(await members(t3)) == [("bob@example.com", "add-two"), ("cy@example.com", "add-two")]
    assert sorted(await members(None)) == sorted(
        [("ada@example.com", "ada-back"), ("bob@example.com", "add-two"), ("cy@example.com", "add-two")]
    )


async def test_team_members_without_as_of_are_todays_members(drive: Driver) -> None:
    ids = [await drive.user(f"u{i}@example.com") for i in range(3)]
    team = await drive.group("Ops", *ids)
    body = await drive.get(f"/teams/{team}/members")
    today = await drive.pool.fetch("SELECT member_id FROM scim_group_members WHERE group_id = $1", UUID(team))
    assert body["as_of"] is None
    assert {m["id"] for m in body["members"]} == {str(r["member_id"]) for r in today}
    assert all(m["added"]["type"] == "TeamMemberAdded" for m in body["members"])


async def test_team_members_are_paginated_in_the_order_they_joined(drive: Driver) -> None:
    ids = [await drive.user(f"u{i}@example.com") for i in range(5)]
    team = await drive.group("Ops")
    for member in ids:
        await drive.group_members(team, "add", member)
    seen: list[str] = []
    cursor = None
    while True:
        body = await drive.get(f"/teams/{team}/members", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [m["id"] for m in body["members"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_an_unknown_or_foreign_team_is_404(drive: Driver, app: Any) -> None:
    other = await make_workspace(app.state.store, name="Other", domains=("example.com",), seats=5)
    theirs = await Driver(drive.client, drive.pool, other).group("Theirs")
    for team in (theirs, str(uuid4())):
        response = await drive.admin("GET", f"/teams/{team}/members", as_of="2099-01-01T00:00:00Z")
        assert response.status_code == 404


# --- admins at T ----------------------------------------------------------------------------------------
async def test_admins_before_between_and_after_a_grant_and_a_revocation(drive: Driver) -> None:
    boss = await drive.user("boss@example.com", roles=("admin",), request_id="make-boss")
    bob = await drive.user("bob@example.com")
    before = await drive.now()
    await drive.patch_user(bob, role("admin"), request_id="promote-bob")
    between = await drive.now()
    revoke = await drive.admin("PATCH", f"/members/{bob}", {"role": "member"}, request_id="demote-bob")
    assert revoke.status_code == 200
    after = await drive.now()

    async def admins(at: str) -> dict[str, dict[str, Any]]:
        body = await drive.get("/admins", as_of=at)
        assert body["as_of"] == at
        return {a["user_name"]: a["granted"] for a in body["admins"]}

    assert list(await admins(before)) == ["boss@example.com"]
    made = await admins(between)
    assert list(made) == ["boss@example.com", "bob@example.com"]
    assert made["bob@example.com"]["type"] == "WorkspaceAdminGranted"
    assert made["bob@example.com"]["request_id"] == "promote-bob"
    assert made["bob@example.com"]["source"] == "scim"
    assert (made["bob@example.com"]["actor"]["kind"], made["bob@example.com"]["actor"]["name"]) == (
        "token",
        "IdP token",
    )
    assert made["boss@example.com"]["request_id"] == "make-boss"
    assert list(await admins(after)) == ["boss@example.com"]
    assert [a["member_id"] for a in (await drive.get("/admins"))["admins"]] == [boss]


async def test_admins_as_of_match_the_workspace_aggregate_replayed_to_that_time(drive: Driver) -> None:
    ids = [await drive.user(f"a{i}@example.com", roles=("admin",)) for i in range(3)]
    await drive.admin("PATCH", f"/members/{ids[0]}", {"role": "member"})
    await drive.admin("PATCH", f"/members/{ids[1]}", {"active": False})
    await drive.admin("PATCH", f"/members/{ids[1]}", {"active": True})
    rows = await drive.pool.fetch(
        "SELECT * FROM events WHERE stream_id = $1 ORDER BY stream_version", drive.ws.id
    )
    for row in rows:
        at = row["recorded_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        folded = replay(timeline.decode(r) for r in rows if r["recorded_at"] <= row["recorded_at"])
        assert isinstance(folded, WorkspaceAggregate)
        body = await drive.get("/admins", as_of=at)
        assert [a["member_id"] for a in body["admins"]] == folded.admins
        seats = await drive.get("/seats", as_of=at)
        assert (seats["total"], seats["assigned"]) == (folded.seats_total, folded.seats_assigned)


# --- seats at T -----------------------------------------------------------------------------------------
async def test_seats_as_of_count_and_name_the_holders(drive: Driver) -> None:
    start = await drive.now()
    ada = await drive.user("ada@example.com", request_id="add-ada")
    bob = await drive.user("bob@example.com", request_id="add-bob")
    two = await drive.now()
    await drive.admin("PATCH", f"/members/{ada}", {"active": False}, request_id="suspend-ada")
    await drive.admin("POST", "/seats", {"count": 5})
    later = await drive.now()

    at_start = await drive.get("/seats", as_of=start)
    assert (at_start["total"], at_start["assigned"], at_start["available"], at_start["holders"]) == (
        100,
        0,
        100,
        [],
    )
    at_two = await drive.get("/seats", as_of=two)
    assert (at_two["total"], at_two["assigned"], at_two["available"]) == (100, 2, 98)
    assert [(h["member_id"], h["assigned"]["request_id"]) for h in at_two["holders"]] == [
        (ada, "add-ada"),
        (bob, "add-bob"),
    ]
    at_later = await drive.get("/seats", as_of=later)
    assert (at_later["total"], at_later["assigned"], at_later["available"]) == (105, 1, 104)
    assert [h["user_name"] for h in at_later["holders"]] == ["bob@example.com"]
    now = await drive.get("/seats")
    workspace = await drive.get("/workspace")
    assert {k: now[k] for k in ("total", "assigned", "available")} == workspace["seats"]


async def test_seat_holders_are_paginated(drive: Driver) -> None:
    ids = [await drive.user(f"u{i}@example.com") for i in range(5)]
    first = await drive.get("/seats", limit=3)
    rest = await drive.get("/seats", limit=3, cursor=first["next_cursor"])
    assert rest["next_cursor"] is None
    assert [h["member_id"] for h in first["holders"] + rest["holders"]] == ids


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"limit": "x"}, {"cursor": "abc"}])
async def test_a_bad_page_parameter_is_400(drive: Driver, params: dict[str, str]) -> None:
    response = await drive.admin("GET", "/seats", **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_command"


async def test_another_workspace_sees_only_its_own_admins_and_seats(drive: Driver, app: Any) -> None:
    await drive.user("boss@example.com", roles=("admin",))
    other = Driver(drive.client, drive.pool, await make_workspace(app.state.store, name="Other", seats=3))
    assert (await other.get("/admins"))["admins"] == []
    seats = await other.get("/seats")
    assert (seats["total"], seats["assigned"], seats["holders"]) == (3, 0, [])


# --- "at T" is the log prefix up to T -------------------------------------------------------------------
async def test_position_at_is_the_last_event_recorded_at_or_before_the_time(drive: Driver) -> None:
    for i in range(4):
        await drive.user(f"u{i}@example.com")
    rows = await drive.pool.fetch("SELECT position, recorded_at FROM events ORDER BY position")
    probes: list[datetime] = [rows[0]["recorded_at"].replace(year=2000)]
    probes += [r["recorded_at"] for r in rows] + [rows[-1]["recorded_at"].replace(year=2999)]
    for at in probes:
        expected = max((r["position"] for r in rows if r["recorded_at"] <= at), default=0)
        assert await timeline.position_at(drive.pool, at) == expected


# --- the OpenAPI document describes every answer ----------------------------------------------------------
async def test_every_answer_matches_the_openapi_document(drive: Driver) -> None:
    await drive.user("boss@example.com", roles=("admin",))
    bob = await drive.user("bob@example.com")
    team = await drive.group("Design", bob)
    now = await drive.now()
    api = "/api/v1"
    calls: list[tuple[str, str, dict[str, Any]]] = [
        (f"{api}/members/{{id}}", bob, {}),
        (f"{api}/members/{{id}}", bob, {"as_of": now}),
        (f"{api}/members/{{id}}", bob, {"as_of": "2001-01-01T00:00:00Z"}),
        (f"{api}/members/{{id}}", bob, {"as_of": "bad"}),
        (f"{api}/members/{{id}}/history", bob, {"limit": 1}),
        (f"{api}/members/{{id}}/explain", bob, {}),
        (f"{api}/teams/{{id}}/history", team, {}),
        (f"{api}/teams/{{id}}/members", team, {"as_of": now}),
        (f"{api}/teams/{{id}}/members", team, {"limit": 0}),
        (f"{api}/admins", "", {"as_of": now}),
        (f"{api}/admins", "", {}),
        (f"{api}/seats", "", {"limit": 1}),
    ]
    for template, resource, params in calls:
        response = await drive.client.get(
            template.format(id=resource), params=params, headers=drive.admin_auth
        )
        documented(response, "get", template)
