"""Erasure of a person's personal data, crypto-shredding (issue 11; README "Erasure (crypto-shredding)").

Driven through the real app (SCIM and the admin API) on a real PostgreSQL. The proof searches the whole
database (a ``pg_dump`` of every table), the log, the snapshots and the outbox for what the person's IdP sent
(userName, names, emails, phone, address, externalId, the display name a group gave them): before the
erasure it is only in the read model; after it, nowhere; and the log still verifies, online and offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper

from projections import scim_users
from projections.rebuild import rebuild
from scimledger.app import create_app
from scimledger.audit import offline
from scimledger.audit.replay import replay
from scimledger.config import Settings
from scimledger.domain import Member
from scimledger.scim.schemas import USER_URN
from scimledger.store import recorder
from scimledger.store.envelope import Envelope
from scimledger.store.event_store import EventStore
from scimledger.store.mapper import OrjsonTranscoder
from tests.attack.test_authentication import pg_dump
from tests.conftest import SYSTEM, Workspace, make_workspace, temp_home
from tests.integration.test_least_privilege import as_app_role

ADA = {
    "schemas": [USER_URN],
    "userName": "ada.lovelace@example.com",
    "name": {"givenName": "Augusta", "familyName": "Lovelace", "formatted": "Augusta Ada Lovelace"},
    "displayName": "Countess of Lovelace",
    "emails": [{"value": "countess@analytical.example", "type": "home"}],
    "phoneNumbers": [{"value": "+44 20 7946 0991"}],
    "addresses": [{"streetAddress": "12 St James's Square", "locality": "Marylebone"}],
    "externalId": "okta-ada-1815",
}
# What the IdP said about her, as any table could hold it (compared in lower case).
TRACES = (
    "ada.lovelace@example.com",
    "augusta",
    "lovelace",
    "countess",
    "analytical.example",
    "7946 0991",
    "james's square",
    "marylebone",
    "okta-ada-1815",
)
READ_MODEL = {"scim_users", "scim_group_members", "outbox"}  # rebuilt from the log, scrubbed on erasure
API = "/api/v1"


def admin(ws: Workspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.admin_key}"}


def holding(text: str, traces: tuple[str, ...] = TRACES) -> list[str]:
    lowered = text.lower()
    return [t for t in traces if t in lowered]


def tables_holding(dump: str, traces: tuple[str, ...] = TRACES) -> dict[str, list[str]]:
    """The tables of a plain-text ``pg_dump`` whose rows hold a trace (and ``schema`` for anything else)."""
    found: dict[str, list[str]] = {}
    table: str | None = None
    for line in dump.splitlines():
        if line.startswith("COPY "):
            table = line.split()[1].split(".")[-1]
        elif line == "\\.":
            table = None
        elif hits := holding(line, traces):
            found.setdefault(table or "schema", []).extend(hits)
    return found


async def outbox_to_head(pool: asyncpg.Pool) -> None:
    """The outbox (a lagging projection) applied up to the head, whatever else runs on the server: a
    rebuild does it first, under the log's freeze lock; and the rebuilt read model must equal the live one."""
    assert all(d.equal for d in await rebuild(pool, verify=True))


