"""Rate limits (issue 8, defect 5; README "Limits"): token buckets per SCIM token and per admin key, and
for failed authentication per client address; over the limit the answer is 429 with ``Retry-After``.

Where the buckets live: in each worker process, with the configured rate divided by the number of workers
(``SCIMLEDGER_WORKERS``, set by ``scimledger serve --workers``). Connections are spread over the workers by
the kernel, so the sum over workers is the configured rate, within a burst; keeping the buckets in
PostgreSQL would cost a write per request on the hot path for a limit that need not be exact.

A client address whose failed authentications are over its limit is refused (429) before its credential
is even checked, so a correct guess is not revealed by a different answer while it is throttled.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from starlette.requests import Request

from scimledger.scim.errors import TooManyRequests

MAX_KEYS = 100_000  # buckets kept per process (least recently used dropped first)


@dataclass(frozen=True)
class Rate:
    """``per_second`` sustained, up to ``burst`` at once. ``per_second <= 0`` turns the limit off."""

    per_second: float
    burst: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"100/s,1000"``: 100 per second, bursts of 1,000; ``"0"`` turns the limit off."""
        rate, _, burst = text.partition(",")
        per_second = float(rate.removesuffix("/s"))
        return cls(per_second, float(burst) if burst else max(per_second, 1.0))

    def divided(self, workers: int) -> Rate:
        n = max(workers, 1)
        return Rate(self.per_second / n, max(self.burst / n, 1.0))


class Buckets:
    """Token buckets by key."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._state: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def take(self, key: Hashable, now: float | None = None) -> float:
        """Spend one request; returns 0 when allowed, else the seconds until one is available."""
        if self.rate.per_second <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, at = self._state.pop(key, (self.rate.burst, now))
        tokens = min(self.rate.burst, tokens + (now - at) * self.rate.per_second)
        if tokens >= 1:
            self._state[key] = (tokens - 1, now)
            wait = 0.0
        else:
            self._state[key] = (tokens, now)
            wait = (1 - tokens) / self.rate.per_second
        while len(self._state) > MAX_KEYS:
            self._state.popitem(last=False)
        return wait

    def blocked(self, key: Hashable, now: float | None = None) -> float:
        """Seconds until ``key`` may spend again (0: not blocked), without spending."""
        if self.rate.per_second <= 0 or key not in self._state:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, at = self._state[key]
        tokens = min(self.rate.burst, tokens + (now - at) * self.rate.per_second)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate.per_second


@dataclass(frozen=True)
class Limits:
    """The configured rates: ``SCIMLEDGER_RATE_LIMIT`` (per token or admin key, default ``100/s,1000``) and
    ``SCIMLEDGER_AUTH_FAILURE_LIMIT`` (failed authentications per client address, default ``1/s,20``)."""

    per_credential: Rate
    auth_failures: Rate

    @classmethod
    def from_env(cls) -> Limits:
        workers = int(os.environ.get("SCIMLEDGER_WORKERS", "1") or 1)
        return cls(
            Rate.parse(os.environ.get("SCIMLEDGER_RATE_LIMIT", "100/s,1000")).divided(workers),
            Rate.parse(os.environ.get("SCIMLEDGER_AUTH_FAILURE_LIMIT", "1/s,20")).divided(workers),
        )


class RateLimiter:
    def __init__(self, limits: Limits) -> None:
        self.credentials = Buckets(limits.per_credential)
        self.failures = Buckets(limits.auth_failures)


def _limiter(request: Request) -> RateLimiter | None:
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    return limiter


def _refuse(wait: float, what: str) -> TooManyRequests:
    return TooManyRequests(f"too many requests {what}; retry later", retry_after=max(1, math.ceil(wait)))


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_address(request: Request) -> None:
    """Before checking a credential: 429 while this address is over its failed-authentication limit."""
    limiter = _limiter(request)
    if limiter is not None and (wait := limiter.failures.blocked(_address(request))):
        raise _refuse(wait, "after failed authentications from this address")


def failed_authentication(request: Request) -> None:
    """Count a failed authentication against the client's address."""
    limiter = _limiter(request)
    if limiter is not None:
        limiter.failures.take(_address(request))


def spend(request: Request, credential: Hashable) -> None:
    """One request of an authenticated token or admin key: 429 when it is over its rate."""
    limiter = _limiter(request)
    if limiter is not None and (wait := limiter.credentials.take(credential)):
        raise _refuse(wait, "for this credential")
