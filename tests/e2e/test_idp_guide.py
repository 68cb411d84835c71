"""``GET /``, the IdP admin's guide (README, "Connecting your IdP"): the SCIM base URL it shows, and a real
server answering exactly the calls it says Entra's "Test Connection" and Okta's "Test Connector
Configuration" make, with a SCIM token made through the admin API as the guide says; the admin key in its
place is refused with a 401 that says what to use instead; and HTTPS with ``serve --ssl-certfile``."""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import ipaddress
import os
import re
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scimledger.api.auth import ADMIN_KEY_IS_NOT_A_TOKEN
from scimledger.app import create_app
from scimledger.config import Settings
from scimledger.store.event_store import EventStore
from tests.conftest import Workspace, make_workspace, temp_home
from tests.e2e.conftest import CLI, free_port
from tests.e2e.live_server import live_server

README = Path(__file__).resolve().parents[2] / "README.md"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def scim_base_shown(page: str) -> str:
    found = re.search(r'<code id="scim-base">(.*?)</code>', page)
    assert found, "the guide shows no SCIM base URL"
    return html.unescape(found.group(1))


def calls_in(page: str) -> dict[str, list[str]]:
    """The test calls the guide lists, per IdP: ``{"entra": ['GET /Users?filter=...'], ...}``."""
    return {
        idp: [html.unescape(c) for c in re.findall(r'<code class="call">(.*?)</code>', items)]
        for idp, items in re.findall(r'<ul class="calls" data-idp="(\w+)">(.*?)</ul>', page, re.S)
    }


async def test_the_guide_shows_the_public_scim_url_under_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert scim_base_shown(response.text) == "https://scim.example.test/scim/v2"  # SCIMLEDGER_PUBLIC_URL
    assert "https://scim.example.test/api/v1/tokens" in response.text
    policy = response.headers["content-security-policy"]
    style = re.search(r"<style>(.*?)</style>", response.text, re.S)
    assert style is not None and "<script" not in response.text
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert response.headers["cache-control"] == "no-store"


async def test_without_a_public_url_the_guide_shows_the_requests_own_base_and_never_markup(
    database_url: str,
) -> None:
    app = create_app(
        Settings(home=temp_home(), public_url=None, database_url=database_url), run_lagging=False
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scim.acme.test") as client:
            assert scim_base_shown((await client.get("/")).text) == "http://scim.acme.test/scim/v2"
            hostile = (await client.get("/", headers={"Host": 'x"><b>y</b>'})).text
    assert "<b>y</b>" not in hostile and scim_base_shown(hostile).endswith("/scim/v2")


async def test_an_admin_key_sent_to_scim_is_told_to_use_a_scim_token(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    before = await app.state.pool.fetchval("SELECT count(*) FROM events")
    response = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {workspace.admin_key}"})
    assert response.status_code == 401
    body = response.json()
    assert body["schemas"] == [ERROR] and body["detail"] == ADMIN_KEY_IS_NOT_A_TOKEN
    assert workspace.admin_key not in response.text
    assert await app.state.pool.fetchval("SELECT count(*) FROM events") == before


def expect_empty_list(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["schemas"] == [LIST] and body["totalResults"] == 0 and not body.get("Resources")


async def test_a_real_server_answers_the_calls_the_guide_says_entra_and_okta_make(
    database_url: str, store: EventStore
) -> None:
    ws = await make_workspace(store, domains=("example.com",), seats=10)
    with live_server(database_url, run_lagging=False) as base:
        async with httpx.AsyncClient(timeout=10) as http:
            page = (await http.get(f"{base}/")).text
            scim = scim_base_shown(page)
            assert scim == f"{base}/scim/v2"  # no SCIMLEDGER_PUBLIC_URL: the request's own base
            tokens_url = html.unescape(re.search(r"POST (\S+/tokens)</code>", page).group(1))  # type: ignore[union-attr]
            made = await http.post(
                tokens_url, headers={"Authorization": f"Bearer {ws.admin_key}"}, json={"name": "Entra ID"}
            )
            assert made.status_code == 201, made.text
            token = made.json()["token"]
            assert token.startswith("sltok_")
            auth = {"Authorization": f"Bearer {token}"}
            person = {"userName": "ada@example.com"}
            assert (await http.post(f"{scim}/Users", json=person, headers=auth)).status_code == 201

            calls = calls_in(page)
            assert set(calls) == {"entra", "okta"} and all(calls.values())
            readme = README.read_text()
            for call in [*calls["entra"], *calls["okta"]]:
                assert call in readme, f"README's 'Connecting your IdP' does not list {call}"

            def url(call: str) -> str:
                method, _, path = call.partition(" ")
                assert method == "GET"
                return scim + path.replace("<random GUID>", str(uuid4()))

            for call in calls["entra"]:  # Test Connection: nothing matches a random GUID
                expect_empty_list(await http.get(url(call), headers=auth))
                refused = await http.get(url(call), headers={"Authorization": f"Bearer {ws.admin_key}"})
                assert (refused.status_code, refused.json()["detail"]) == (401, ADMIN_KEY_IS_NOT_A_TOKEN)

            users, config = calls["okta"]
            listed = await http.get(url(users), headers=auth)
            assert listed.status_code == 200, listed.text
            body = listed.json()
            assert body["schemas"] == [LIST] and body["startIndex"] == 1 and body["itemsPerPage"] == 1
            assert [r["userName"] for r in body["Resources"]] == ["ada@example.com"]
            for headers in (auth, {}):  # discovery needs no token
                answered = await http.get(url(config), headers=headers)
                assert answered.status_code == 200
                assert [s["type"] for s in answered.json()["authenticationSchemes"]] == ["oauthbearertoken"]


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_serve_speaks_https_with_the_tls_flags(database_url: str) -> None:
    home = temp_home()
    cert, key = self_signed(home)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SCIMLEDGER_HOME": str(home)}
    env.pop("SCIMLEDGER_MIGRATE_URL", None)
    argv = [*CLI, "serve", "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the server did not start"
            try:
                page = httpx.get(f"https://127.0.0.1:{port}/", verify=trusted, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert page.status_code == 200
        assert scim_base_shown(page.text) == f"https://127.0.0.1:{port}/scim/v2"
        assert httpx.get(f"https://127.0.0.1:{port}/readyz", verify=trusted).status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
