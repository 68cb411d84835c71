"""Persistence: the event mapper, the asyncpg recorder of the append-only log, and the event store."""
