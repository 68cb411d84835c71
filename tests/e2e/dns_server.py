"""A tiny authoritative DNS server on 127.0.0.1 for the tests (issue 8, defect 1), on the standard library.

It answers UDP queries (RFC 1035 §4.1) from ``txt``: a name -> its TXT texts. A name it holds gets its TXT
records (or none for another type); any other name is NXDOMAIN. Written apart from dnspython on purpose, so
the resolver under test decodes bytes it did not encode. The ``dns_server`` fixture starts one on a free port
and points ``SCIMLEDGER_DNS_SERVERS`` at it.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

TXT, IN = 16, 1


class DnsServer:
    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, *values: str) -> None:
        self.txt.setdefault(name.lower().rstrip("."), []).extend(values)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            answer = self.answer(query)
            if answer is not None:
                self.sock.sendto(answer, client)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        ident, flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1:
            return None
        labels, offset = [], 12
        while query[offset]:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii").lower())
            offset += 1 + length
        qtype, _ = struct.unpack("!HH", query[offset + 1 : offset + 5])
        question = query[12 : offset + 5]
        name = ".".join(labels)
        self.queries.append(name)
        texts = self.txt.get(name)
        rcode = 3 if texts is None else 0  # NXDOMAIN for a name we do not hold
        records = b""
        count = 0
        if texts is not None and qtype == TXT:
            for text in texts:
                data = text.encode()
                strings = b"".join(
                    bytes([len(chunk)]) + chunk
                    for chunk in (data[i : i + 255] for i in range(0, len(data), 255))
                )
                records += struct.pack("!HHHIH", 0xC00C, TXT, IN, 0, len(strings)) + strings
                count += 1
        header_flags = 0x8000 | 0x0400 | (flags & 0x0100) | rcode  # response, authoritative, RD echoed
        header = struct.pack("!HHHHHH", ident, header_flags, 1, count, 0, 0)
        return header + question + records


@pytest.fixture
def dns_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[DnsServer]:
    """A DNS server on 127.0.0.1 that the app (and CLI processes given this environment) asks."""
    server = DnsServer()
    server.start()
    monkeypatch.setenv("SCIMLEDGER_DNS_SERVERS", server.address)
    try:
        yield server
    finally:
        server.stop()
