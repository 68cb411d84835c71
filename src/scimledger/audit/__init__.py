"""The audit trail: reading the log as auditors and admins see it (entries, queries, point-in-time answers,
verification, checkpoints, export and replay). Everything shown is decoded from the bytes the hash chain
covers (``events.state`` and ``events.metadata``), never from the jsonb copy."""
