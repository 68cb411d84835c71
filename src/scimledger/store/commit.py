"""Write transactions that tell a lost commit from a refused one (found by the fault suite, issue 8).

When the connection to PostgreSQL is lost while ``COMMIT`` is in flight (an immediate stop, a crash, a
network cut), the commit may have been made durable before the answer was lost: the change may be in the
log. That is not "nothing was written", so it is raised as ``CommitInDoubt``, answered 503 with a detail
that says so (api/errors.py), and never decided again as a version conflict would be (a second append).
A connection lost before ``COMMIT`` was sent is an ordinary failure: nothing was written.

A request whose change was committed, and which then fails to read its answer back (the database went away
just after the commit), is not a failure either: ``committed()`` tells the error handler so, and the answer
says that the change was applied. It is kept per request in a context variable (each request runs in a
task of its own).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar

import asyncpg

LOST = (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError, ConnectionError, OSError)


_committed: ContextVar[bool] = ContextVar("scimledger_committed", default=False)


def note_committed() -> None:
    """This request's change is in the log (called after a successful commit)."""
    _committed.set(True)


def committed() -> bool:
    """Whether this request has committed a change."""
    return _committed.get()


class CommitInDoubt(Exception):
    """The connection was lost while ``COMMIT`` was in flight: the change may or may not be in the log."""


@contextlib.asynccontextmanager
async def write_transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection in a transaction, committed when the block ends without an exception."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):  # a lost connection is already rolled back
                await transaction.rollback()
            raise
        try:  # lost before COMMIT was sent: asyncpg raises InterfaceError and PostgreSQL rolls back
            await transaction.commit()
        except LOST as error:
            raise CommitInDoubt("the database connection was lost during the commit") from error
        note_committed()
