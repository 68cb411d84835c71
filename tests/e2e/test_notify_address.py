"""A userName that is not an email address (issue 10, defect 7; README "Workspace rules").

It is accepted as a userName; notifications go to the first email address of ``emails`` (primary first); with
none, no mail is queued. An admin cannot invite someone the invitation cannot reach: the admin API takes the
address as ``email`` and refuses a non-email ``user_name`` without one (400 ``invalid_command``, nothing
appended, no seat taken).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Workspace
from tests.e2e.rules_helpers import (
    admin_auth,
    appends_nothing,
    assert_admin_error,
    outbox,
    patch_body,
    replace,
    seats,
    user_body,
)


async def create(client: httpx.AsyncClient, ws: Workspace, user_name: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/scim/v2/Users", json=user_body(user_name, **extra), headers=ws.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def recipients(rows: list[dict[str, Any]], member_id: str) -> list[tuple[str, str]]:
    return sorted((r["kind"], r["recipient"]) for r in rows if r["member_id"] == member_id)


async def test_a_non_email_user_name_is_invited_at_its_primary_email(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    emails = [
        {"value": "home@elsewhere.org"},
        {"value": "jdoe@elsewhere.org", "type": "work", "primary": True},
    ]
    created = await create(client, workspace, "jdoe", emails=emails)
    assert created["userName"] == "jdoe"
    found = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "JDOE"'}, headers=workspace.auth
    )
    assert [u["id"] for u in found.json()["Resources"]] == [created["id"]]
    rows = await outbox(client, workspace, app.state.pool)
    assert recipients(rows, created["id"]) == [("invite", "jdoe@elsewhere.org")]


async def test_without_a_primary_the_first_deliverable_email_is_used(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    emails = [{"value": "not an address"}, {"value": "ann@elsewhere.org"}, {"value": "ann2@elsewhere.org"}]
    created = await create(client, workspace, "ann", emails=emails)
    rows = await outbox(client, workspace, app.state.pool)
    assert recipients(rows, created["id"]) == [("invite", "ann@elsewhere.org")]


async def test_an_email_user_name_is_still_where_mail_goes(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    emails = [{"value": "private@elsewhere.org", "primary": True}]
    created = await create(client, workspace, "ada@example.com", emails=emails)
    rows = await outbox(client, workspace, app.state.pool)
    assert recipients(rows, created["id"]) == [("added", "ada@example.com")]


async def test_a_non_email_user_name_without_any_address_is_accepted_and_nothing_is_sent(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    """RFC 7643 §4.1: only userName is required, so an IdP's create is taken as it comes; but no mail is
    queued to an address that cannot receive it."""
    bare = await create(client, workspace, "jdoe")
    odd = await create(client, workspace, "jroe", emails=[{"value": "jroe", "primary": True}])
    rows = await outbox(client, workspace, app.state.pool)
    assert recipients(rows, bare["id"]) == recipients(rows, odd["id"]) == []
    member = (await client.get(f"/api/v1/members/{bare['id']}", headers=admin_auth(workspace))).json()
    assert (member["user_name"], member["status"]) == ("jdoe", "invited")


async def test_without_any_address_the_session_notice_keeps_the_user_name(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    """``sessions_revoked`` is also what the product's session store consumes: it is queued anyway."""
    created = await create(client, workspace, "lou")
    off = patch_body(replace("active", False))
    response = await client.patch(f"/scim/v2/Users/{created['id']}", json=off, headers=workspace.auth)
    assert response.status_code == 200
    rows = await outbox(client, workspace, app.state.pool)
    assert recipients(rows, created["id"]) == [("sessions_revoked", "lou")]


async def test_sessions_revoked_goes_where_the_invite_went(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    created = await create(client, workspace, "kim", emails=[{"value": "kim@elsewhere.org", "primary": True}])
    off = patch_body(replace("active", False))
    response = await client.patch(f"/scim/v2/Users/{created['id']}", json=off, headers=workspace.auth)
    assert (response.status_code, response.json()["active"]) == (200, False)
    rows = await outbox(client, workspace, app.state.pool)
    assert recipients(rows, created["id"]) == [
        ("invite", "kim@elsewhere.org"),
        ("sessions_revoked", "kim@elsewhere.org"),
    ]


async def test_admin_created_member_with_a_non_email_user_name_needs_an_email(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    before = await seats(client, workspace)
    async with appends_nothing(app.state.pool):
        response = await client.post(
            "/api/v1/members", json={"user_name": "dan"}, headers=admin_auth(workspace)
        )
        error = assert_admin_error(response, 400, "invalid_command")
        assert "dan" in error["message"] and "email" in error["message"]
        response = await client.post(
            "/api/v1/members", json={"user_name": "dan", "email": "dan"}, headers=admin_auth(workspace)
        )
        assert_admin_error(response, 400, "invalid_command")
        response = await client.post(
            "/api/v1/members", json={"user_name": "dan", "email": 7}, headers=admin_auth(workspace)
        )
        assert_admin_error(response, 400, "invalid_command")
    assert await seats(client, workspace) == before
    response = await client.post(
        "/api/v1/members",
        json={"user_name": "dan", "email": " dan@elsewhere.org "},
        headers=admin_auth(workspace),
    )
    assert response.status_code == 201, response.text
    member = response.json()
    assert (member["user_name"], member["status"], member["has_seat"]) == ("dan", "invited", True)
    rows = await outbox(client, workspace, app.state.pool)
    assert recipients(rows, member["id"]) == [("invite", "dan@elsewhere.org")]


async def test_admin_created_member_with_an_email_user_name_needs_nothing_more(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    response = await client.post(
        "/api/v1/members", json={"user_name": "eve@elsewhere.org"}, headers=admin_auth(workspace)
    )
    assert response.status_code == 201, response.text
    rows = await outbox(client, workspace, app.state.pool)
    assert recipients(rows, response.json()["id"]) == [("invite", "eve@elsewhere.org")]
