"""The CLI contract and a real server process: ``scimledger serve`` on the embedded PostgreSQL, a second
command reusing that server, the first-run demo workspace, and a SCIM round trip over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.conftest import cli


def test_first_run_prints_demo_credentials_that_work(server: tuple[str, dict[str, str], Path]) -> None:
    url, _, home = server
    demo = json.loads((home / "demo-credentials.json").read_text())
    auth = {"Authorization": f"Bearer {demo['token']}"}
    created = httpx.post(
        f"{url}/scim/v2/Users", json={"userName": "demo@example.com"}, headers=auth, timeout=10
    )
    assert created.status_code == 201, created.text
    assert created.json()["meta"]["location"].startswith(url)
    found = httpx.get(
        f"{url}/scim/v2/Users", params={"filter": 'userName eq "DEMO@example.com"'}, headers=auth, timeout=10
    )
    assert found.json()["totalResults"] == 1


def test_second_command_reuses_the_running_server(server: tuple[str, dict[str, str], Path]) -> None:
    url, env, home = server
    pid_before = (home / "pgdata" / "postmaster.pid").read_text().splitlines()[0]
    workspace = cli(env, "workspace", "create", "--name", "Acme", "--domain", "acme.test", "--seats", "5")
    assert set(workspace) == {"workspace_id", "admin_key"}
    token = cli(env, "token", "create", "--workspace", workspace["workspace_id"], "--name", "Okta")
    assert set(token) == {"token_id", "token"}
    assert (home / "pgdata" / "postmaster.pid").read_text().splitlines()[0] == pid_before
    response = httpx.post(
        f"{url}/scim/v2/Users",
        json={"userName": "x@acme.test"},
        headers={"Authorization": f"Bearer {token['token']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


def test_read_only_token_cannot_write(server: tuple[str, dict[str, str], Path]) -> None:
    url, env, _ = server
    workspace = cli(env, "workspace", "create", "--name", "Ro")
    token = cli(
        env,
        "token",
        "create",
        "--workspace",
        workspace["workspace_id"],
        "--name",
        "ro",
        "--scope",
        "scim:read",
    )
    auth = {"Authorization": f"Bearer {token['token']}"}
    assert httpx.get(f"{url}/scim/v2/Users", headers=auth, timeout=10).status_code == 200
    denied = httpx.post(f"{url}/scim/v2/Users", json={"userName": "y@ro.test"}, headers=auth, timeout=10)
    assert denied.status_code == 403
    assert denied.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_projections_rebuild_verify_exits_zero(server: tuple[str, dict[str, str], Path]) -> None:
    url, env, home = server
    demo = json.loads((home / "demo-credentials.json").read_text())
    httpx.post(
        f"{url}/scim/v2/Users",
        json={"userName": "r@example.com"},
        headers={"Authorization": f"Bearer {demo['token']}"},
        timeout=10,
    )
    result = cli(env, "projections", "rebuild", "--verify")
    assert result["equal"] is True


def test_two_workers_read_their_writes(two_worker_server: tuple[str, dict[str, str], Path]) -> None:
    """docs/architecture.md read-your-writes: once a POST answered 201, a look-up on a new connection (which
    may land on the other worker) finds the user, every time."""
    url, _, home = two_worker_server
    demo = json.loads((home / "demo-credentials.json").read_text())
    auth = {"Authorization": f"Bearer {demo['token']}"}
    for n in range(20):
        name = f"rw{n}@example.com"
        with httpx.Client(timeout=10) as one:
            assert one.post(f"{url}/scim/v2/Users", json={"userName": name}, headers=auth).status_code == 201
        with httpx.Client(timeout=10) as other:
            found = other.get(
                f"{url}/scim/v2/Users", params={"filter": f'userName eq "{name}"'}, headers=auth
            )
        assert found.json()["totalResults"] == 1, n


def test_audit_verify_checks_every_chain(server: tuple[str, dict[str, str], Path]) -> None:
    _, env, _ = server
    result = cli(env, "audit", "verify")
    assert result["ok"] is True
    assert result["workspaces"] and all(w["ok"] and w["events"] > 0 for w in result["workspaces"])


def test_serve_connects_with_the_least_privilege_role(server: tuple[str, dict[str, str], Path]) -> None:
    """schema.sql, section 7: the embedded default migrates as the owner and serves as ``scimledger_app``."""
    import asyncio

    import asyncpg

    url, _, home = server
    port = int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[3])

    async def roles() -> set[str]:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        try:
            rows = await conn.fetch(
                "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'scimledger' AND pid <> "
                "pg_backend_pid()"
            )
            return {r[0] for r in rows}
        finally:
            await conn.close()

    assert httpx.get(f"{url}/scim/v2/Users", timeout=10).status_code == 401
    assert asyncio.run(roles()) == {"scimledger_app"}
