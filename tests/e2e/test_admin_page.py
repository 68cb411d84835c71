"""The ``/admin`` audit page in a real headless Chromium (issue 7, "Audit page").

One real server (uvicorn on 127.0.0.1, ``tests/e2e/live_server.py``) and one browser serve the whole module:
a workspace gets its history through HTTP (SCIM creates, a role change, a team, a PATCH that suspends), then
each test opens a fresh browser context (empty session storage) and drives the page as an admin would.
The browser is Debian's ``chromium`` driven by Playwright for Python (``executable_path``: browser
downloads are unreachable from CI, so ``playwright install`` is never run); without it the tests fail.
Screenshots go to ``tests/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from scimledger import credentials, pg
from scimledger.app import build_store
from tests.conftest import make_workspace, with_database
from tests.e2e.live_server import live_server

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = (
    f"{CHROMIUM} not found: the /admin page is tested in Debian's headless Chromium. "
    "Install it with `apt-get update && apt-get install -y chromium` (.ci/run does this as root)."
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
HOSTILE_NAME = '<img src=x onerror="document.title=1">Mallory'
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass(frozen=True)
class AuditedWorkspace:
    """A workspace with some history, served at ``url``."""

    url: str
    admin_key: str
    token_id: str
    ada: str  # admin from the start
    bob: str  # member, then admin, then suspended
    mallory: str  # a displayName that is HTML
    before_promotion: str  # a time after Bob joined and before he became an admin (RFC 3339)


# --- the server and its workspace ------------------------------------------------------------------------
def between(earlier: str, later: str) -> str:
    start, end = datetime.fromisoformat(earlier), datetime.fromisoformat(later)
    assert start < end, (earlier, later)
    return (start + (end - start) / 2).isoformat().replace("+00:00", "Z")


async def record_history(api: httpx.AsyncClient, scim: httpx.AsyncClient) -> dict[str, str]:
    """SCIM creates, a role change, a team and a suspension, each through HTTP as an IdP would send them."""

    async def create(body: dict[str, Any]) -> str:
        response = await scim.post("/Users", json={"schemas": [SCIM_USER], **body})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def patch(member: str, value: dict[str, Any]) -> None:
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": value}]}
        assert (await scim.patch(f"/Users/{member}", json=body)).status_code == 200

    ada = await create({"userName": "ada@example.com", "roles": [{"value": "admin"}]})
    bob = await create({"userName": "bob@example.com"})
    mallory = await create({"userName": "mallory@example.com", "displayName": HOSTILE_NAME})
    await asyncio.sleep(0.01)  # a gap the "as of" time can fall into
    await patch(bob, {"roles": [{"value": "admin"}]})
    team = await scim.post("/Groups", json={"displayName": "Engineering", "members": [{"value": bob}]})
    assert team.status_code == 201, team.text
    await patch(bob, {"active": False})
    page = (await api.get("/audit", params={"member": bob, "order": "asc"})).json()["entries"]
    joined = max(e["recorded_at"] for e in page if e["type"] == "MemberProvisioned")
    promoted = min(e["recorded_at"] for e in page if e["type"] == "MemberRoleChanged")
    return {"ada": ada, "bob": bob, "mallory": mallory, "before_promotion": between(joined, promoted)}


@pytest.fixture(scope="module")
async def site(server_url: str, template_database: str) -> AsyncIterator[AuditedWorkspace]:
    name = f"scimledger_test_{uuid4().hex[:16]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    url = with_database(server_url, name)
    try:
        pool = await pg.create_pool(url, min_size=1, max_size=2)
        try:
            workspace = await make_workspace(build_store(pool), domains=("example.com",), seats=10)
        finally:
            await pool.close()
        with live_server(url) as base:
            api_auth = {"Authorization": f"Bearer {workspace.admin_key}"}
            async with (
                httpx.AsyncClient(base_url=f"{base}/api/v1", headers=api_auth, trust_env=False) as api,
                httpx.AsyncClient(
                    base_url=f"{base}/scim/v2", headers=workspace.auth, trust_env=False
                ) as scim,
            ):
                ids = await record_history(api, scim)
                (token,) = (await api.get("/tokens")).json()["tokens"]
            yield AuditedWorkspace(url=base, admin_key=workspace.admin_key, token_id=token["id"], **ids)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# --- the browser ----------------------------------------------------------------------------------------
def chromium() -> str:
    """The browser's path; a machine without it fails the tests (CI installs it), never skips them."""
    assert CHROMIUM.is_file(), NO_CHROMIUM
    return str(CHROMIUM)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, site: AuditedWorkspace) -> AsyncIterator[Page]:
    """A fresh context (no session storage, no cookies); page errors and CSP violations fail the test."""
    context = await browser.new_context(base_url=site.url, viewport={"width": 1400, "height": 1000})
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on("console", lambda m: problems.append(f"{m.text} {m.location}") if is_violation(m) else None)
    yield opened
    await context.close()
    assert not problems, problems


