"""Read models built from the log, one module per read model (docs/architecture.md, "Read side").

INLINE projections are applied in the same transaction as the append (read-your-writes); LAGGING ones are
applied by the catch-up runner (``projections.runner``) and track their position in ``projection_tracking``.
"""

from __future__ import annotations

from projections import drift, outbox, scim_groups, scim_users, tokens, workspaces
from projections.base import Envelope, Projection

INLINE: tuple[Projection, ...] = (workspaces, tokens, scim_users, scim_groups, drift)
LAGGING: tuple[Projection, ...] = (outbox,)
ALL: tuple[Projection, ...] = INLINE + LAGGING

__all__ = ["ALL", "INLINE", "LAGGING", "Envelope", "Projection"]
