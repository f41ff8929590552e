"""Async load generator: closed loop (N callers back to back) and open loop (Poisson rate).

Used by every server benchmark; latencies in seconds from time.perf_counter().
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from collections.abc import Awaitable, Callable, Iterator

import msgspec
import numpy as np

Call = Callable[[int], Awaitable[object]]  # call(i) sends request number i


class LoadResult(msgspec.Struct):
    mode: str  # closed | open
    level: float  # concurrency (closed) or offered rate/s (open)
    requests: int
    errors: int
    seconds: float
    throughput: float  # completed requests per second
    p50_ms: float
    p95_ms: float
    p99_ms: float


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """No collector pauses in the load generator while it measures (they are its
    own, not the server's); everything is collected before and after."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _summary(mode: str, level: float, lat: list[float], errors: int, secs: float) -> LoadResult:
    arr = np.asarray(lat or [float("nan")]) * 1000.0
    return LoadResult(
        mode=mode,
        level=level,
        requests=len(lat),
        errors=errors,
        seconds=secs,
        throughput=len(lat) / secs if secs > 0 else 0.0,
        p50_ms=float(np.percentile(arr, 50)),
        p95_ms=float(np.percentile(arr, 95)),
        p99_ms=float(np.percentile(arr, 99)),
    )


async def closed_loop(call: Call, concurrency: int, duration_s: float) -> LoadResult:
    """`concurrency` callers, each sending its next request when the last one returns."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration_s
    counter = iter(range(10**12))

    async def caller() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                await call(next(counter))
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with quiet_gc():
        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return _summary("closed", concurrency, latencies, errors, time.perf_counter() - t0)


async def open_loop(call: Call, rate: float, duration_s: float, seed: int = 0) -> LoadResult:
    """Requests at Poisson arrivals of `rate`/s regardless of how fast answers come."""
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        try:
            await call(i)
        except Exception:
            errors += 1
            return
        latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    next_at = start
    i = 0
    with quiet_gc():
        while next_at < start + duration_s:
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
            i += 1
            next_at += rng.expovariate(rate)
        await asyncio.gather(*tasks)
    return _summary("open", rate, latencies, errors, time.perf_counter() - start)