def is_violation(message: ConsoleMessage) -> bool:
    """A console error (a CSP violation, a missing asset), except an API call answered with an error: the
    page handles those and shows them (some tests provoke one on purpose)."""
    answered = message.text.startswith("Failed to load resource") and "/api/v1/" in message.location["url"]
    return message.type == "error" and not answered


async def sign_in(page: Page, key: str) -> None:
    await page.goto("/admin")
    await page.fill("#admin-key", key)
    await page.click("#sign-in-form button[type=submit]")


async def signed_in(page: Page, site: AuditedWorkspace) -> None:
    await sign_in(page, site.admin_key)
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#events tbody tr").first).to_be_visible()


async def filter_timeline(page: Page, **values: str) -> None:
    form = page.locator("#filters")
    for name, value in values.items():
        await form.locator(f"[name={name}]").fill(value)
    await form.locator("button[type=submit]").click()


async def column(page: Page, index: int) -> list[str]:
    return await page.locator(f"#events tbody tr td:nth-child({index})").all_text_contents()


# --- tests -------------------------------------------------------------------------------------------------
async def test_the_page_is_served_with_a_strict_policy_and_never_cached(site: AuditedWorkspace) -> None:
    async with httpx.AsyncClient(base_url=site.url, trust_env=False) as http:
        html, script, missing = await asyncio.gather(
            http.get("/admin"), http.get("/admin/admin.js"), http.get("/admin/secrets.txt")
        )
    assert html.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    for response in (html, script):
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert "unsafe" not in policy
        assert response.headers["cache-control"] == "no-store"
    assert missing.status_code == 404


async def test_signing_in_keeps_the_key_in_session_storage_only(page: Page, site: AuditedWorkspace) -> None:
    await signed_in(page, site)
    await expect(page.locator("#workspace")).to_contain_text("Acme")
    stored = await page.evaluate(
        "() => [sessionStorage.getItem('scimledger.adminKey'), localStorage.length, document.cookie]"
    )
    assert stored == [site.admin_key, 0, ""]
    assert await page.context.cookies() == []
    assert site.admin_key not in page.url
    await page.screenshot(path=ARTIFACTS / "admin-page.png", full_page=True)


async def test_signing_out_forgets_the_key_and_what_was_shown(page: Page, site: AuditedWorkspace) -> None:
    await signed_in(page, site)
    await page.click("#sign-out")
    await expect(page.locator("#sign-in")).to_be_visible()
    assert await page.evaluate("() => sessionStorage.length") == 0
    assert await page.locator("#events tbody tr, #token-list tbody tr, #checkpoint dt").count() == 0


async def test_a_refused_key_returns_to_sign_in_with_the_reason(page: Page) -> None:
    await sign_in(page, credentials.generate(credentials.ADMIN_KEY_PREFIX))
    await expect(page.locator("#sign-in-message")).to_contain_text("invalid or has been revoked")
    await expect(page.locator("#console")).to_be_hidden()
    assert await page.evaluate("() => sessionStorage.length") == 0


async def test_an_api_error_is_shown_and_the_admin_stays_signed_in(
    page: Page, site: AuditedWorkspace
) -> None:
    await signed_in(page, site)
    await filter_timeline(page, since="yesterday")
    await expect(page.locator("#error")).to_contain_text("since must be an RFC 3339 date-time")
    await expect(page.locator("#console")).to_be_visible()


