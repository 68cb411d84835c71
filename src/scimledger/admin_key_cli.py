"""``scimledger admin-key create|revoke|list --workspace ID`` (README "CLI"): more admin keys for a
workspace, on the domain commands of ``handlers.admin_keys``. The secret is printed once; the last active
key cannot be revoked."""

from __future__ import annotations

import argparse
from typing import Any
from uuid import UUID

from scimledger.cli_common import _cli_metadata, _print, _usage, _with_store
from scimledger.config import Settings
from scimledger.domain import Workspace
from scimledger.domain.errors import UnknownResource
from scimledger.handlers import admin_keys
from scimledger.store.event_store import EventStore


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    workspace_id = _uuid(args.workspace)
    if workspace_id is None:
        return _usage(f"{args.workspace!r} is not a workspace id")

    async def work(store: EventStore) -> admin_keys.AdminKeyIssued:
        return await admin_keys.issue_admin_key(
            store, admin_keys.IssueAdminKey(workspace_id), _cli_metadata()
        )

    issued = _with_store(settings, work)
    _print(
        {"workspace_id": str(workspace_id), "admin_key_id": str(issued.key_id), "admin_key": issued.admin_key}
    )
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    workspace_id, key_id = _uuid(args.workspace), _uuid(args.key)
    if workspace_id is None:
        return _usage(f"{args.workspace!r} is not a workspace id")
    if key_id is None:
        return _usage(f"{args.key!r} is not an admin key id")
    command = admin_keys.RevokeAdminKey(workspace_id, key_id)

    async def work(store: EventStore) -> None:
        await admin_keys.revoke_admin_key(store, command, _cli_metadata())

    _with_store(settings, work)
    _print({"workspace_id": str(workspace_id), "admin_key_id": str(key_id), "revoked": True})
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    workspace_id = _uuid(args.workspace)
    if workspace_id is None:
        return _usage(f"{args.workspace!r} is not a workspace id")

    async def work(store: EventStore) -> list[dict[str, Any]]:
        if await store.load(Workspace, workspace_id) is None:
            raise UnknownResource(f"workspace {workspace_id} does not exist")
        return [k.as_dict() for k in await admin_keys.list_admin_keys(store.pool, workspace_id)]

    _print({"workspace_id": str(workspace_id), "admin_keys": _with_store(settings, work)})
    return 0


def register(sub: Any, **common: Any) -> None:
    """Add ``admin-key create|revoke|list`` to the CLI's subcommands (``common``: the parser options)."""
    keys = sub.add_parser("admin-key", help="issue, revoke and list a workspace's admin keys", **common)
    actions = keys.add_subparsers(dest="action", required=True, metavar="{create,revoke,list}")
    workspace_help = "the workspace's id (required)"
    create = actions.add_parser(
        "create", help="issue another admin key; prints admin_key_id and admin_key (shown once)", **common
    )
    create.add_argument("--workspace", required=True, help=workspace_help)
    create.set_defaults(run=cmd_create)
    revoke = actions.add_parser(
        "revoke", help="revoke an admin key (refused for the last active one)", **common
    )
    revoke.add_argument("--workspace", required=True, help=workspace_help)
    revoke.add_argument("--key", required=True, metavar="ID", help="the admin key's id (required)")
    revoke.set_defaults(run=cmd_revoke)
    listing = actions.add_parser("list", help="list the admin keys: id, created_at, revoked_at", **common)
    listing.add_argument("--workspace", required=True, help=workspace_help)
    listing.set_defaults(run=cmd_list)
