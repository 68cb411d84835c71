"""Rate limits (issue 8, defect 5; README "Limits"): per SCIM token and admin key, and per client address
for failed authentication; 429 with ``Retry-After``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scimledger import credentials
from scimledger.api.rate_limit import Buckets, Limits, Rate, RateLimiter
from tests.conftest import Workspace, make_workspace


def test_a_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    buckets = Buckets(Rate(per_second=2, burst=3))
    assert [buckets.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", now=0.0) == pytest.approx(0.5)
    assert buckets.take("k", now=0.5) == 0.0  # one more after half a second at 2/s
    assert buckets.take("other", now=0.5) == 0.0  # keys are independent


def test_a_rate_is_divided_among_workers() -> None:
    assert Rate.parse("100/s,1000").divided(4) == Rate(25, 250)
    assert Rate.parse("0").per_second == 0
    assert Buckets(Rate.parse("0")).take("k") == 0.0  # off


@pytest.fixture
def strict(app: Any) -> Any:
    app.state.rate_limiter = RateLimiter(Limits(per_credential=Rate(1, 5), auth_failures=Rate(1, 3)))
    return app


async def test_a_token_over_its_rate_gets_429_with_retry_after(
    strict: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    statuses = [(await client.get("/scim/v2/Users", headers=workspace.auth)).status_code for _ in range(5)]
    assert statuses == [200] * 5
    refused = await client.get("/scim/v2/Users", headers=workspace.auth)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["status"] == "429"
    other = await make_workspace(strict.state.store, name="Other")
    assert (await client.get("/scim/v2/Users", headers=other.auth)).status_code == 200


async def test_an_admin_key_over_its_rate_gets_429(
    strict: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    admin = {"Authorization": f"Bearer {workspace.admin_key}"}
    for _ in range(5):
        assert (await client.get("/api/v1/workspace", headers=admin)).status_code == 200
    refused = await client.get("/api/v1/workspace", headers=admin)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "retry-after" in refused.headers


async def test_failed_authentications_throttle_the_address_even_for_a_valid_token(
    strict: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    forged = {"Authorization": f"Bearer {credentials.generate(credentials.SCIM_TOKEN_PREFIX)}"}
    statuses = [(await client.get("/scim/v2/Users", headers=forged)).status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    # while throttled, a correct credential is not told apart from a wrong one
    assert (await client.get("/scim/v2/Users", headers=workspace.auth)).status_code == 429
    assert (await client.get("/api/v1/workspace", headers=forged)).status_code == 429


async def test_the_default_limits_serve_an_idp_burst(client: httpx.AsyncClient, workspace: Workspace) -> None:
    for _ in range(50):
        assert (await client.get("/scim/v2/Users", headers=workspace.auth)).status_code == 200
