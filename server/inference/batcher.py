"""Dynamic micro-batcher: one background task per model that groups concurrent requests.

A batch is released when `max_batch_size` items wait, when the oldest has waited
`max_queue_delay`, or (with `idle_dispatch`) at once when no batch is running, since
waiting only pays off while the model is busy. The queue is bounded: overflow is an
`Overloaded` error (RESOURCE_EXHAUSTED). Items whose caller went away (cancelled
future) or whose deadline passed are dropped before the batch runs. The batch
function runs in an executor so the event loop stays free; it returns one result
(or one exception instance) per item, and a whole-batch exception reaches every caller.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from server.concurrency import run_blocking
from server.errors import DeadlineExceeded, Overloaded, Unavailable

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

BatchFn = Callable[[list[In]], Sequence["Out | BaseException"]]


@dataclass(slots=True)
class _Pending(Generic[In, Out]):
    item: In
    future: asyncio.Future[Out]
    enqueued: float
    deadline: float | None  # monotonic seconds
    token: Any = None  # what the observer kept at submit (the caller's trace context)


class ServiceRate:
    """Items per second this model gets through, as an exponentially weighted mean over
    recent batches (all concurrent slots together). Admission control divides the
    queue depth by it to predict how long a new item would wait."""

    __slots__ = ("_alpha", "_concurrency", "items_per_s")

    def __init__(self, concurrency: int = 1, alpha: float = 0.2) -> None:
        self._alpha = alpha
        self._concurrency = concurrency
        self.items_per_s = 0.0  # 0 = nothing measured yet

    def observe(self, items: int, seconds: float) -> None:
        if items <= 0 or seconds <= 0:
            return
        rate = self._concurrency * items / seconds
        self.items_per_s = rate if self.items_per_s == 0 else (
            (1 - self._alpha) * self.items_per_s + self._alpha * rate)

    def expected_wait(self, queued: int) -> float:
        """Seconds until an item queued behind `queued` others starts (0 = unknown)."""
        return queued / self.items_per_s if self.items_per_s > 0 else 0.0


@dataclass(slots=True)
class BatcherStats:
    submitted: int = 0
    batches: int = 0
    items: int = 0
    dropped_cancelled: int = 0
    dropped_deadline: int = 0
    rejected_overflow: int = 0
    rejected_wait: int = 0  # refused at once: the expected queue wait would not fit
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)


class BatchObserver(Protocol):
    """Told about each request and batch (metrics, trace links); must be cheap."""

    def enqueued(self) -> Any:
        """Called in the caller's context at submit; the result rides with the item."""

    def ran(self, size: int, waits_s: Sequence[float], start: float, end: float,
            tokens: Sequence[Any]) -> None:
        """A batch ran from `start` to `end` (perf_counter seconds)."""

    def rejected(self, reason: str, count: int = 1) -> None:
        """queue_full | deadline | cancelled | unavailable."""