async def test_the_timeline_filtered_by_type_shows_only_that_type(page: Page, site: AuditedWorkspace) -> None:
    await signed_in(page, site)
    await filter_timeline(page, type="MemberSuspended")
    rows = page.locator("#events tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.locator("td.type")).to_have_text("MemberSuspended")
    await expect(rows.locator("td:nth-child(4)")).to_have_text("IdP token")


async def test_load_more_pages_through_a_members_events_without_repeats(
    page: Page, site: AuditedWorkspace
) -> None:
    await signed_in(page, site)
    await filter_timeline(page, member=site.bob, limit="2")
    await expect(page.locator("#events tbody tr")).to_have_count(2)
    await page.click("#load-more")
    await expect(page.locator("#events tbody tr")).to_have_count(4)
    positions = [int(p) for p in await column(page, 1)]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == 4


async def test_a_members_history_lists_their_events_in_order(page: Page, site: AuditedWorkspace) -> None:
    await signed_in(page, site)
    await page.select_option("#member-select", site.bob)
    await page.click("#member-form button[type=submit]")
    steps = page.locator("#history > li")
    await expect(steps.last).to_contain_text("MemberSessionsRevoked")
    types = await steps.locator("> strong").all_text_contents()
    order = [types.index(t) for t in ("MemberProvisioned", "MemberRoleChanged", "MemberSuspended")]
    assert order == sorted(order), types
    suspended = steps.nth(types.index("MemberSuspended"))
    await expect(suspended.locator("dt", has_text="status").locator("+ dd")).to_have_text("suspended")


async def test_as_of_a_time_between_two_changes_shows_the_older_state(
    page: Page, site: AuditedWorkspace
) -> None:
    await signed_in(page, site)
    await page.select_option("#member-select", site.bob)
    await page.fill("#as-of", site.before_promotion)
    await page.click("#as-of-show")
    member = page.locator("#as-of-member")
    await expect(member.locator("dt", has_text="role").locator("+ dd")).to_have_text("member")
    await expect(member.locator("dt", has_text="status").locator("+ dd")).to_have_text("active")
    admins = page.locator("#as-of-admins > li")
    await expect(admins).to_have_count(1)
    await expect(admins).to_contain_text("ada@example.com")
    await page.screenshot(path=ARTIFACTS / "admin-page-as-of.png", full_page=True)


async def test_token_activity_shows_the_events_the_token_caused(page: Page, site: AuditedWorkspace) -> None:
    await signed_in(page, site)
    await page.click(f"#token-list tr[data-token='{site.token_id}'] button")
    await expect(page.locator("#filters [name=actor]")).to_have_value(site.token_id)
    await expect(page.locator("#events tbody tr td:nth-child(4)").first).to_have_text("IdP token")
    # the filtered page replaces the whole timeline: wait until no other actor's row is left
    await expect(page.locator("#events tbody tr td:nth-child(4)", has_text="tests")).to_have_count(0)
    actors = await column(page, 4)
    assert actors and set(actors) == {"IdP token"}


async def test_the_verification_status_is_ok_with_the_latest_checkpoint(
    page: Page, site: AuditedWorkspace
) -> None:
    await signed_in(page, site)
    await expect(page.locator("#verify-status")).to_have_text("OK")
    await expect(page.locator("#checkpoint dt").first).to_be_visible()
    await expect(page.locator("#public-key dd").first).not_to_be_empty()


async def test_event_data_from_an_idp_is_shown_as_text_never_as_html(
    page: Page, site: AuditedWorkspace
) -> None:
    await signed_in(page, site)
    await filter_timeline(page, member=site.mallory, type="MemberProvisioned")
    data = page.locator("#events tbody tr pre")
    await expect(data).to_have_count(1)
    await expect(data).to_contain_text(HOSTILE_NAME.replace('"', '\\"'))
    assert await page.locator("#events img").count() == 0
    assert await page.title() != "1"