async def provision(client: httpx.AsyncClient, ws: Workspace, body: dict[str, Any] = ADA) -> str:
    created = await client.post("/scim/v2/Users", json=body, headers=ws.auth)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def in_a_team(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> str:
    group = {"displayName": "Engines", "members": [{"value": member_id, "display": "Augusta Ada"}]}
    created = await client.post("/scim/v2/Groups", json=group, headers=ws.auth)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def erase(client: httpx.AsyncClient, ws: Workspace, member_id: str, body: Any = None) -> httpx.Response:
    return await client.post(f"{API}/members/{member_id}/erase", json=body or {}, headers=admin(ws))


async def history(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> list[dict[str, Any]]:
    found = await client.get(f"{API}/members/{member_id}/history?limit=1000", headers=admin(ws))
    assert found.status_code == 200, found.text
    return list(found.json()["entries"])


async def created_entry(client: httpx.AsyncClient, ws: Workspace, member_id: str) -> dict[str, Any]:
    """The audit entry of the event that created the member."""
    created = ("MemberProvisioned", "MemberInvited", "MemberLinked")
    return next(e for e in await history(client, ws, member_id) if e["type"] in created)


async def log_text(pool: asyncpg.Pool) -> str:
    rows = await pool.fetch("SELECT e::text FROM events e ORDER BY position")
    return "\n".join(r[0] for r in rows)


async def event_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


async def snapshot_member(app: Any, member_id: str) -> None:
    """A snapshot of the member's stream (the store takes them every 200 versions; a cache)."""
    store = app.state.store
    member = await store.load(Member, UUID(member_id))
    await recorder.save_snapshot(app.state.pool, store.mapper.to_stored_event(Snapshot.take(member)))


async def test_before_erasure_personal_data_is_only_in_the_read_model(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, database_url: str
) -> None:
    member_id = await provision(client, workspace)
    await in_a_team(client, workspace, member_id)
    await outbox_to_head(app.state.pool)
    await snapshot_member(app, member_id)
    assert await app.state.pool.fetchval(
        "SELECT count(*) FROM snapshots WHERE stream_id = $1", UUID(member_id)
    )

    found = tables_holding(pg_dump(database_url))
    assert set(found) <= READ_MODEL, found
    assert set(found["scim_users"]) == set(TRACES)  # the read model holds it all, in clear
    assert "outbox" in found and "scim_group_members" in found
    assert not holding(await log_text(app.state.pool))  # the log (state and data) holds ciphertext only
    snapshots = await app.state.pool.fetch("SELECT state FROM snapshots")
    assert snapshots and not any(holding(bytes(r[0]).decode()) for r in snapshots)
    # ... while the app reads it back, with the key.
    shown = await client.get(f"/scim/v2/Users/{member_id}", headers=workspace.auth)
    assert shown.json()["name"]["familyName"] == "Lovelace"
    (provisioned,) = [
        e for e in await history(client, workspace, member_id) if e["type"] == "MemberProvisioned"
    ]
    assert provisioned["data"]["user_name"] == ADA["userName"]
    assert provisioned["data"]["profile"]["phoneNumbers"] == ADA["phoneNumbers"]


async def test_erasure_leaves_no_trace_and_the_audit_chain_still_verifies(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, database_url: str, tmp_path: Path
) -> None:
    pool = app.state.pool
    member_id = await provision(client, workspace)
    await in_a_team(client, workspace, member_id)
    patched = await client.patch(
        f"/scim/v2/Users/{member_id}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": "Augusta Ada"}],
        },
        headers=workspace.auth,
    )
    assert patched.status_code == 200, patched.text
    assert (await client.delete(f"/scim/v2/Users/{member_id}", headers=workspace.auth)).status_code == 204
    await outbox_to_head(pool)
    await snapshot_member(app, member_id)
    before = await pool.fetchval("SELECT max(position) FROM events")

    done = await erase(client, workspace, member_id, {"reason": "GDPR art. 17, ticket 42"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["id"], body["erased"], body["reason"]) == (member_id, True, "GDPR art. 17, ticket 42")
    assert body["position"] > before
    await outbox_to_head(pool)

    # The SCIM resource and the admin API's member are gone.
    assert (await client.get(f"/scim/v2/Users/{member_id}", headers=workspace.auth)).status_code == 404
    assert (await client.get(f"{API}/members/{member_id}", headers=admin(workspace))).status_code == 404
    # The audit trail still says someone was provisioned, suspended, removed and erased, by whom and when.
    entries = await history(client, workspace, member_id)
    types = [e["type"] for e in entries]
    assert (
        types[-1] == "PersonalDataErased" and "MemberProvisioned" in types and "MemberDeprovisioned" in types
    )
    provisioned = entries[types.index("MemberProvisioned")]
    assert (provisioned["data"]["user_name"], provisioned["data"]["profile"]) == ("[erased]", "[erased]")
    assert (provisioned["data"]["role"], provisioned["data"]["status"]) == ("member", "active")
    erased = entries[-1]
    assert erased["data"]["reason"] == "GDPR art. 17, ticket 42"
    assert erased["actor"]["kind"] == "admin" and erased["data"]["requested_by"]["kind"] == "admin"
    assert erased["state"]["user_name"] == "[erased]" and erased["state"]["status"] == "deprovisioned"
    assert not holding(json.dumps(entries))
    # The chain verifies, online; the rebuilt read model is the scrubbed live one.
    verified = await client.get(f"{API}/audit/verify", headers=admin(workspace))
    assert verified.json()["ok"] is True, verified.text
    assert all(d.equal for d in await rebuild(pool, verify=True))
    # An export made now holds no trace, and verifies offline.
    ndjson = await client.get(f"{API}/audit/export?format=ndjson", headers=admin(workspace))
    csv = await client.get(f"{API}/audit/export?format=csv", headers=admin(workspace))
    assert not holding(ndjson.text) and not holding(csv.text)
    reports = offline.verify_lines(ndjson.content.splitlines())
    assert [r.ok for r in reports] == [True]
    # Nowhere in the database: every table, the log, the snapshots, the outbox, the key.
    assert tables_holding(pg_dump(database_url)) == {}
    assert not await pool.fetchval("SELECT count(*) FROM personal_keys WHERE member_id = $1", UUID(member_id))
    assert not await pool.fetchval("SELECT count(*) FROM snapshots WHERE stream_id = $1", UUID(member_id))
    assert not await pool.fetchval("SELECT count(*) FROM outbox WHERE member_id = $1", UUID(member_id))


async def test_a_replay_before_the_erasure_shows_someone_was_there_but_not_who(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, database_url: str
) -> None:
    member_id = await provision(client, workspace)
    await client.delete(f"/scim/v2/Users/{member_id}", headers=workspace.auth)
    until = await app.state.pool.fetchval("SELECT max(recorded_at) FROM events")
    assert (await erase(client, workspace, member_id)).status_code == 200
    await replay(database_url, workspace.id, until=until, schema="before_erasure")
    row = await app.state.pool.fetchrow(
        "SELECT user_name, status, role, external_id FROM before_erasure.scim_users WHERE id = $1",
        UUID(member_id),
    )
    assert dict(row) == {
        "user_name": "[erased]",
        "status": "deprovisioned",
        "role": "member",
        "external_id": None,
    }


async def test_an_invite_never_accepted_is_withdrawn_and_erased(
    client: httpx.AsyncClient, app: Any, workspace: Workspace
) -> None:
    invited = await client.post(
        f"{API}/members", json={"user_name": "grace@elsewhere.org"}, headers=admin(workspace)
    )
    assert invited.status_code == 201 and invited.json()["status"] == "invited", invited.text
    member_id = invited.json()["id"]
    team_id = await in_a_team(client, workspace, member_id)
    seats = (await client.get(f"{API}/workspace", headers=admin(workspace))).json()["seats"]["assigned"]
    done = await erase(client, workspace, member_id)
    assert done.status_code == 200, done.text
    assert (await client.get(f"{API}/workspace", headers=admin(workspace))).json()["seats"][
        "assigned"
    ] == seats - 1
    team = await client.get(f"/scim/v2/Groups/{team_id}", headers=workspace.auth)
    assert team.json().get("members", []) == []
    types = [e["type"] for e in await history(client, workspace, member_id)]
    assert {"TeamMemberRemoved", "SeatReleased", "MemberDeprovisioned"} <= set(types)
    assert types[-1] == "PersonalDataErased"
    # The userName is free again: a new invite of the same person is a new member.
    again = await client.post(
        f"{API}/members", json={"user_name": "grace@elsewhere.org"}, headers=admin(workspace)
    )
    assert again.status_code == 201 and again.json()["id"] != member_id
    assert all(d.equal for d in await rebuild(app.state.pool, verify=True))


async def test_who_may_not_be_erased_is_refused_and_nothing_is_appended(
    client: httpx.AsyncClient, app: Any, workspace: Workspace
) -> None:
    pool = app.state.pool
    boss = await provision(client, workspace, {"userName": "boss@example.com", "roles": [{"value": "admin"}]})
    active = await provision(client, workspace, {"userName": "active@example.com"})
    suspended = await provision(client, workspace, {"userName": "away@example.com"})
    off = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    assert (
        await client.patch(f"/scim/v2/Users/{suspended}", json=off, headers=workspace.auth)
    ).status_code == 200
    other = await make_workspace(app.state.store, name="Other", domains=("example.com",), seats=5)
    elsewhere = await provision(client, other, {"userName": "elsewhere@example.com"})
    count = await event_count(pool)
    cases = [
        (boss, {}, 409, "last_admin"),
        (active, {}, 409, "not_erasable"),
        (suspended, {}, 409, "not_erasable"),
        (str(uuid4()), {}, 404, "not_found"),
        ("not-a-uuid", {}, 404, "not_found"),
        (elsewhere, {}, 404, "not_found"),  # another workspace's member
        (active, {"reason": 42}, 400, "invalid_command"),
        (active, {"reason": "x" * 1025}, 400, "invalid_command"),
    ]
    for member_id, body, status, code in cases:
        refused = await client.post(f"{API}/members/{member_id}/erase", json=body, headers=admin(workspace))
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), (
            member_id,
            refused.text,
        )
        assert set(refused.json()["error"]) == {"code", "message"}
    assert await event_count(pool) == count
    await client.delete(f"/scim/v2/Users/{active}", headers=workspace.auth)
    assert (await erase(client, workspace, active)).status_code == 200
    count = await event_count(pool)
    again = await erase(client, workspace, active)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_erased")
    assert await event_count(pool) == count


