"""Drift (inline projection): changes an admin made to members and teams the IdP manages.

Seed 000: "Your IDP is the source of truth ... If a change is made directly in the app, such as updating a
role or team membership, your IDP will reconcile it back to its own state on the next sync." An admin-API
event on an IdP-managed member or team is listed here (the admin is the actor) until an event from the IdP
(metadata source ``scim``) touches the same resource.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from projections.base import Envelope

name = "drift"
tables = ("drift",)
MEMBER_EVENTS = frozenset(
    {
        "MemberAttributesChanged",
        "MemberRoleChanged",
        "MemberSuspended",
        "MemberReactivated",
        "MemberDeprovisioned",
        "MemberManagementChanged",
    }
)
TEAM_EVENTS = frozenset(
    {"TeamRenamed", "TeamExternalIdChanged", "TeamArchived", "TeamLinked", "TeamUnlinked"}
)
MEMBERSHIP_EVENTS = frozenset({"TeamMemberAdded", "TeamMemberRemoved"})
event_types = MEMBER_EVENTS | TEAM_EVENTS | MEMBERSHIP_EVENTS | frozenset({"PersonalDataErased"})


def _resource(env: Envelope) -> tuple[str, Any]:
    if env.event_type in MEMBERSHIP_EVENTS:
        return "team", env.event.team_id
    return ("member" if env.event_type in MEMBER_EVENTS else "team"), env.event.originator_id


def _change(env: Envelope) -> dict[str, Any]:
    e = env.event
    fields = ("role", "reason", "display_name", "external_id", "member_id", "managed_by")
    return {f: getattr(e, f) for f in fields if hasattr(e, f) and not isinstance(getattr(e, f), dict)}


async def apply(conn: asyncpg.Connection, env: Envelope) -> None:
    if env.event_type == "PersonalDataErased":  # issue 11: an erased member leaves nothing in the read model
        await conn.execute("DELETE FROM drift WHERE resource_id = $1", env.event.originator_id)
        return
    kind, resource_id = _resource(env)
    source = env.metadata.get("source")
    if source == "scim":
        await conn.execute("DELETE FROM drift WHERE resource_id = $1", resource_id)
        return
    if source != "admin":
        return
    table = "scim_users" if kind == "member" else "scim_groups"
    managed_by = await conn.fetchval(f"SELECT managed_by FROM {table} WHERE id = $1", resource_id)
    if managed_by != "idp" or env.event_type in ("TeamUnlinked", "MemberManagementChanged"):
        return
    await conn.execute(
        """INSERT INTO drift (stream_id, stream_version, resource_id, workspace_id, resource_type, event_type,
                             actor, change, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
        env.event.originator_id,
        env.event.originator_version,
        resource_id,
        env.workspace_id,
        kind,
        env.event_type,
        env.metadata.get("actor", {}),
        _change(env),
        env.event.timestamp,
    )
