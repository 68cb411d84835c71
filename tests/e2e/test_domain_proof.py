"""Issue 8, defect 1: a domain is verified by proof of control, not by saying so.

Through the real app on real PostgreSQL, with a DNS server of our own on 127.0.0.1 (``dns_server``): adding a
domain answers with the workspace's TXT challenge; verifying looks the record up and succeeds only when it
holds this workspace's token (another workspace's never does; two workspaces each prove the same domain with
their own record); a refusal says which record was looked up and appends nothing; the look-up never blocks
the server. The CLI verifies by DNS too, or with ``--no-dns`` on the operator's word, recorded as such.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Workspace, make_workspace
from tests.e2e.conftest import CLI
from tests.e2e.dns_server import DnsServer
from tests.e2e.rules_helpers import (
    admin_auth,
    appends_nothing,
    assert_admin_error,
    events_since,
    head,
    member,
    provisioned,
)

RECORD = "_scimledger-challenge.gmail.com"


async def add_domain(client: httpx.AsyncClient, ws: Workspace, domain: str) -> dict[str, Any]:
    response = await client.post("/api/v1/domains", json={"domain": domain}, headers=admin_auth(ws))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def token_of(client: httpx.AsyncClient, ws: Workspace, domain: str) -> str:
    return str((await add_domain(client, ws, domain))["challenge"]["value"])


async def verify(client: httpx.AsyncClient, ws: Workspace, domain: str) -> httpx.Response:
    return await client.post(f"/api/v1/domains/{domain}/verify", headers=admin_auth(ws))


async def domains(client: httpx.AsyncClient, ws: Workspace) -> dict[str, Any]:
    response = await client.get("/api/v1/workspace", headers=admin_auth(ws))
    return {d["domain"]: d for d in response.json()["domains"]}


@pytest.fixture
async def other(app: Any) -> Workspace:
    return await make_workspace(app.state.store, name="Other", seats=10)


# --- the challenge --------------------------------------------------------------------------------------
async def test_adding_a_domain_answers_with_the_workspaces_challenge(
    client: httpx.AsyncClient, workspace: Workspace, other: Workspace, app: Any
) -> None:
    mark = await head(app.state.pool)
    body = await add_domain(client, workspace, "GMail.com.")
    challenge = body["challenge"]
    assert (challenge["record"], challenge["type"]) == (RECORD, "TXT")
    assert len(challenge["value"]) >= 32
    assert (await domains(client, workspace))["gmail.com"] == {
        "domain": "gmail.com",
        "verified": False,
        "challenge": challenge,
    }
    issued = [e for e in await events_since(app.state.pool, mark) if e.event_type == "DomainChallengeIssued"]
    assert [e.data["token"] for e in issued] == [challenge["value"]]
    # Added again: the same challenge, nothing appended. Another workspace gets a token of its own.
    async with appends_nothing(app.state.pool):
        assert (await add_domain(client, workspace, "gmail.com"))["challenge"] == challenge
    assert await token_of(client, other, "gmail.com") != challenge["value"]


async def test_a_verified_domain_shows_no_challenge(client: httpx.AsyncClient, workspace: Workspace) -> None:
    body = await add_domain(client, workspace, "example.com")  # verified when the workspace was made
    assert body["challenge"] is None
    assert (await domains(client, workspace))["example.com"] == {"domain": "example.com", "verified": True}


# --- verification by DNS --------------------------------------------------------------------------------
async def test_verifying_gmail_without_a_record_is_refused_names_the_record_and_appends_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, dns_server: DnsServer
) -> None:
    await add_domain(client, workspace, "gmail.com")
    async with appends_nothing(app.state.pool):
        response = await verify(client, workspace, "gmail.com")
    error = assert_admin_error(response, 409, "domain_not_proven")
    assert RECORD in error["message"] and "does not exist" in error["message"]
    assert dns_server.queries == [RECORD]
    assert (await domains(client, workspace))["gmail.com"]["verified"] is False
    invited = await provisioned(client, workspace, "victim@gmail.com")
    assert (await member(client, workspace, invited))["status"] == "invited"


async def test_the_published_challenge_verifies_the_domain_and_the_log_says_how(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, dns_server: DnsServer
) -> None:
    token = await token_of(client, workspace, "acme.test")
    dns_server.publish("_scimledger-challenge.acme.test", "v=spf1 -all", token)
    mark = await head(app.state.pool)
    response = await verify(client, workspace, "ACME.test")
    assert response.status_code == 200, response.text
    assert (await domains(client, workspace))["acme.test"] == {"domain": "acme.test", "verified": True}
    [verified] = [e for e in await events_since(app.state.pool, mark) if e.event_type == "DomainVerified"]
    assert verified.data["method"] == "dns"
    assert verified.data["record"] == "_scimledger-challenge.acme.test"
    assert (verified.metadata["actor"]["kind"], verified.metadata["source"]) == ("admin", "admin")
    direct = await provisioned(client, workspace, "ada@acme.test")
    assert (await member(client, workspace, direct))["status"] == "active"


async def test_a_record_holding_another_workspaces_token_does_not_verify(
    client: httpx.AsyncClient, workspace: Workspace, other: Workspace, app: Any, dns_server: DnsServer
) -> None:
    await add_domain(client, workspace, "acme.test")
    dns_server.publish("_scimledger-challenge.acme.test", await token_of(client, other, "acme.test"))
    async with appends_nothing(app.state.pool):
        response = await verify(client, workspace, "acme.test")
    error = assert_admin_error(response, 409, "domain_not_proven")
    assert "_scimledger-challenge.acme.test" in error["message"]
    assert "do not hold this workspace's challenge" in error["message"]
    assert (await domains(client, workspace))["acme.test"]["verified"] is False
    assert (await verify(client, other, "acme.test")).status_code == 200  # its own record proves it


async def test_two_workspaces_each_verify_the_same_domain_with_their_own_record(
    client: httpx.AsyncClient, workspace: Workspace, other: Workspace, dns_server: DnsServer
) -> None:
    for ws in (workspace, other):
        dns_server.publish("_scimledger-challenge.shared.test", await token_of(client, ws, "shared.test"))
    for ws in (workspace, other):
        assert (await verify(client, ws, "shared.test")).status_code == 200
        assert (await domains(client, ws))["shared.test"]["verified"] is True


async def test_verifying_a_verified_domain_looks_nothing_up_and_changes_nothing(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, dns_server: DnsServer
) -> None:
    async with appends_nothing(app.state.pool):
        assert (await verify(client, workspace, "example.com")).status_code == 200
    assert dns_server.queries == []


@pytest.fixture
def silent_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A DNS "server" that receives queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    monkeypatch.setenv("SCIMLEDGER_DNS_SERVERS", f"127.0.0.1:{sock.getsockname()[1]}")
    try:
        yield
    finally:
        sock.close()


async def test_a_dns_server_that_never_answers_times_out_without_blocking_the_server(
    client: httpx.AsyncClient, workspace: Workspace, silent_dns: None
) -> None:
    await add_domain(client, workspace, "slow.test")
    started = time.monotonic()
    verifying = asyncio.create_task(verify(client, workspace, "slow.test"))
    await asyncio.sleep(0.2)
    meanwhile = await client.get("/api/v1/workspace", headers=admin_auth(workspace))
    answered_in = time.monotonic() - started
    response = await verifying
    assert meanwhile.status_code == 200
    assert answered_in < 1.0  # served while the look-up waits (the resolver gives up after 3 s)
    error = assert_admin_error(response, 409, "domain_not_proven")
    assert "no DNS server answered" in error["message"]
    assert time.monotonic() - started < 10


# --- the CLI: a real ``scimledger`` process -------------------------------------------------------------
def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SCIMLEDGER_MIGRATE_URL"}
    env["DATABASE_URL"] = database_url
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


async def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, database_url, *args)


async def test_the_cli_verifies_without_dns_on_the_operators_word_recorded_as_such(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    await add_domain(client, workspace, "onprem.internal")
    mark = await head(app.state.pool)
    args = ["domain", "verify", "--workspace", str(workspace.id), "--domain", "onprem.internal", "--no-dns"]
    done = await cli(database_url, *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "workspace_id": str(workspace.id),
        "domain": "onprem.internal",
        "verified": True,
        "method": "operator",
    }
    [verified] = await events_since(app.state.pool, mark)
    assert (verified.event_type, verified.data["method"], verified.data["record"]) == (
        "DomainVerified",
        "operator",
        None,
    )
    assert (verified.metadata["actor"]["kind"], verified.metadata["source"]) == ("operator", "system")
    assert (await domains(client, workspace))["onprem.internal"]["verified"] is True


async def test_the_cli_adds_a_domain_and_verifies_it_by_dns(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str, dns_server: DnsServer
) -> None:
    ws = str(workspace.id)
    added = await cli(database_url, "domain", "add", "--workspace", ws, "--domain", "Acme.Test")
    assert added.returncode == 0, added.stderr
    challenge = json.loads(added.stdout)["challenge"]
    assert (challenge["record"], challenge["type"]) == ("_scimledger-challenge.acme.test", "TXT")

    refused = await cli(database_url, "domain", "verify", "--workspace", ws, "--domain", "acme.test")
    assert refused.returncode == 1
    assert "_scimledger-challenge.acme.test" in refused.stderr

    dns_server.publish(challenge["record"], challenge["value"])
    mark = await head(app.state.pool)
    done = await cli(database_url, "domain", "verify", "--workspace", ws, "--domain", "acme.test")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["method"] == "dns"
    [verified] = await events_since(app.state.pool, mark)
    assert (verified.data["method"], verified.metadata["actor"]["kind"]) == ("dns", "operator")
