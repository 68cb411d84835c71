"""A thin synchronous facade over our asyncpg recorder, for eventsourcing's own recorder test cases.

eventsourcing's ``AggregateRecorder``, ``ApplicationRecorder``, ``TrackingRecorder`` and ``ProcessRecorder``
interfaces are synchronous; ``scimledger.store.recorder`` is async. Each facade owns one private asyncio
event loop running in a background thread, and one asyncpg pool (``scimledger.pg.create_pool``) on that loop;
every call submits a coroutine to the loop (``asyncio.run_coroutine_threadsafe``) and waits for its result.
Nothing here re-implements the log: writes go through ``recorder.append`` (``scimledger_append``) into one
fixed test workspace, reads through ``recorder.select_events`` / ``select_workspace_log`` /
``max_workspace_position`` (one workspace's log is in position order, its commit order).

Tracking uses the ``projection_tracking`` table (one row per projection, i.e. the library's "single-row
tracking"): an upsert that only moves the position forwards, so recording a position lower than or equal
to the current one raises ``IntegrityError``, as the library requires.

Database errors are mapped onto the library's PEP 249-style exceptions (``VersionConflict`` and other
constraint violations become ``IntegrityError``). Call ``close()`` (or use the facade as a context manager)
to close the pool, stop the loop and join its thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Coroutine, Sequence
from concurrent.futures import CancelledError, Future
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    ListenNotifySubscription,
    Notification,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    ProgrammingError,
    Recorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from scimledger import pg
from scimledger.store import recorder
from scimledger.store.recorder import VersionConflict

T = TypeVar("T")

#: The one workspace every event written through the facade belongs to (the hash chain runs per workspace).
TEST_WORKSPACE_ID = UUID("00000000-0000-4000-8000-0000000c0de5")
#: The metadata stored with every append made through the facade.
TEST_METADATA: dict[str, Any] = {
    "actor": {"kind": "system", "id": "recorder-conformance", "name": "recorder conformance tests"},
    "source": "system",
}
#: The channel ``scimledger_append`` notifies on commit.
CHANNEL = "scimledger_events"

_INSERT_TRACKING = """
    INSERT INTO projection_tracking (projection, position) VALUES ($1, $2)
    ON CONFLICT (projection) DO UPDATE SET position = EXCLUDED.position
     WHERE projection_tracking.position < EXCLUDED.position
    RETURNING position
"""
_MAX_TRACKING = "SELECT position FROM projection_tracking WHERE projection = $1"

# asyncpg's exceptions -> the library's (PEP 249 names); first match wins, so subclasses come first.
_ERRORS: tuple[tuple[type[BaseException], type[PersistenceError]], ...] = (
    (VersionConflict, IntegrityError),
    (asyncpg.IntegrityConstraintViolationError, IntegrityError),
    (asyncpg.DataError, DataError),
    (asyncpg.InternalServerError, InternalError),
    (asyncpg.FeatureNotSupportedError, NotSupportedError),
    (asyncpg.SyntaxOrAccessError, ProgrammingError),
    (asyncpg.PostgresConnectionError, OperationalError),
    (asyncpg.TransactionRollbackError, OperationalError),
    (asyncpg.InsufficientResourcesError, OperationalError),
    (asyncpg.OperatorInterventionError, OperationalError),
    (asyncpg.PostgresError, DatabaseError),
    (asyncpg.InterfaceError, InterfaceError),
    (ConnectionError, OperationalError),
    (TimeoutError, OperationalError),
)


def translate(error: BaseException) -> BaseException:
    """The library's exception for ``error`` (chained to it), or ``error`` itself when there is none."""
    if isinstance(error, PersistenceError):
        return error
    for source, target in _ERRORS:
        if isinstance(error, source):
            translated = target(str(error) or type(error).__name__)
            translated.__cause__ = error
            return translated
    return error


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)


