"""Tamper evidence end to end (issue 7): ``GET /api/v1/audit/verify|checkpoint|public-key`` through the app
(bodies held to the OpenAPI document), and ``scimledger audit verify|checkpoint|public-key`` as real
processes: against the database, against a signed checkpoint, and offline on an export with no database
reachable at all."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from scimledger import chain, handlers
from scimledger.app import create_app
from scimledger.audit import checkpoint
from scimledger.config import Settings
from tests.conftest import SYSTEM, Workspace, make_workspace
from tests.e2e.conftest import CLI
from tests.e2e.test_openapi import documented

API = "/api/v1/audit"
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/none"  # nothing listens there


@pytest.fixture
async def proof_app(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The app with its own SCIMLEDGER_HOME (where it makes its signing key)."""
    monkeypatch.delenv(checkpoint.KEY_ENV, raising=False)
    application = create_app(
        Settings(home=tmp_path / "server-home", public_url=None, database_url=database_url),
        run_lagging=False,
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(proof_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=proof_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://scim.example.test") as c:
        yield c


@pytest.fixture
async def acme(proof_app: Any) -> Workspace:
    store = proof_app.state.store
    ws = await make_workspace(store, "Acme", domains=("acme.test",), seats=5)
    for n in range(3):
        command = handlers.ProvisionUser(ws.id, f"user{n}@acme.test", {"displayName": f"User {n}"})
        await handlers.provision_user(store, command, SYSTEM)
    return ws


def key(ws: Workspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.admin_key}"}


async def get(api: httpx.AsyncClient, path: str, ws: Workspace) -> Any:
    response = await api.get(f"{API}/{path}", headers=key(ws))
    assert response.status_code == 200, response.text
    return documented(response, "get", f"{API}/{path}")


async def tamper(pool: asyncpg.Pool, sql: str, *args: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


# --- the API ------------------------------------------------------------------------------------------------
async def test_verify_reports_an_intact_chain_and_its_head(
    api: httpx.AsyncClient, proof_app: Any, acme: Workspace
) -> None:
    body = await get(api, "verify", acme)
    head = await proof_app.state.pool.fetchrow(
        "SELECT position, hash FROM events WHERE workspace_id = $1 ORDER BY position DESC LIMIT 1", acme.id
    )
    assert (body["workspace_id"], body["ok"], body["broken_at"], body["reason"]) == (
        str(acme.id),
        True,
        None,
        None,
    )
    assert body["head"] == {"position": head["position"], "hash": bytes(head["hash"]).hex()}
    count = await proof_app.state.pool.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1", acme.id
    )
    assert body["events"] == count


async def test_verify_names_the_first_bad_position_and_why(
    api: httpx.AsyncClient, proof_app: Any, acme: Workspace
) -> None:
    pool = proof_app.state.pool
    position = await pool.fetchval(
        "SELECT min(position) FROM events WHERE workspace_id = $1 AND event_type = 'MemberProvisioned'",
        acme.id,
    )
    await tamper(pool, 'UPDATE events SET data = data || \'{"role": "admin"}\' WHERE position = $1', position)
    body = await get(api, "verify", acme)
    assert (body["ok"], body["broken_at"], body["reason"]) == (False, position, chain.DATA_DIFFERS)


async def test_checkpoint_signs_the_current_head_with_the_published_key(
    api: httpx.AsyncClient, acme: Workspace
) -> None:
    verified = await get(api, "verify", acme)
    signed = await get(api, "checkpoint", acme)
    published = await get(api, "public-key", acme)
    assert (signed["workspace_id"], signed["position"], signed["head_hash"], signed["events"]) == (
        str(acme.id),
        verified["head"]["position"],
        verified["head"]["hash"],
        verified["events"],
    )
    public_key = checkpoint.public_key_from_pem(published["public_key_pem"].encode())
    assert signed["key_id"] == published["key_id"] == checkpoint.key_id(public_key)
    claims = {k: v for k, v in signed.items() if k != "signature"}
    public_key.verify(base64.b64decode(signed["signature"]), checkpoint.canonical(claims))


async def test_the_signing_key_stays_under_the_servers_home(
    api: httpx.AsyncClient, proof_app: Any, acme: Workspace
) -> None:
    first = await get(api, "checkpoint", acme)
    second = await get(api, "checkpoint", acme)
    assert first["key_id"] == second["key_id"]
    home = proof_app.state.settings.home
    assert [p.name for p in home.iterdir()] == [checkpoint.KEY_FILE]
    assert (home / checkpoint.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert (
        await proof_app.state.pool.fetchval(
            "SELECT count(*) FROM events WHERE convert_from(state, 'UTF8') LIKE '%PRIVATE KEY%'"
        )
        == 0
    )


async def test_each_admin_key_verifies_and_checkpoints_its_own_workspace(
    api: httpx.AsyncClient, proof_app: Any, acme: Workspace
) -> None:
    other = await make_workspace(proof_app.state.store, "Other")
    assert (await get(api, "verify", other))["workspace_id"] == str(other.id)
    assert (await get(api, "checkpoint", other))["workspace_id"] == str(other.id)
    assert (await get(api, "verify", acme))["workspace_id"] == str(acme.id)


# --- the CLI, as real processes -----------------------------------------------------------------------------
def environment(database_url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != checkpoint.KEY_ENV}
    return {**env, "DATABASE_URL": database_url, "SCIMLEDGER_HOME": str(home)}


def run(env: dict[str, str], *args: str) -> tuple[int, Any, str]:
    """Exit code, the JSON printed (None when nothing was), and stderr."""
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, done.stderr


async def test_cli_checkpoint_then_verify_against_it(
    database_url: str, proof_app: Any, acme: Workspace, tmp_path: Path
) -> None:
    env = environment(database_url, tmp_path / "cli-home")
    code, made, _ = run(
        env, "audit", "checkpoint", "--workspace", str(acme.id), "--output", str(tmp_path / "cp.json")
    )
    assert code == 0
    assert json.loads((tmp_path / "cp.json").read_text()) == made
    await handlers.provision_user(
        proof_app.state.store, handlers.ProvisionUser(acme.id, "later@acme.test"), SYSTEM
    )
    code, result, _ = run(env, "audit", "verify", "--checkpoint", str(tmp_path / "cp.json"))
    assert (code, result["ok"], result["checkpoint"]["extended"]) == (0, True, True)
    assert {w["workspace_id"] for w in result["workspaces"]} == {str(acme.id)}


async def test_cli_catches_a_truncated_tail_only_against_the_checkpoint(
    database_url: str, proof_app: Any, acme: Workspace, tmp_path: Path
) -> None:
    env = environment(database_url, tmp_path / "cli-home")
    code, made, _ = run(
        env, "audit", "checkpoint", "--workspace", str(acme.id), "--output", str(tmp_path / "cp.json")
    )
    assert code == 0
    await tamper(
        proof_app.state.pool,
        "DELETE FROM events WHERE workspace_id = $1 AND position > $2",
        acme.id,
        made["position"] - 3,
    )
    code, plain, _ = run(env, "audit", "verify", "--workspace", str(acme.id))
    assert (code, plain["ok"]) == (0, True)
    code, result, stderr = run(
        env, "audit", "verify", "--workspace", str(acme.id), "--checkpoint", str(tmp_path / "cp.json")
    )
    [report] = result["workspaces"]
    assert (code, result["ok"], report["broken_at"], report["reason"]) == (
        1,
        False,
        made["position"],
        chain.CHECKPOINT_NOT_EXTENDED,
    )
    assert f"at position {made['position']}" in stderr


async def test_cli_offline_verification_of_an_export_needs_no_database(
    api: httpx.AsyncClient, acme: Workspace, tmp_path: Path
) -> None:
    exported = await api.get(f"{API}/export", params={"format": "ndjson"}, headers=key(acme))
    assert exported.status_code == 200
    (tmp_path / "export.ndjson").write_bytes(exported.content)
    (tmp_path / "cp.json").write_text(json.dumps(await get(api, "checkpoint", acme)))
    (tmp_path / "key.pem").write_text((await get(api, "public-key", acme))["public_key_pem"])
    home = tmp_path / "auditor-home"
    home.mkdir()
    env = environment(NO_DATABASE, home)
    files = ["--file", str(tmp_path / "export.ndjson"), "--checkpoint", str(tmp_path / "cp.json")]
    code, result, stderr = run(env, "audit", "verify", *files, "--public-key", str(tmp_path / "key.pem"))
    assert (code, result["ok"], result["checkpoint"]["extended"]) == (0, True, True), stderr
    assert result["workspaces"][0]["events"] == len(exported.content.splitlines())
    assert list(home.iterdir()) == []  # no embedded PostgreSQL started, no key made
    code, _, stderr = run(env, "audit", "verify", *files)  # the auditor has no key of their own
    assert code == 2 and "--public-key" in stderr


async def test_cli_offline_verification_catches_an_edited_line(
    api: httpx.AsyncClient, acme: Workspace, tmp_path: Path
) -> None:
    exported = await api.get(f"{API}/export", params={"format": "ndjson"}, headers=key(acme))
    lines = exported.content.splitlines()
    record = json.loads(lines[-2])
    record["actor"]["name"] = "someone else"
    lines[-2] = json.dumps(record).encode()
    (tmp_path / "export.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    code, result, stderr = run(
        environment(NO_DATABASE, tmp_path), "audit", "verify", "--file", str(tmp_path / "export.ndjson")
    )
    [report] = result["workspaces"]
    assert (code, report["broken_at"], report["reason"]) == (1, record["position"], chain.METADATA_DIFFERS)
    assert f"at position {record['position']}" in stderr


async def test_cli_refuses_a_checkpoint_signed_by_another_key(
    api: httpx.AsyncClient, database_url: str, acme: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "cp.json").write_text(json.dumps(await get(api, "checkpoint", acme)))
    env = environment(database_url, tmp_path / "other-home")
    code, _, _ = run(env, "audit", "public-key", "--output", str(tmp_path / "other.pem"))  # another key
    assert code == 0
    code, result, _ = run(
        env,
        "audit",
        "verify",
        "--checkpoint",
        str(tmp_path / "cp.json"),
        "--public-key",
        str(tmp_path / "other.pem"),
    )
    assert (code, result["ok"], result["reason"]) == (1, False, checkpoint.SIGNATURE_INVALID)


async def test_cli_verify_of_an_empty_log_is_not_a_success(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url, tmp_path)
    code, result, stderr = run(env, "audit", "verify")
    assert (code, result["ok"], result["reason"], result["workspaces"]) == (1, False, chain.NO_EVENTS, [])
    assert "no events" in stderr
    code, result, _ = run(env, "audit", "verify", "--workspace", "7a1c3a52-0f0e-4d7a-9a53-2c1e8f0b6d11")
    assert (code, result["ok"], result["workspaces"][0]["reason"]) == (1, False, chain.NO_EVENTS)


@pytest.mark.parametrize(
    "args",
    [
        ["--workspace", "not-a-uuid"],
        ["--public-key", "key.pem"],
        ["--checkpoint", "missing.json"],
        ["--checkpoint", "not-a-checkpoint.json"],
    ],
    ids=["bad-workspace", "public-key-alone", "missing-checkpoint", "malformed-checkpoint"],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "not-a-checkpoint.json").write_text('{"position": 1}')
    args = [str(tmp_path / a) if a.endswith((".json", ".pem")) else a for a in args]
    code, _, stderr = run(environment(NO_DATABASE, tmp_path), "audit", "verify", *args)
    assert code == 2
    assert stderr.startswith("error: ")
