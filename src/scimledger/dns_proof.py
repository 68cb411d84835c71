"""Looking up a domain's challenge TXT record (issue 8, defect 1; README "Verifying a domain").

The look-up is I/O, so it happens here, before the command, and the Workspace aggregate only compares what
was found with its token. dnspython's asyncio resolver keeps the event loop free; it asks the system's
resolver (``/etc/resolv.conf``) or, when ``SCIMLEDGER_DNS_SERVERS`` is set, those servers
(comma-separated ``host[:port]``, host an IP address, ``[v6]:port`` for IPv6), and gives up after
``TIMEOUT_SECONDS``. A TXT record's text is its character-strings joined (RFC 1035 §3.3.14, RFC 7208 §3.3).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

log = logging.getLogger("scimledger.dns")

SERVERS_VARIABLE = "SCIMLEDGER_DNS_SERVERS"
TIMEOUT_SECONDS = 3.0  # the whole look-up, every server and retry included
PER_SERVER_SECONDS = 1.0


@dataclass(frozen=True)
class TxtLookup:
    """What a look-up of ``record`` found: the TXT texts, or (none found) why not."""

    record: str
    values: tuple[str, ...] = ()
    problem: str | None = None


class BadServerList(ValueError):
    """``SCIMLEDGER_DNS_SERVERS`` is not a comma-separated list of ``host[:port]``."""


def parse_servers(text: str) -> list[tuple[str, int]]:
    """``"127.0.0.1:5353, [::1]:53, 10.0.0.2"`` -> ``[("127.0.0.1", 5353), ("::1", 53), ("10.0.0.2", 53)]``"""
    servers = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, port = item, "53"
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            address = str(ipaddress.ip_address(host))
            number = int(port)
        except ValueError:
            raise BadServerList(f"{item!r} is not host[:port] with an IP address") from None
        if not 0 < number < 65536:
            raise BadServerList(f"{item!r}: the port must be 1-65535")
        servers.append((address, number))
    if not servers:
        raise BadServerList("no server given")
    return servers


def resolver() -> dns.asyncresolver.Resolver:
    """A resolver for one look-up: the configured servers, else the system's; no cache (a record just
    published must be seen on the next try)."""
    configured = os.environ.get(SERVERS_VARIABLE, "").strip()
    if configured:
        found = dns.asyncresolver.Resolver(configure=False)
        found.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in parse_servers(configured)]
    else:
        found = dns.asyncresolver.Resolver()
    found.timeout, found.lifetime, found.cache = PER_SERVER_SECONDS, TIMEOUT_SECONDS, None
    return found


async def lookup_txt(record: str) -> TxtLookup:
    """The TXT texts at ``record``; never raises for what DNS answers (or does not)."""
    try:
        answer = await resolver().resolve(record, "TXT", search=False)
    except dns.resolver.NXDOMAIN:
        return TxtLookup(record, problem="that name does not exist")
    except dns.resolver.NoAnswer:
        return TxtLookup(record, problem="it has no TXT record")
    except dns.exception.Timeout:
        return TxtLookup(record, problem=f"no DNS server answered within {TIMEOUT_SECONDS:g} s")
    except dns.resolver.NoNameservers:
        return TxtLookup(record, problem="every DNS server refused or failed the query")
    except dns.resolver.NoResolverConfiguration:
        return TxtLookup(
            record, problem=f"the server has no DNS resolver configured (set {SERVERS_VARIABLE})"
        )
    except BadServerList as error:
        log.warning("%s is invalid: %s", SERVERS_VARIABLE, error)
        return TxtLookup(record, problem=f"the server's {SERVERS_VARIABLE} is invalid")
    except (dns.exception.DNSException, OSError) as error:
        return TxtLookup(record, problem=f"the look-up failed ({type(error).__name__})")
    texts = tuple(
        b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer if hasattr(rdata, "strings")
    )
    return TxtLookup(record, texts)
