"""What every handler shares: bounded retry on version conflicts, and uniqueness-claim bookkeeping."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from scimledger.domain import UniquenessClaim
from scimledger.domain.errors import AlreadyTaken, VersionMismatch
from scimledger.store.recorder import VersionConflict

T = TypeVar("T")
MAX_ATTEMPTS = 12


async def with_retry(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` (load, decide, save) again after a version conflict, with jittered backoff."""
    for n in range(MAX_ATTEMPTS):
        try:
            return await attempt()
        except VersionConflict:
            if n == MAX_ATTEMPTS - 1:
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * (n + 1)))
    raise AssertionError("unreachable")


def claim_conflict(error: VersionConflict, claims: dict[UUID, tuple[str, str]]) -> None:
    """Turn a lost race for a uniqueness claim into AlreadyTaken (409 ``uniqueness``)."""
    if error.stream_id in claims:
        kind, value = claims[error.stream_id]
        raise AlreadyTaken(kind, value) from error


def check_version(version: int, expected: int | None) -> None:
    if expected is not None and expected != version:
        raise VersionMismatch(f"the resource is at version {version}, not {expected}")


def claim_changes(
    ws: UUID, loaded: dict[UUID, Any], owner: str, kind: str, old: str | None, new: str | None
) -> list[UniquenessClaim]:
    """Release the claim of ``old`` and take the claim of ``new`` when they differ (normalised)."""
    old_id = UniquenessClaim.id_for(ws, kind, old) if old else None
    new_id = UniquenessClaim.id_for(ws, kind, new) if new else None
    if old_id == new_id:
        return []
    out = []
    if old_id is not None and (old_claim := loaded.get(old_id)) is not None and old_claim.owner_id == owner:
        old_claim.release()
        out.append(old_claim)
    if new_id is not None and new is not None:
        out.append(UniquenessClaim.take(loaded.get(new_id), ws, kind, new, owner))
    return out


def claim_ids(ws: UUID, pairs: list[tuple[str, str | None]]) -> dict[UUID, tuple[str, str]]:
    return {UniquenessClaim.id_for(ws, kind, value): (kind, value) for kind, value in pairs if value}
