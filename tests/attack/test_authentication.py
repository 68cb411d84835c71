"""Authentication under attack (issue 8, "Attack suite"; RFC 7644 §2, RFC 6750 §3): missing, malformed,
forged, revoked, wrong-scope and wrong-API credentials are refused with the right status and body and append
nothing; and no secret (SCIM token, admin key) ever reaches a log record (``scimledger.access`` included),
an event row, an error body or a ``pg_dump`` of the database. Their SHA-256 hashes are stored by design.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from scimledger import credentials, pg
from tests.attack.conftest import admin
from tests.conftest import Workspace, make_workspace

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_READ = ("GET", "/scim/v2/Users")
ADMIN_READ = ("GET", "/api/v1/workspace")


@dataclass
class Keys:
    """A workspace with a read-write token (``ws.token``), a read-only token, a revoked token, a revoked
    admin key of another workspace, and a member to aim writes at."""

    ws: Workspace
    read_only: str
    revoked_token: str
    revoked_key: str
    member: str

    def secrets(self) -> list[str]:
        return [self.ws.token, self.ws.admin_key, self.read_only, self.revoked_token, self.revoked_key]


@pytest.fixture
async def keys(unlimited: Any, client: httpx.AsyncClient) -> Keys:
    store, pool = unlimited.state.store, unlimited.state.pool
    ws = await make_workspace(store, domains=("example.com",), seats=10)
    member = await client.post("/scim/v2/Users", json={"userName": "m@example.com"}, headers=ws.auth)
    assert member.status_code == 201
    issued = []
    for scopes in (["scim:read"], ["scim:read", "scim:write"]):
        made = await client.post("/api/v1/tokens", json={"name": "t", "scopes": scopes}, headers=admin(ws))
        assert made.status_code == 201
        issued.append(made.json())
    revoked = await client.delete(f"/api/v1/tokens/{issued[1]['id']}", headers=admin(ws))
    assert revoked.status_code == 204
    gone = await make_workspace(store, name="Gone")
    await client.post("/api/v1/admin-keys", headers=admin(gone))  # a workspace keeps an active admin key
    secret_hash = credentials.secret_hash(gone.admin_key)
    await pool.execute("UPDATE admin_keys SET revoked_at = now() WHERE secret_hash = $1", secret_hash)
    return Keys(ws, issued[0]["token"], issued[1]["token"], gone.admin_key, member.json()["id"])


async def log_size(app: Any) -> int:
    count: int = await app.state.pool.fetchval("SELECT count(*) FROM events")
    return count


def check_refusal(response: httpx.Response, status: int, sent: str | None) -> None:
    """The status, the API's error body (RFC 7644 §3.12 on /scim, ``{"error"}`` on /api), a
    ``WWW-Authenticate: Bearer`` challenge on 401 (RFC 6750 §3), and no echo of the credential."""
    shown = (
        f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text}"
    )
    assert response.status_code == status, shown
    body = response.json()
    if response.request.url.path.startswith("/scim/"):
        assert response.headers["content-type"].startswith("application/scim+json"), shown
        assert body["schemas"] == [ERROR_URN] and body["status"] == str(status), shown
        assert body["detail"].strip(), shown
    else:
        assert set(body) == {"error"} and body["error"]["code"] == str(status), shown
        assert body["error"]["message"].strip(), shown
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer"), shown
    if sent:
        assert sent not in response.text, shown
        assert sent not in str(response.headers), shown


# --------------------------------------------------------------------------------------------------
# Who is refused, and how

Credential = Callable[[Keys], str | None]
MALFORMED: dict[str, Credential] = {
    "no-bearer-value": lambda k: "Bearer",
    "basic-scheme": lambda k: "Basic dXNlcjpwYXNz",
    "token-without-scheme": lambda k: k.ws.token,
    "wrong-checksum": lambda k: f"Bearer {k.ws.token[:-1]}{'A' if k.ws.token[-1] != 'A' else 'B'}",
    "truncated": lambda k: f"Bearer {k.ws.token[:-3]}",
    "padded": lambda k: f"Bearer {k.ws.token}x",
    "two-tokens": lambda k: f"Bearer {k.ws.token} {k.ws.token}",
    "huge": lambda k: "Bearer " + "A" * 8000,
    "latin-1": lambda k: "Bearer sltok_\xe9\xe9",
    "admin-key-relabelled-as-token": lambda k: f"Bearer {k.ws.admin_key.replace('slkey', 'sltok')}",
}
REFUSED: dict[str, tuple[Credential, Credential]] = {
    # name: (credential on /scim/v2, credential on /api/v1)
    "missing": (lambda k: None, lambda k: None),
    "forged": (
        lambda k: f"Bearer {credentials.generate(credentials.SCIM_TOKEN_PREFIX)}",
        lambda k: f"Bearer {credentials.generate(credentials.ADMIN_KEY_PREFIX)}",
    ),
    "revoked": (lambda k: f"Bearer {k.revoked_token}", lambda k: f"Bearer {k.revoked_key}"),
    "wrong-api": (lambda k: f"Bearer {k.ws.admin_key}", lambda k: f"Bearer {k.ws.token}"),
    **{f"malformed-{name}": (make, make) for name, make in MALFORMED.items()},
}


def header(value: str | None) -> dict[str, bytes]:
    return {} if value is None else {"Authorization": value.encode("latin-1")}


ROUTES = [SCIM_READ, ("POST", "/scim/v2/Users"), ADMIN_READ]


def problems(response: httpx.Response, status: int, secret: str | None) -> list[str]:
    try:
        check_refusal(response, status, secret)
    except (AssertionError, KeyError, ValueError) as error:
        return [f"{response.request.method} {response.request.url.path}: {error!r}"]
    return []


async def test_a_credential_that_is_not_valid_for_the_api_is_401_and_appends_nothing(
    unlimited: Any, client: httpx.AsyncClient, keys: Keys
) -> None:
    """Every kind of refused credential on a SCIM read, a SCIM write and an admin read."""
    before = await log_size(unlimited)
    wrong: list[str] = []
    for kind, (on_scim, on_admin) in sorted(REFUSED.items()):
        for method, path in ROUTES:
            sent = (on_scim if path.startswith("/scim/") else on_admin)(keys)
            body = {"userName": "new@example.com"}
            response = await client.request(method, path, json=body, headers=header(sent))
            secret = sent.partition(" ")[2] if sent and " " in sent else sent
            found = problems(response, 401, secret if secret and len(secret) > 10 else None)
            wrong += [f"{kind}: {problem}" for problem in found]
    assert not wrong, "\n".join(wrong)
    assert await log_size(unlimited) == before


WRITES = [
    ("POST", "/scim/v2/Users", {"userName": "ro@example.com"}),
    ("PUT", "/scim/v2/Users/{member}", {"userName": "m@example.com", "title": "x"}),
    (
        "PATCH",
        "/scim/v2/Users/{member}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "x"}]},
    ),
    ("DELETE", "/scim/v2/Users/{member}", None),
    ("POST", "/scim/v2/Groups", {"displayName": "ro"}),
    (
        "POST",
        "/scim/v2/Bulk",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"method": "POST", "path": "/Users", "data": {"userName": "b@example.com"}}],
        },
    ),
]


async def test_a_read_only_token_reads_but_every_write_is_403_and_appends_nothing(
    unlimited: Any, client: httpx.AsyncClient, keys: Keys
) -> None:
    auth = {"Authorization": f"Bearer {keys.read_only}"}
    assert (await client.get("/scim/v2/Users", headers=auth)).status_code == 200
    before = await log_size(unlimited)
    wrong: list[str] = []
    for method, path, body in WRITES:
        response = await client.request(method, path.format(member=keys.member), json=body, headers=auth)
        wrong += problems(response, 403, keys.read_only)
    assert not wrong, "\n".join(wrong)
    assert await log_size(unlimited) == before


# --------------------------------------------------------------------------------------------------
# Secrets never leave


async def exercise(client: httpx.AsyncClient, keys: Keys) -> list[httpx.Response]:
    """Every secret used every way: accepted, refused, on the wrong API, in writes and reads."""
    answers = []
    for secret in keys.secrets():
        for path in ("/scim/v2/Users", "/api/v1/workspace", "/api/v1/members", "/scim/v2/Groups"):
            answers.append(await client.get(path, headers={"Authorization": f"Bearer {secret}"}))
        answers.append(
            await client.post(
                "/scim/v2/Users",
                json={"userName": f"u{len(answers)}@example.com"},
                headers={"Authorization": f"Bearer {secret}"},
            )
        )
        answers.append(
            await client.post(
                "/api/v1/teams",
                json={"name": f"t{len(answers)}"},
                headers={"Authorization": f"Bearer {secret}"},
            )
        )
        answers.append(await client.get("/scim/v2/Users", headers={"Authorization": secret}))
    return answers


def pg_dump(database_url: str) -> str:
    """A plain-text dump of the whole database, by the pg_dump beside the server's binaries (or the
    system's)."""
    found = pg.find_bin_dir() / "pg_dump"
    binary = str(found) if found.exists() else shutil.which("pg_dump")
    assert binary, "no pg_dump"
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    done = subprocess.run(
        [binary, "--no-owner", "--dbname", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def record_text(record: logging.LogRecord) -> str:
    """Everything a log handler could write about a record: message, arguments, extra fields, traceback."""
    return " ".join([record.getMessage(), repr(record.args), repr(vars(record)), record.exc_text or ""])


async def test_no_secret_reaches_a_log_an_event_an_error_body_or_a_pg_dump(
    unlimited: Any,
    client: httpx.AsyncClient,
    keys: Keys,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = await exercise(client, keys)
    assert {r.status_code for r in answers} >= {200, 201, 401, 403}
    secrets = keys.secrets()

    access = [r for r in caplog.records if r.name == "scimledger.access"]
    assert len(access) >= len(answers), "the access log was captured"
    logged = "\n".join(record_text(r) for r in caplog.records)
    assert not [s for s in secrets if s in logged]

    bodies = "\n".join(f"{r.headers}\n{r.text}" for r in answers)
    assert not [s for s in secrets if s in bodies]

    rows = await unlimited.state.pool.fetch("SELECT e::text AS row FROM events e")
    assert rows
    stored = "\n".join(r["row"] for r in rows)
    assert not [s for s in secrets if s in stored]

    dump = pg_dump(database_url)
    assert not [s for s in secrets if s in dump]
    hashes = [hashlib.sha256(s.encode()).hexdigest() for s in secrets]
    assert all(h in dump for h in hashes), "the dump holds every secret's hash (the tables were dumped)"
