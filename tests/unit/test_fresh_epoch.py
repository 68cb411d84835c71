"""FreshEpoch (src/scimledger/api/token_cache.py): a caller only ever gets a read sent after it asked."""

from __future__ import annotations

import asyncio

from scimledger.api.token_cache import FreshEpoch


async def test_a_caller_arriving_during_a_read_waits_for_the_next_read_and_waiters_share_it() -> None:
    sent: list[asyncio.Future[int]] = []

    async def read() -> int:
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        sent.append(answer)
        return await answer

    epoch = FreshEpoch(read)
    first = asyncio.ensure_future(epoch.get())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(sent) == 1  # the first read is in flight
    late = [asyncio.ensure_future(epoch.get()) for _ in range(5)]
    await asyncio.sleep(0)
    sent[0].set_result(1)  # a revocation commits after this read's snapshot...
    assert await first == 1
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(sent) == 2 and not any(t.done() for t in late)  # ...so the late callers need the next read
    sent[1].set_result(2)
    assert [await t for t in late] == [2] * 5