class LoopThread:
    """One private asyncio event loop, run forever in a background thread until ``stop()``."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (its exception is raised as it is)."""
        return self.submit(coro).result()

    def stop(self) -> None:
        """Stop the loop (cancelling what still runs on it), close it and join the thread. Idempotent."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # already closed
                self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()


class RecorderFacade(Recorder):
    """What all the facades share: the loop thread, the pool, error mapping and the write path."""

    def __init__(
        self,
        database_url: str,
        *,
        workspace_id: UUID = TEST_WORKSPACE_ID,
        metadata: dict[str, Any] | None = None,
        max_pool_size: int = 20,
    ) -> None:
        self.database_url = database_url
        self.workspace_id = workspace_id
        self.metadata = dict(TEST_METADATA if metadata is None else metadata)
        self._runner = LoopThread(name=f"{type(self).__name__}-loop")
        self._closed = False
        self._subscriptions: weakref.WeakSet[FacadeSubscription] = weakref.WeakSet()
        try:
            self.pool: asyncpg.Pool = self._runner.run(
                pg.create_pool(database_url, min_size=1, max_size=max_pool_size)
            )
        except BaseException as error:
            self._runner.stop()
            translated = translate(error)
            if translated is error:
                raise
            raise translated from error

    # --- plumbing -------------------------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the facade's loop; raise its error as the library's exception."""
        if self._closed:
            coro.close()
            raise InterfaceError("recorder is closed")
        try:
            return self._runner.run(coro)
        except BaseException as error:
            translated = translate(error)
            if translated is error:
                raise
            raise translated from error

    def close(self) -> None:
        """Stop open subscriptions, close the pool, stop the loop and join its thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.stop()
        try:
            self._runner.run(self._close_pool())
        finally:
            self._runner.stop()

    async def _close_pool(self) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), timeout=10)
        except TimeoutError:
            self.pool.terminate()

    def __enter__(self) -> RecorderFacade:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- shared operations ----------------------------------------------------------------------------------
    async def _insert(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        """One transaction: the append (its first write, schema.sql), then the tracking row (if any)."""
        async with self.pool.acquire() as conn, conn.transaction():
            positions = await recorder.append(conn, self.workspace_id, list(stored_events), self.metadata)
            if tracking is not None:
                await _insert_tracking(conn, tracking)
            return positions

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        return self._call(
            recorder.select_events(self.pool, _uuid(originator_id), gt=gt, lte=lte, desc=desc, limit=limit)
        )


async def _insert_tracking(conn: asyncpg.Connection, tracking: Tracking) -> None:
    """Move the projection's position forwards; a lower or equal position is an IntegrityError."""
    moved = await conn.fetchval(_INSERT_TRACKING, tracking.application_name, tracking.notification_id)
    if moved is None:
        raise IntegrityError(
            f"Failed to record tracking for {tracking.application_name} {tracking.notification_id}: "
            "already at or past that position"
        )


class FacadeAggregateRecorder(RecorderFacade, AggregateRecorder):
    """``AggregateRecorder``: ``insert_events`` appends and returns None, as the interface's contract says."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._call(self._insert(stored_events, None))
        return None


class FacadeApplicationRecorder(RecorderFacade, ApplicationRecorder):
    """``ApplicationRecorder``: the log's positions are the notification ids."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._call(self._insert(stored_events, None))

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        # select_workspace_log reads positions strictly after ``after``.
        after = 0 if start is None else (start - 1 if inclusive_of_start else start)
        logged = self._call(
            recorder.select_workspace_log(
                self.pool, TEST_WORKSPACE_ID, after=after, limit=limit, stop=stop, event_types=list(topics)
            )
        )
        return [recorder.as_notification(event) for event in logged]

    def max_notification_id(self) -> int | None:
        return self._call(recorder.max_workspace_position(self.pool, TEST_WORKSPACE_ID))

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        subscription = FacadeSubscription(self, gt=gt, topics=topics)
        self._subscriptions.add(subscription)
        return subscription


class FacadeTrackingRecorder(RecorderFacade, TrackingRecorder):
    """``TrackingRecorder`` over ``projection_tracking`` (application name = projection name)."""

    def insert_tracking(self, tracking: Tracking) -> None:
        self._call(self._insert_tracking_alone(tracking))

    async def _insert_tracking_alone(self, tracking: Tracking) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _insert_tracking(conn, tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        position: int | None = self._call(self.pool.fetchval(_MAX_TRACKING, application_name))
        return position


class FacadeProcessRecorder(FacadeTrackingRecorder, FacadeApplicationRecorder, ProcessRecorder):
    """``ProcessRecorder``: ``insert_events(..., tracking=...)`` records both in one transaction."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        return self._call(self._insert(stored_events, tracking))


class FacadeSubscription(ListenNotifySubscription[FacadeApplicationRecorder]):
    """LISTEN on ``scimledger_events`` (a dedicated connection on the facade's loop), plus polling every
    ``poll_interval`` seconds in case a notification is missed; the library's pull thread does the reads."""

    def __init__(
        self,
        recorder: FacadeApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        *,
        poll_interval: float = 1.0,
    ) -> None:
        self._runner = recorder._runner
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()  # set (on the loop) by stop()
        # Listen before the first pull, so nothing committed in between goes unnoticed.
        conn = recorder._call(self._connect(recorder.database_url))
        try:
            super().__init__(recorder=recorder, gt=gt, topics=topics)
        except BaseException:
            self._runner.run(conn.close())
            raise
        self._listener = self._runner.submit(self._listen(conn))

    async def _connect(self, database_url: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
        except BaseException:
            await conn.close()
            raise
        return conn

    def _on_notify(self, *args: object) -> None:
        notified = getattr(self, "_has_been_notified", None)  # absent until super().__init__ has run
        if notified is not None:
            notified.set()

    async def _listen(self, conn: asyncpg.Connection) -> None:
        try:
            while not self._has_been_stopped:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_interval)
                except TimeoutError:
                    self._has_been_notified.set()  # the polling fallback
                if conn.is_closed():
                    raise OperationalError("the LISTEN connection was closed")
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            if self._thread_error is None:
                self._thread_error = translate(error)
            self.stop()
        finally:
            if not conn.is_closed():
                await conn.close()

    def stop(self) -> None:
        super().stop()
        wakeup = getattr(self, "_wakeup", None)
        if wakeup is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._runner.loop.call_soon_threadsafe(wakeup.set)

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            with contextlib.suppress(CancelledError):  # cancelled by the facade's close()
                self._listener.result()
