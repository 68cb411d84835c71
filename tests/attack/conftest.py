"""Fixtures shared by the attack suite (issue 8, "Attack suite"): an app whose rate limits are off (the
limits have their own tests; these suites send many requests, some with broken credentials, from one
address), and headers for the two APIs."""

from __future__ import annotations

from typing import Any

import pytest

from scimledger.api.rate_limit import Limits, Rate, RateLimiter
from tests.conftest import Workspace

OFF = Limits(per_credential=Rate(0, 0), auth_failures=Rate(0, 0))


@pytest.fixture
def unlimited(app: Any) -> Any:
    """The ``app`` fixture with both rate limits off."""
    app.state.rate_limiter = RateLimiter(OFF)
    return app


def admin(ws: Workspace) -> dict[str, str]:
    """The admin API's credential of ``ws``."""
    return {"Authorization": f"Bearer {ws.admin_key}"}