async def test_erasing_a_person_in_one_workspace_leaves_their_other_memberships_alone(
    client: httpx.AsyncClient, app: Any, workspace: Workspace
) -> None:
    other = await make_workspace(app.state.store, name="Other", domains=("example.com",), seats=5)
    here, there = await provision(client, workspace), await provision(client, other)
    person = await app.state.pool.fetch("SELECT DISTINCT person_id FROM scim_users")
    assert len(person) == 1  # one person, two memberships, two keys
    await client.delete(f"/scim/v2/Users/{here}", headers=workspace.auth)
    assert (await erase(client, workspace, here)).status_code == 200
    kept = await client.get(f"/scim/v2/Users/{there}", headers=other.auth)
    assert kept.status_code == 200 and kept.json()["name"]["familyName"] == "Lovelace"
    assert (await created_entry(client, other, there))["data"]["user_name"] == ADA["userName"]
    assert (await created_entry(client, workspace, here))["data"]["user_name"] == "[erased]"


async def test_a_person_provisioned_again_after_erasure_starts_clean(
    client: httpx.AsyncClient, app: Any, workspace: Workspace
) -> None:
    pool = app.state.pool
    first = await provision(client, workspace)
    await client.delete(f"/scim/v2/Users/{first}", headers=workspace.auth)
    assert (await erase(client, workspace, first)).status_code == 200
    second = await provision(client, workspace)
    assert second != first
    types = [e["type"] for e in await history(client, workspace, second)]
    assert "MemberProvisioned" in types and "MemberLinked" not in types  # no link to the erased membership
    assert await pool.fetchval("SELECT count(*) FROM personal_keys WHERE member_id = $1", UUID(second)) == 1
    shown = await client.get(f'/scim/v2/Users?filter=userName eq "{ADA["userName"]}"', headers=workspace.auth)
    assert [r["id"] for r in shown.json()["Resources"]] == [second]
    assert (await created_entry(client, workspace, first))["data"]["user_name"] == "[erased]"


