"""``scimledger person erase`` (issue 11; README "Erasure (crypto-shredding)"): the operator erases a member's
personal data, as ``POST /api/v1/members/{id}/erase`` does, recorded with the operator as the actor.
Prints the ``PersonalDataErased`` event; exit 1 when the member may not be erased, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from uuid import UUID

from scimledger.audit.entries import timestamp
from scimledger.cli_common import _cli_metadata, _print, _usage, _with_store
from scimledger.config import Settings
from scimledger.domain.errors import DomainError
from scimledger.handlers.erase import Erased, ErasePerson, erase_person
from scimledger.store.event_store import EventStore
from scimledger.store.keys import MASTER_ENV, MASTER_FILE


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def cmd_person_erase(args: argparse.Namespace, settings: Settings) -> int:
    workspace_id, member_id = _uuid(args.workspace), _uuid(args.member)
    if workspace_id is None:
        return _usage(f"{args.workspace!r} is not a workspace id")
    if member_id is None:
        return _usage(f"{args.member!r} is not a member id")
    command = ErasePerson(workspace_id, member_id, args.reason)

    async def work(store: EventStore) -> Erased:
        return await erase_person(store, command, _cli_metadata())

    try:
        erased = _with_store(settings, work)
    except DomainError as refused:
        sys.stderr.write(f"not erased ({refused.code}): {refused.message}\n")
        return 1
    shown: dict[str, Any] = {
        "workspace_id": str(workspace_id),
        "member_id": str(erased.member_id),
        "erased": True,
        "erased_at": timestamp(erased.erased_at),
        "position": erased.position,
        "reason": erased.reason,
    }
    _print(shown)
    return 0


MASTER_KEY_HELP = (
    f"  {MASTER_ENV:<30} the master key wrapping personal data keys, base64 of 32 bytes (default: "
    f"SCIMLEDGER_HOME/{MASTER_FILE}, made on first use)"
)


def register(sub: Any, **common: Any) -> None:
    """Add ``person erase`` to the CLI's subcommands (``common``: parser options, the environment listed)."""
    if "epilog" in common:
        common = {**common, "epilog": f"{common['epilog']}\n{MASTER_KEY_HELP}"}
    person = sub.add_parser("person", help="erase a person's personal data", **common)
    actions = person.add_subparsers(dest="action", required=True)
    erase = actions.add_parser(
        "erase", help="erase a member's personal data (crypto-shredding, README); prints the event", **common
    )
    erase.add_argument("--workspace", required=True, help="the workspace's id (required)")
    erase.add_argument("--member", required=True, help="the member's id, its SCIM id (required)")
    erase.add_argument(
        "--reason", default=None, help="why, kept in clear in the log: no personal data (default: none)"
    )
    erase.set_defaults(run=cmd_person_erase)
