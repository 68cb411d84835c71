"""``GET /metrics`` (README, "Operating it"): who may scrape, and that each metric counts what it says,
read back in the Prometheus text format. Metrics are per process and shared by the tests of this process,
so every check compares a scrape after with a scrape before."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from projections.runner import catch_up
from scimledger import metrics, notifications, pg
from scimledger.api import metrics as metrics_api
from scimledger.config import ConfigError
from tests.conftest import Workspace
from tests.e2e.conftest import serve

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN = "metrics-scraper-token-0123456789"


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


@pytest.fixture
def scrapable(app: Any) -> Any:
    app.state.metrics_access = metrics_api.Access(token=TOKEN)
    return app


async def events_by_type(app: Any) -> dict[str, int]:
    rows = await app.state.pool.fetch("SELECT event_type, count(*) FROM events GROUP BY 1")
    return {r[0]: r[1] for r in rows}


# --- who may scrape -----------------------------------------------------------------------------------------
async def test_metrics_are_off_unless_configured(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "SCIMLEDGER_METRICS" in response.json()["error"]["message"]


async def test_with_a_token_configured_only_a_scrape_carrying_it_is_answered(
    scrapable: Any, client: httpx.AsyncClient
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in response.text
    assert "scimledger_http_requests_total" in (await client.get("/metrics", headers=bearer())).text


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def test_open_metrics_need_no_token(app: Any, client: httpx.AsyncClient) -> None:
    app.state.metrics_access = metrics_api.Access(open=True)
    assert (await client.get("/metrics")).status_code == 200


def test_access_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert metrics_api.Access.from_env() == metrics_api.Access(open=False, token=None)
    monkeypatch.setenv("SCIMLEDGER_METRICS", "open")
    assert metrics_api.Access.from_env() == metrics_api.Access(open=True, token=None)
    monkeypatch.setenv("SCIMLEDGER_METRICS_TOKEN", TOKEN)
    assert metrics_api.Access.from_env().token == TOKEN
    monkeypatch.setenv("SCIMLEDGER_METRICS_TOKEN", "short")
    with pytest.raises(ConfigError) as refused:
        metrics_api.Access.from_env()
    assert refused.value.setting == "SCIMLEDGER_METRICS_TOKEN"
    monkeypatch.setenv("SCIMLEDGER_METRICS", "yes")
    with pytest.raises(ConfigError):
        metrics_api.Access.from_env()


# --- what is counted ----------------------------------------------------------------------------------------
async def test_requests_are_counted_by_route_template_method_and_status(
    scrapable: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    before = await scrape(client)
    missing = str(uuid4())
    for _ in range(2):
        assert (await client.get(f"/scim/v2/Users/{missing}", headers=workspace.auth)).status_code == 404
    assert (await client.get("/no/such/page")).status_code == 404
    after = await scrape(client)
    route = {"route": "/scim/v2/Users/{id}", "method": "GET"}
    requests = "scimledger_http_requests_total"
    assert value(after, requests, **route, status="404") - value(before, requests, **route, status="404") == 2
    latency = "scimledger_http_request_duration_seconds_count"
    assert value(after, latency, **route) - value(before, latency, **route) == 2
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, requests, **unmatched) - value(before, requests, **unmatched) == 1
    labels = {v for _, pairs in after for _, v in pairs}
    assert missing not in str(labels) and "/no/such/page" not in labels  # paths never become labels


async def test_committed_events_are_counted_by_type_and_a_refused_request_counts_nothing(
    scrapable: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    in_log, before = await events_by_type(scrapable), await scrape(client)
    user = {"userName": "ada@example.com"}
    assert (await client.post("/scim/v2/Users", json=user, headers=workspace.auth)).status_code == 201
    appended = {t: n - in_log.get(t, 0) for t, n in (await events_by_type(scrapable)).items()}
    after = await scrape(client)
    counted = {
        t: value(after, "scimledger_events_appended_total", type=t)
        - value(before, "scimledger_events_appended_total", type=t)
        for t in appended
    }
    assert counted == appended and appended["MemberProvisioned"] == 1
    assert (await client.post("/scim/v2/Users", json=user, headers=workspace.auth)).status_code == 409
    again = await scrape(client)
    events = {k: v for k, v in again.items() if k[0] == "scimledger_events_appended_total"}
    assert events == {k: v for k, v in after.items() if k[0] == "scimledger_events_appended_total"}


async def test_group_commit_batches_count_every_command_and_event_once(
    scrapable: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    in_log, before = sum((await events_by_type(scrapable)).values()), await scrape(client)
    users = [{"userName": f"user{n}@example.com"} for n in range(8)]
    answers = await asyncio.gather(
        *(client.post("/scim/v2/Users", json=u, headers=workspace.auth) for u in users)
    )
    assert [a.status_code for a in answers] == [201] * 8
    appended = sum((await events_by_type(scrapable)).values()) - in_log
    after = await scrape(client)

    def delta(name: str) -> float:
        return value(after, name) - value(before, name)

    assert delta("scimledger_commit_batch_commands_sum") == 8
    assert 1 <= delta("scimledger_commit_batch_commands_count") <= 8
    assert delta("scimledger_commit_batch_events_sum") == appended
    assert delta("scimledger_commit_batch_events_count") == delta("scimledger_commit_batch_commands_count")


async def test_outbox_gauges_follow_the_outbox_and_deliveries_are_counted_by_kind(
    scrapable: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    pool = scrapable.state.pool
    user = {"userName": "grace@example.com"}
    assert (await client.post("/scim/v2/Users", json=user, headers=workspace.auth)).status_code == 201
    await catch_up(pool)
    before = await scrape(client)
    assert value(before, "scimledger_outbox_unsent") == 2  # "added" and "welcome"
    assert value(before, "scimledger_outbox_oldest_unsent_age_seconds") > 0
    sent = await notifications.deliver_pending(pool, metrics.CountingSender(notifications.LogSender()))
    assert sent == 2
    after = await scrape(client)
    assert value(after, "scimledger_outbox_unsent") == 0
    assert value(after, "scimledger_outbox_oldest_unsent_age_seconds") == 0
    for kind in ("added", "welcome"):
        name = "scimledger_notifications_sent_total"
        assert value(after, name, kind=kind) - value(before, name, kind=kind) == 1


class Refusing:
    async def send(self, notification: notifications.Notification) -> None:
        raise ConnectionRefusedError("the mail server is down")


async def test_a_failed_delivery_is_counted_and_the_notification_stays_unsent(
    scrapable: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    pool = scrapable.state.pool
    user = {"userName": "alan@example.com"}
    assert (await client.post("/scim/v2/Users", json=user, headers=workspace.auth)).status_code == 201
    await catch_up(pool)
    before = await scrape(client)
    with pytest.raises(ConnectionRefusedError):
        await notifications.deliver_pending(pool, metrics.CountingSender(Refusing()))
    after = await scrape(client)
    name = "scimledger_notifications_failed_total"
    assert value(after, name, kind="added") - value(before, name, kind="added") == 1
    assert value(after, "scimledger_outbox_unsent") == 2


async def test_the_pool_and_the_database_are_shown(scrapable: Any, client: httpx.AsyncClient) -> None:
    samples = await scrape(client)
    assert (
        value(samples, "scimledger_db_pool_connections", state="max") == scrapable.state.pool.get_max_size()
    )
    assert value(samples, "scimledger_db_pool_connections", state="open") >= 1
    assert value(samples, "scimledger_database_up") == 1


# --- several workers ----------------------------------------------------------------------------------------
@pytest.fixture
def two_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str], Path]]:
    monkeypatch.setenv("SCIMLEDGER_METRICS", "open")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    yield from serve("--workers", "2")


def test_serve_with_two_workers_adds_up_both_workers_in_every_scrape(
    two_workers: tuple[str, dict[str, str], Path],
) -> None:
    url, _, _ = two_workers
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # serve made its own
    deadline = time.monotonic() + 30
    while value(parse(httpx.get(f"{url}/metrics").text), "scimledger_workers") != 2:  # both started
        assert time.monotonic() < deadline, "the second worker did not start"
        time.sleep(0.2)
    for _ in range(30):  # a new connection each: the kernel hands them to either worker
        assert httpx.get(f"{url}/healthz", headers={"Connection": "close"}).status_code == 200
    scrapes = [parse(httpx.get(f"{url}/metrics", headers={"Connection": "close"}).text) for _ in range(6)]
    for samples in scrapes:
        assert value(samples, "scimledger_workers") == 2
        healthz = {"route": "/healthz", "method": "GET", "status": "200"}
        assert value(samples, "scimledger_http_requests_total", **healthz) == 30
        per_worker = inspect.signature(pg.create_pool).parameters["max_size"].default
        assert value(samples, "scimledger_db_pool_connections", state="max") == 2 * per_worker