async def test_the_audit_api_reads_the_key_table_not_a_cache(
    client: httpx.AsyncClient, app: Any, workspace: Workspace
) -> None:
    """A process that still caches the key of a member erased by another process must not show its data."""
    member_id = await provision(client, workspace)
    await client.delete(f"/scim/v2/Users/{member_id}", headers=workspace.auth)
    assert (await created_entry(client, workspace, member_id))["data"]["user_name"] == ADA["userName"]
    async with app.state.pool.acquire() as conn:  # another process's erasure destroyed the key
        await conn.execute("DELETE FROM personal_keys WHERE member_id = $1", UUID(member_id))
    assert (await created_entry(client, workspace, member_id))["data"]["user_name"] == "[erased]"
    assert not holding(json.dumps(await history(client, workspace, member_id)))
    listed = await client.get(f"{API}/audit?member={member_id}", headers=admin(workspace))
    assert not holding(listed.text)


async def test_a_member_recorded_before_encryption_reads_as_before_and_is_not_erasable(
    client: httpx.AsyncClient, app: Any, workspace: Workspace
) -> None:
    """An old log: events stored in clear, no key. Read as they were; erasure refused (the log cannot
    forget what it holds in clear)."""
    pool, plain = app.state.pool, Mapper(transcoder=OrjsonTranscoder())
    member = Member.start(
        Member.Created,
        uuid4(),
        workspace_id=str(workspace.id),
        person_id=str(uuid4()),
        user_name="old@example.com",
        profile={"userName": "old@example.com"},
        role="member",
        managed_by="idp",
        status="active",
    )
    member.deprovision()
    events = member.collect_events()
    stored = [plain.to_stored_event(e) for e in events]
    async with pool.acquire() as conn, conn.transaction():
        positions = await recorder.append(conn, workspace.id, stored, SYSTEM.as_dict())
        for record, event, position in zip(stored, events, positions, strict=True):
            await scim_users.apply(
                conn, Envelope(workspace.id, record.topic, event, SYSTEM.as_dict(), position)
            )
    shown = await client.get(f"{API}/members/{member.id}", headers=admin(workspace))
    assert shown.json()["user_name"] == "old@example.com"
    assert (await created_entry(client, workspace, str(member.id)))["data"]["user_name"] == "old@example.com"
    count = await event_count(pool)
    refused = await erase(client, workspace, str(member.id))
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "not_erasable")
    assert "before personal data was encrypted" in refused.json()["error"]["message"]
    assert await event_count(pool) == count


