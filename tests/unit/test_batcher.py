"""Dynamic batcher: release rules, overflow, dropped callers, errors, one-for-one results."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from server.errors import DeadlineExceeded, InvalidInput, Overloaded, Unavailable
from server.inference.batcher import Batcher


class Recorder:
    """A batch function that records batches and can be held open with a gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, items: list[int]) -> Sequence[int | BaseException]:
        self.started.set()
        self.gate.wait(5)
        self.batches.append(list(items))
        return [i * 10 for i in items]


async def _started(rec: Recorder) -> None:
    await asyncio.to_thread(rec.started.wait, 5)


async def test_releases_on_size() -> None:
    rec = Recorder()
    b: Batcher[int, int] = Batcher(
        "t", rec, max_batch_size=4, max_queue_delay_s=10.0, idle_dispatch=False
    )
    b.start()
    results = await asyncio.wait_for(asyncio.gather(*(b.submit(i) for i in range(8))), 5)
    assert results == [i * 10 for i in range(8)]
    assert [len(x) for x in rec.batches] == [4, 4]
    await b.close()


async def test_releases_on_timeout() -> None:
    rec = Recorder()
    b: Batcher[int, int] = Batcher(
        "t", rec, max_batch_size=64, max_queue_delay_s=0.05, idle_dispatch=False
    )
    b.start()
    t0 = time.monotonic()
    results = await asyncio.gather(*(b.submit(i) for i in range(3)))
    waited = time.monotonic() - t0
    assert results == [0, 10, 20]
    assert rec.batches == [[0, 1, 2]]
    assert waited >= 0.045  # held for the delay since the batch never filled
    await b.close()


async def test_idle_dispatch_runs_first_item_alone_then_batches_the_rest() -> None:
    rec = Recorder()
    rec.gate.clear()
    b: Batcher[int, int] = Batcher("t", rec, max_batch_size=8, max_queue_delay_s=10.0)
    b.start()
    first = asyncio.ensure_future(b.submit(0))
    await _started(rec)
    rest = [asyncio.ensure_future(b.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    rec.gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [10, 20, 30, 40, 50]
    assert rec.batches == [[0], [1, 2, 3, 4, 5]]
    await b.close()


async def test_overflow_is_rejected_with_overloaded() -> None:
    rec = Recorder()
    rec.gate.clear()
    b: Batcher[int, int] = Batcher("t", rec, max_batch_size=1, max_queue_size=2)
    b.start()
    running = asyncio.ensure_future(b.submit(0))
    await _started(rec)
    queued = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await b.submit(3)
    assert b.stats.rejected_overflow == 1
    rec.gate.set()
    assert await running == 0
    assert await asyncio.gather(*queued) == [10, 20]
    await b.close()


async def test_cancelled_and_expired_requests_are_dropped_before_running() -> None:
    rec = Recorder()
    rec.gate.clear()
    b: Batcher[int, int] = Batcher("t", rec, max_batch_size=8)
    b.start()
    running = asyncio.ensure_future(b.submit(0))
    await _started(rec)
    cancelled = asyncio.ensure_future(b.submit(1))
    expired = asyncio.ensure_future(b.submit(2, deadline=time.monotonic() + 0.01))
    kept = asyncio.ensure_future(b.submit(3))
    await asyncio.sleep(0.02)
    cancelled.cancel()
    rec.gate.set()
    assert await running == 0
    assert await kept == 30
    with pytest.raises(DeadlineExceeded):
        await expired
    assert cancelled.cancelled()
    assert rec.batches == [[0], [3]]  # 1 and 2 never reached the model
    assert b.stats.dropped_cancelled == 1
    assert b.stats.dropped_deadline == 1
    await b.close()


async def test_batch_exception_reaches_every_caller() -> None:
    def boom(items: list[int]) -> list[int]:
        raise RuntimeError("model exploded")

    b: Batcher[int, int] = Batcher(
        "t", boom, max_batch_size=4, max_queue_delay_s=0.01, idle_dispatch=False
    )
    b.start()
    results = await asyncio.gather(*(b.submit(i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    await b.close()


async def test_per_item_exception_fails_only_that_caller() -> None:
    def some_bad(items: list[int]) -> list[int | BaseException]:
        return [InvalidInput("odd") if i % 2 else i for i in items]

    b: Batcher[int, int] = Batcher(
        "t", some_bad, max_batch_size=4, max_queue_delay_s=0.01, idle_dispatch=False
    )
    b.start()
    results = await asyncio.gather(*(b.submit(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], InvalidInput) and isinstance(results[3], InvalidInput)
    await b.close()


async def test_wrong_result_count_is_an_error_for_all() -> None:
    b: Batcher[int, int] = Batcher(
        "t", lambda items: [1], max_batch_size=2, max_queue_delay_s=0.01, idle_dispatch=False
    )
    b.start()
    results = await asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    await b.close()


async def test_caller_cancelled_while_running_gets_no_result_set() -> None:
    rec = Recorder()
    rec.gate.clear()
    b: Batcher[int, int] = Batcher("t", rec, max_batch_size=4)
    b.start()
    fut = asyncio.ensure_future(b.submit(7))
    await _started(rec)
    fut.cancel()
    await asyncio.sleep(0)
    rec.gate.set()
    # The batch finishes and must skip the cancelled future instead of raising
    # InvalidStateError inside the batcher.
    assert await b.submit(8) == 80
    assert fut.cancelled()
    await b.close()


async def test_close_drains_queued_work_then_refuses() -> None:
    rec = Recorder()
    b: Batcher[int, int] = Batcher(
        "t", rec, max_batch_size=4, max_queue_delay_s=1.0, idle_dispatch=False
    )
    b.start()
    pending = [asyncio.ensure_future(b.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    await b.close()
    assert [p.result() for p in pending] == [0, 10, 20]
    with pytest.raises(Unavailable):
        await b.submit(1)
