"""Concurrent SCIM writes on real PostgreSQL: uniqueness holds and losers append nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import Workspace


def varied_case(text: str, n: int) -> str:
    return "".join(c.upper() if (n >> (i % 8)) & 1 else c.lower() for i, c in enumerate(text))


async def test_50_concurrent_posts_of_one_user_name_give_one_201_and_49_409(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    async def post(n: int) -> httpx.Response:
        body = {"userName": varied_case("race@example.com", n), "externalId": f"ext-{n}"}
        return await client.post("/scim/v2/Users", json=body, headers=workspace.auth)

    responses = await asyncio.gather(*(post(n) for n in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 49, statuses
    assert all(r.json()["scimType"] == "uniqueness" for r in responses if r.status_code == 409)
    pool = app.state.pool
    created = await pool.fetchval(
        "SELECT count(*) FROM events WHERE event_type IN ('MemberProvisioned', 'MemberLinked')"
    )
    assert created == 1
    assert await pool.fetchval("SELECT count(*) FROM scim_users") == 1


async def test_a_provisioning_appends_the_member_and_its_seat_only(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    """Issue 9: uniqueness of userName and externalId is the read model's unique index, in the append's
    own transaction, so no UniquenessClaimed events; what an auditor cares about stays."""
    before = await app.state.pool.fetchval("SELECT count(*) FROM events")
    body = {"userName": "one@example.com", "externalId": "ext-one"}
    assert (await client.post("/scim/v2/Users", json=body, headers=workspace.auth)).status_code == 201
    rows = await app.state.pool.fetch("SELECT event_type FROM events ORDER BY position OFFSET $1", before)
    assert sorted(r[0] for r in rows) == ["MemberProvisioned", "SeatAssigned"]


async def test_an_external_id_held_by_another_member_is_409_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    first = {"userName": "first@example.com", "externalId": "shared"}
    assert (await client.post("/scim/v2/Users", json=first, headers=workspace.auth)).status_code == 201
    before = await app.state.pool.fetchval("SELECT count(*) FROM events")
    second = {"userName": "second@example.com", "externalId": "shared"}
    response = await client.post("/scim/v2/Users", json=second, headers=workspace.auth)
    assert (response.status_code, response.json()["scimType"]) == (409, "uniqueness")
    assert await app.state.pool.fetchval("SELECT count(*) FROM events") == before


async def test_concurrent_posts_of_different_users_all_succeed(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/scim/v2/Users", json={"userName": f"u{n}@example.com"}, headers=workspace.auth)
            for n in range(40)
        )
    )
    assert [r.status_code for r in responses] == [201] * 40
    assert await app.state.pool.fetchval("SELECT count(*) FROM scim_users") == 40
