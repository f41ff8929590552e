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


def test_service_rate_is_a_weighted_mean_over_batches() -> None:
    from server.inference.batcher import ServiceRate

    r = ServiceRate(concurrency=2, alpha=0.5)
    assert r.expected_wait(100) == 0.0  # nothing measured: no prediction
    r.observe(10, 0.01)  # 10 items in 10 ms on one of 2 slots -> 2000/s together
    assert r.items_per_s == pytest.approx(2000)
    r.observe(10, 0.02)  # 1000/s
    assert r.items_per_s == pytest.approx(1500)
    assert r.expected_wait(150) == pytest.approx(0.1)
    r.observe(0, 1.0)
    r.observe(5, 0.0)  # ignored
    assert r.items_per_s == pytest.approx(1500)


async def test_admission_refuses_when_the_expected_wait_exceeds_the_budget() -> None:
    rec = Recorder()
    rec.gate.clear()  # hold the first batch so the queue builds up
    b: Batcher[int, int] = Batcher("t", rec, max_batch_size=1, max_queue_delay_s=0.0,
                                   max_queue_time_s=0.05)
    b.rate.items_per_s = 100.0  # as if measured: 10 ms per item
    refusals: list[str] = []

    class Counting:  # the metrics' observer: every refusal is counted by reason
        def enqueued(self) -> None:
            return None

        def ran(self, *args: object) -> None:
            return None

        def rejected(self, reason: str, count: int = 1) -> None:
            refusals.extend([reason] * count)

    b.observer = Counting()
    b.start()
    first = asyncio.ensure_future(b.submit(0))
    await _started(rec)
    queued = [asyncio.ensure_future(b.submit(i)) for i in range(1, 7)]  # 6 x 10 ms
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="saturated") as err:
        await b.submit(99)  # behind 6 it would wait 60 ms > 50 ms: refused at once
    assert err.value.retry_after_ms >= 1
    assert b.stats.rejected_wait == 1
    # a caller whose deadline is nearer than the expected wait is refused too
    b.rate.items_per_s = 1000.0  # 6 queued -> 6 ms
    with pytest.raises(Overloaded):
        await b.submit(98, deadline=time.monotonic() + 0.001)
    with pytest.raises(DeadlineExceeded):  # already past: never queued
        await b.submit(97, deadline=time.monotonic() - 1)
    assert refusals == ["queue_time", "queue_time", "deadline"]
    rec.gate.set()
    assert await asyncio.wait_for(asyncio.gather(first, *queued), 5) == [i * 10 for i in range(7)]
    assert all(99 not in batch and 98 not in batch for batch in rec.batches)
    await b.close()


async def test_admission_is_off_without_a_budget_or_a_measured_rate() -> None:
    rec = Recorder()
    b: Batcher[int, int] = Batcher("t", rec, max_batch_size=4, max_queue_time_s=0.0)
    b.rate.items_per_s = 1.0  # 1 item/s, but no budget and no deadline: admitted
    b.start()
    assert await asyncio.gather(*(b.submit(i) for i in range(6))) == [i * 10 for i in range(6)]
    await b.close()