class Batcher(Generic[In, Out]):
    """Groups `submit()` calls into batches for `run_batch`, one batch at a time per slot."""

    def __init__(
        self,
        name: str,
        run_batch: BatchFn[In, Out],
        *,
        max_batch_size: int = 32,
        max_queue_delay_s: float = 0.002,
        max_queue_size: int = 2048,
        idle_dispatch: bool = True,
        concurrency: int = 1,
        executor: Executor | None = None,
        max_queue_time_s: float = 0.0,
        observer: BatchObserver | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue_size < 1 or concurrency < 1:
            raise ValueError("max_batch_size, max_queue_size and concurrency must be >= 1")
        self.name = name
        self._run_batch = run_batch
        self._max_batch = max_batch_size
        self._max_delay = max(0.0, max_queue_delay_s)
        self._max_queue = max_queue_size
        self._idle_dispatch = idle_dispatch
        self._executor = executor
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._running = 0
        self._pending: collections.deque[_Pending[In, Out]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._closing = False
        self._max_queue_time = max(0.0, max_queue_time_s)  # 0 = no time budget
        self.rate = ServiceRate(concurrency)
        self.stats = BatcherStats()
        self.observer = observer

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"batcher:{self.name}"
            )

    async def close(self) -> None:
        """Stop accepting, run everything already queued, then stop the loop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    # -- submission ------------------------------------------------------------------
    async def submit(self, item: In, deadline: float | None = None, admit: bool = True) -> Out:
        """Queue one item and wait for its result. `deadline` is time.monotonic() based.
        `admit=False` skips admission by time (the server's own bulk work, which would
        otherwise refuse itself); the queue bound still holds."""
        if self._closing or self._task is None:
            if self.observer is not None:
                self.observer.rejected("unavailable")
            raise Unavailable(f"model {self.name} is not accepting requests")
        if len(self._pending) >= self._max_queue:
            self.stats.rejected_overflow += 1
            if self.observer is not None:
                self.observer.rejected("queue_full")
            raise Overloaded(f"model {self.name} queue is full ({self._max_queue}); retry later")
        if admit:
            self._admit(deadline)
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        token = self.observer.enqueued() if self.observer is not None else None
        self._pending.append(_Pending(item, future, time.monotonic(), deadline, token))
        self.stats.submitted += 1
        self._wakeup.set()
        return await future

    def _admit(self, deadline: float | None) -> None:
        """Admission by time, not only by queue length: refuse at once when the expected
        wait (queue depth over the measured service rate) exceeds the queue-time budget
        or the caller's deadline, instead of queueing work that will time out or push
        every admitted request's latency up."""
        if deadline is not None and deadline <= time.monotonic():
            self.stats.dropped_deadline += 1
            if self.observer is not None:
                self.observer.rejected("deadline")
            raise DeadlineExceeded("the deadline passed before the request was queued")
        wait = self.rate.expected_wait(len(self._pending))
        if wait <= 0:
            return
        budget = self._max_queue_time or float("inf")
        if deadline is not None:
            budget = min(budget, deadline - time.monotonic())
        if wait > budget:
            self.stats.rejected_wait += 1
            if self.observer is not None:
                self.observer.rejected("queue_time")
            retry_ms = max(1, int((wait - (self._max_queue_time or 0.0)) * 1000))
            raise Overloaded(f"model {self.name} is saturated (expected queue wait "
                             f"{wait * 1000:.0f} ms); retry later", retry_after_ms=retry_ms)

    # -- the loop --------------------------------------------------------------------
    def _ready(self, now: float) -> bool:
        if len(self._pending) >= self._max_batch:
            return True
        if self._idle_dispatch and self._running == 0:
            return True
        return now - self._pending[0].enqueued >= self._max_delay

    async def _loop(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._slots.acquire()
            # Wait for a full batch or the oldest item's delay, whichever is first.
            while self._pending and not self._closing and not self._ready(time.monotonic()):
                remaining = self._pending[0].enqueued + self._max_delay - time.monotonic()
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=max(remaining, 0.0))
                except TimeoutError:
                    break
            batch = self._take()
            if not batch:
                self._slots.release()
                continue
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    def _take(self) -> list[_Pending[In, Out]]:
        now = time.monotonic()
        batch: list[_Pending[In, Out]] = []
        while self._pending and len(batch) < self._max_batch:
            p = self._pending.popleft()
            if p.future.done():  # the caller went away (cancelled)
                self.stats.dropped_cancelled += 1
                if self.observer is not None:
                    self.observer.rejected("cancelled")
                continue
            if p.deadline is not None and now >= p.deadline:
                self.stats.dropped_deadline += 1
                if self.observer is not None:
                    self.observer.rejected("deadline")
                p.future.set_exception(DeadlineExceeded("deadline passed while queued"))
                continue
            batch.append(p)
        return batch

    async def _execute(self, batch: list[_Pending[In, Out]]) -> None:
        try:
            items = [p.item for p in batch]
            started = time.perf_counter()
            dispatched = time.monotonic()
            try:
                results = await run_blocking(self._executor, self._run_batch, items)
                self.rate.observe(len(items), time.monotonic() - dispatched)
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"batch function of {self.name} returned {len(results)} results "
                        f"for {len(batch)} items"
                    )
            except Exception as exc:  # one failure reaches every caller of the batch
                log.exception("batch of %d failed in %s", len(batch), self.name)
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                return
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.batch_sizes[len(batch)] += 1
            if self.observer is not None:
                self.observer.ran(len(batch), [dispatched - p.enqueued for p in batch],
                                  started, time.perf_counter(), [p.token for p in batch])
            for p, result in zip(batch, results, strict=True):
                if p.future.done():  # cancelled while running: nobody to tell
                    continue
                if isinstance(result, BaseException):
                    p.future.set_exception(result)
                else:
                    p.future.set_result(result)
        finally:
            self._running -= 1
            self._slots.release()
            self._wakeup.set()