async def test_the_cli_erases_with_the_operator_as_the_actor(
    client: httpx.AsyncClient, app: Any, workspace: Workspace, database_url: str, tmp_path: Path
) -> None:
    member_id = await provision(client, workspace)
    assert (await client.delete(f"/scim/v2/Users/{member_id}", headers=workspace.auth)).status_code == 204
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "DATABASE_URL": database_url, "SCIMLEDGER_HOME": str(home)}
    command = [sys.executable, "-m", "scimledger.cli", "person", "erase", "--workspace", str(workspace.id)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    done = run("--member", member_id, "--reason", "asked in writing")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert (printed["member_id"], printed["erased"], printed["reason"]) == (
        member_id,
        True,
        "asked in writing",
    )
    entries = await history(client, workspace, member_id)
    assert entries[-1]["type"] == "PersonalDataErased" and entries[-1]["actor"]["kind"] == "operator"
    assert not holding(json.dumps(entries))
    assert all(d.equal for d in await rebuild(app.state.pool, verify=True))
    again = run("--member", member_id)
    assert again.returncode == 1 and "already_erased" in again.stderr
    assert run("--member", "nobody").returncode == 2


async def test_the_servers_least_privileged_role_can_erase_but_never_change_the_log(
    store: EventStore, database_url: str
) -> None:
    """schema.sql section 7: the app's role deletes keys, snapshots and outbox rows; it may not update a key,
    and the log stays out of its reach."""
    ws = await make_workspace(store, domains=("example.com",), seats=5)
    settings = Settings(home=temp_home(), public_url=None, database_url=as_app_role(database_url))
    least = create_app(settings, run_lagging=False)
    async with least.router.lifespan_context(least):
        transport = httpx.ASGITransport(app=least)
        async with httpx.AsyncClient(transport=transport, base_url="https://scim.example.test") as client:
            member_id = await provision(client, ws)
            await snapshot_member(least, member_id)
            await client.delete(f"/scim/v2/Users/{member_id}", headers=ws.auth)
            assert (await erase(client, ws, member_id)).status_code == 200
            assert not await least.state.pool.fetchval(
                "SELECT count(*) FROM snapshots WHERE stream_id = $1", UUID(member_id)
            )
    conn = await asyncpg.connect(as_app_role(database_url))
    try:
        for statement in (
            "UPDATE personal_keys SET wrapped = wrapped",
            "DELETE FROM events",
            "TRUNCATE personal_keys",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
