"""``scimledger domain add|verify`` (issue 8, defect 1; README "Verifying a domain").

``verify`` proves control with the workspace's DNS TXT challenge, like the admin API; ``--no-dns`` marks the
domain verified on the operator's word (on-premises, no public DNS), recorded in the log with
``method: "operator"`` and the operator as the actor.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from uuid import UUID

from scimledger import handlers
from scimledger.cli_common import _cli_metadata, _print, _usage, _with_store
from scimledger.config import Settings
from scimledger.domain.errors import DomainNotProven
from scimledger.domain.workspace import normalise_domain
from scimledger.store.event_store import EventStore


def _workspace_id(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def cmd_domain_add(args: argparse.Namespace, settings: Settings) -> int:
    """Add a domain unverified; prints the challenge to publish (null when already verified)."""
    workspace_id = _workspace_id(args.workspace)
    if workspace_id is None:
        return _usage(f"{args.workspace!r} is not a workspace id")
    command = handlers.AddDomain(workspace_id, args.domain)

    async def work(store: EventStore) -> handlers.Challenge | None:
        return await handlers.add_domain(store, command, _cli_metadata())

    challenge = _with_store(settings, work)
    shown: dict[str, Any] | None = None
    if challenge is not None:
        shown = {"record": challenge.record, "type": challenge.type, "value": challenge.value}
    _print({"workspace_id": str(workspace_id), "domain": normalise_domain(args.domain), "challenge": shown})
    return 0


def cmd_domain_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Verify by DNS (exit 1 when not proven), or with ``--no-dns`` on the operator's word."""
    workspace_id = _workspace_id(args.workspace)
    if workspace_id is None:
        return _usage(f"{args.workspace!r} is not a workspace id")
    method = "operator" if args.no_dns else "dns"
    command = handlers.VerifyDomain(workspace_id, args.domain, method=method)

    async def work(store: EventStore) -> None:
        await handlers.verify_domain(store, command, _cli_metadata())

    try:
        _with_store(settings, work)
    except DomainNotProven as refused:
        sys.stderr.write(f"not proven: {refused.message}\n")
        return 1
    domain = normalise_domain(args.domain)
    _print({"workspace_id": str(workspace_id), "domain": domain, "verified": True, "method": method})
    return 0


def register(sub: Any, **common: Any) -> None:
    """Add ``domain add`` and ``domain verify`` to the CLI's subcommands (``common``: parser options)."""
    domain = sub.add_parser("domain", help="add and verify a workspace's domains", **common)
    actions = domain.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="add a domain unverified; prints the DNS challenge to publish", **common
    )
    add.add_argument("--workspace", required=True, help="the workspace's id (required)")
    add.add_argument("--domain", required=True, help="the domain, e.g. acme.test (required)")
    add.set_defaults(run=cmd_domain_add)
    verify = actions.add_parser("verify", help="verify a domain by its DNS challenge (or --no-dns)", **common)
    verify.add_argument("--workspace", required=True, help="the workspace's id (required)")
    verify.add_argument("--domain", required=True, help="the domain, e.g. acme.test (required)")
    verify.add_argument(
        "--no-dns",
        action="store_true",
        help="no DNS check: verified on the operator's word (on-premises), recorded as such (default: off)",
    )
    verify.set_defaults(run=cmd_domain_verify)
