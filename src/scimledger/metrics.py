"""Prometheus metrics of this process (README, "Operating it"), and the hooks that feed them.

The metrics live in ``prometheus_client``'s default registry. With ``PROMETHEUS_MULTIPROC_DIR`` set
(``scimledger serve --workers N`` sets it to a fresh temporary directory unless it is set) each worker
writes its values to files there, and a scrape, answered by any one worker, adds up every worker's files
(prometheus-client's multiprocess mode). The variable must be set before this module is imported: the
value class is chosen then.

Hooks, each one call from the code it measures: ``batch_committed`` right after a write transaction of
the event store commits (group commit: one transaction, several commands); ``request_answered`` from the
access log middleware; ``CountingSender`` around the notification sender; ``worker_started`` and
``worker_stopped`` from the app's lifespan.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from scimledger.notifications import Deferred, Notification, Sender, sender_from_env

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # the route label of a request no route matched (never its path: unbounded)

REQUESTS = Counter(
    "scimledger_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "scimledger_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
)
EVENTS = Counter("scimledger_events_appended", "Events appended to the log and committed, by type.", ["type"])
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BATCH_COMMANDS = Histogram(
    "scimledger_commit_batch_commands",
    "Commands saved per committed write transaction (group commit batches several).",
    buckets=BATCH_BUCKETS,
)
BATCH_EVENTS = Histogram(
    "scimledger_commit_batch_events",
    "Events appended per committed write transaction.",
    buckets=BATCH_BUCKETS,
)
NOTIFICATIONS_SENT = Counter(
    "scimledger_notifications_sent", "Outbox notifications handed to the sender, by kind.", ["kind"]
)
NOTIFICATIONS_FAILED = Counter(
    "scimledger_notifications_failed",
    "Outbox notifications whose sending failed (retried at the runner's next wake), by kind.",
    ["kind"],
)
OUTBOX_UNSENT = Gauge(
    "scimledger_outbox_unsent",
    "Outbox notifications not yet delivered, counted up to the readiness limit plus one (read at scrape).",
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "scimledger_outbox_oldest_unsent_age_seconds",
    "Age of the oldest undelivered outbox notification, 0 when none (read at scrape).",
    multiprocess_mode="mostrecent",
)
DATABASE_UP = Gauge(
    "scimledger_database_up",
    "1 when the scrape's database query succeeded, else 0.",
    multiprocess_mode="mostrecent",
)
POOL_CONNECTIONS = Gauge(
    "scimledger_db_pool_connections",
    "Connections of the database pools of all live workers: open, in use, and the maximum.",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_OPEN, POOL_IN_USE, POOL_MAX = (POOL_CONNECTIONS.labels(state) for state in ("open", "in_use", "max"))
WORKERS = Gauge("scimledger_workers", "Server worker processes running.", multiprocess_mode="livesum")


def prepare_multiprocess(workers: int) -> None:
    """For ``serve --workers N`` (N > 1): a fresh, private ``PROMETHEUS_MULTIPROC_DIR``, removed when the
    server exits, unless the operator set one (then it must be empty at start: prometheus-client's rule)."""
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        return
    path = tempfile.mkdtemp(prefix="scimledger-metrics-")
    atexit.register(shutil.rmtree, path, True)
    os.environ[MULTIPROC_ENV] = path


def registry() -> CollectorRegistry:
    """What a scrape reads: every worker's files in multiprocess mode, else this process's registry."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def batch_committed(commands: int, envelopes: Sequence[Any]) -> None:
    """A write transaction of ``commands`` commands committed ``envelopes`` (store/event_store.py and
    store/workspace_cache.py call this right after the commit, so rolled-back work is never counted)."""
    if not envelopes:
        return
    BATCH_COMMANDS.observe(commands)
    BATCH_EVENTS.observe(len(envelopes))
    for envelope in envelopes:
        EVENTS.labels(envelope.event_type).inc()


POOL_SAMPLE_SECONDS = 1.0  # the pool's sizes are sampled at most this often (not per request: it costs)
_pool_sampled = 0.0


def request_answered(scope: MutableMapping[str, Any], method: str, status: int, seconds: float) -> None:
    """One answered request (from the access log middleware, ``api/request_context.py``), labelled with
    the template of the route that matched (``api/metrics.RouteTemplate``), and (at most once a second)
    the pool's sizes."""
    state = scope.get("state") or {}
    route = state.get("route_template") or UNMATCHED
    REQUESTS.labels(route, method, str(status)).inc()
    REQUEST_SECONDS.labels(route, method).observe(seconds)
    global _pool_sampled
    pool = getattr(getattr(scope.get("app"), "state", None), "pool", None)
    if pool is not None and (now := time.monotonic()) - _pool_sampled >= POOL_SAMPLE_SECONDS:
        _pool_sampled = now
        observe_pool(pool)


def observe_pool(pool: Any) -> None:
    """The sizes of an asyncpg pool (sampled after each request, so every worker's stay current)."""
    size = pool.get_size()
    POOL_OPEN.set(size)
    POOL_IN_USE.set(size - pool.get_idle_size())
    POOL_MAX.set(pool.get_max_size())


def observe_outbox(unsent: int, oldest_seconds: float) -> None:
    OUTBOX_UNSENT.set(unsent)
    OUTBOX_OLDEST_SECONDS.set(oldest_seconds)


def observe_database(up: bool) -> None:
    DATABASE_UP.set(1 if up else 0)


def worker_started(pool: Any) -> None:
    WORKERS.inc()
    observe_pool(pool)


def worker_stopped() -> None:
    """Drop this worker's live gauges (its pool, its count) from what the other workers' scrapes show."""
    WORKERS.dec()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class CountingSender:
    """A notification sender that counts what it sent and what failed (README, "Notifications")."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner

    async def send(self, notification: Notification) -> None:
        try:
            await self.inner.send(notification)
        except Deferred:
            raise  # the sender is backing off: no attempt was made
        except Exception:  # a cancelled task is no failed delivery
            NOTIFICATIONS_FAILED.labels(notification.kind).inc()
            raise
        NOTIFICATIONS_SENT.labels(notification.kind).inc()


def counting_sender(home: Path | None = None) -> CountingSender:
    """The configured sender (``notifications.sender_from_env``), counted."""
    return CountingSender(sender_from_env(home))
