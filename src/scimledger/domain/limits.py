"""Bounds on the strings the log keeps for ever (issue 8, defect 3; README "Limits"). A token's name is
copied into the metadata of every event the token causes, so an unbounded name would grow the log on every
write. Longer values are refused (400) before anything is appended."""

from __future__ import annotations

from scimledger.domain.errors import InvalidCommand

MAX_NAME = 256  # workspace, token and team names; userName
MAX_DESCRIPTION = 1024  # token descriptions


def bounded(what: str, value: str | None, limit: int = MAX_NAME) -> None:
    """Refuse ``value`` when it is longer than ``limit`` characters."""
    if value is not None and len(value) > limit:
        raise InvalidCommand(f"{what} is limited to {limit} characters")
