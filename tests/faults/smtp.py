"""A small SMTP receiver for tests (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), on the
standard library: asyncio on 127.0.0.1 and a free port, in a thread of its own, so sync and async tests and
other processes (``SCIMLEDGER_SMTP_URL``) can use it.

It records every message it accepts. ``decide`` chooses what happens at the end of each DATA:
``"accept"`` (record, 250), ``"fail"`` (451, not recorded), ``"refuse"`` (554, refused for good, not
recorded) or ``"hang"`` (record, then never answer until ``release()`` or the receiver stops: the mail server
took the message but its answer never came back).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

Decision = Literal["accept", "fail", "refuse", "hang"]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_to: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str | None:
        value = self.message["Message-ID"]
        return None if value is None else str(value)

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a notification without its Message-ID: recipient and subject."""
        return str(self.message["To"]), str(self.message["Subject"])


def _address(line: bytes) -> str:
    """``MAIL FROM:<a@b> SIZE=1`` -> ``a@b``."""
    text = line.decode("utf-8", "replace")
    return text[text.find("<") + 1 : text.find(">")] if "<" in text else text.split(":", 1)[-1].strip()


class SmtpReceiver:
    """Use as a context manager; ``url`` is ``smtp://127.0.0.1:<port>``."""

    def __init__(self, decide: Callable[[Received], Decision] | None = None, delay: float = 0.0) -> None:
        self.decide = decide or (lambda _: "accept")
        self.delay = delay  # seconds before answering each DATA
        self._messages: list[Received] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._release = asyncio.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smtp-receiver", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def release(self) -> None:
        """Let hung sessions go (they are closed without an answer)."""
        self._loop.call_soon_threadsafe(self._release.set)

    def __enter__(self) -> SmtpReceiver:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the SMTP receiver did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._sessions: set[asyncio.Task[None]] = set()
        server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        async with server:
            await self._stop.wait()
            self._release.set()
            server.close()
            for task in self._sessions:
                task.cancel()
            await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mail_from, rcpt_to = "", list[str]()
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            writer.write(b"220 test-receiver ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250 test-receiver\r\n")
                elif verb == b"MAIL":
                    mail_from, rcpt_to = _address(line), []
                    writer.write(b"250 ok\r\n")
                elif verb == b"RCPT":
                    rcpt_to.append(_address(line))
                    writer.write(b"250 ok\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    received = Received(mail_from, tuple(rcpt_to), await self._data(reader))
                    if not await self._answer(received, writer):
                        return
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                elif verb in (b"RSET", b"NOOP"):
                    writer.write(b"250 ok\r\n")
                else:
                    writer.write(b"502 not implemented\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            self._sessions.discard(task)

    @staticmethod
    async def _data(reader: asyncio.StreamReader) -> EmailMessage:
        lines = []
        while (line := await reader.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)  # RFC 5321 §4.5.2 dot-stuffing
        parsed = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    async def _answer(self, received: Received, writer: asyncio.StreamWriter) -> bool:
        """Answer the end of DATA; False when the session is to end without an answer."""
        if self.delay:
            await asyncio.sleep(self.delay)
        decision = self.decide(received)
        if decision == "fail":
            writer.write(b"451 try again later\r\n")
            return True
        if decision == "refuse":
            writer.write(b"554 message refused\r\n")
            return True
        with self._lock:
            self._messages.append(received)
        if decision == "hang":
            await self._release.wait()
            return False
        writer.write(b"250 queued\r\n")
        return True
