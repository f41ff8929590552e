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
    requests: int  # completed successfully (the latencies are theirs)
    errors: int
    seconds: float
    throughput: float  # completed requests per second
    p50_ms: float
    p95_ms: float
    p99_ms: float
    codes: dict[str, int] = {}  # every outcome by status code, OK included
    unexpected: int = 0  # failures whose code the caller did not allow


class UnexpectedFailures(RuntimeError):
    """Calls failed with codes the benchmark did not allow: its figures would lie."""


def _code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            return str(code().name)
        except Exception:
            pass
    return exc.__class__.__name__


class _Outcomes:
    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed
        self.codes: dict[str, int] = {}
        self.errors = 0
        self.unexpected = 0

    def ok(self) -> None:
        self.codes["OK"] = self.codes.get("OK", 0) + 1

    def failed(self, exc: BaseException) -> None:
        code = _code(exc)
        self.codes[code] = self.codes.get(code, 0) + 1
        self.errors += 1
        if code not in self.allowed:
            self.unexpected += 1


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


def _summary(mode: str, level: float, lat: list[float], out: _Outcomes, secs: float,
             strict: bool) -> LoadResult:
    arr = np.asarray(lat or [float("nan")]) * 1000.0
    result = LoadResult(
        mode=mode,
        level=level,
        requests=len(lat),
        errors=out.errors,
        seconds=secs,
        throughput=len(lat) / secs if secs > 0 else 0.0,
        p50_ms=float(np.percentile(arr, 50)),
        p95_ms=float(np.percentile(arr, 95)),
        p99_ms=float(np.percentile(arr, 99)),
        codes=dict(sorted(out.codes.items())),
        unexpected=out.unexpected,
    )
    if strict and out.unexpected:
        raise UnexpectedFailures(f"{mode} loop at {level:g}: {out.unexpected} calls failed "
                                 f"unexpectedly; outcomes {result.codes}")
    return result


async def closed_loop(call: Call, concurrency: int, duration_s: float,
                      allowed: frozenset[str] = frozenset(), strict: bool = True,
                      ) -> LoadResult:
    """`concurrency` callers, each sending its next request when the last one returns.
    Every outcome is counted by status code; a failure whose code is not in `allowed`
    fails the run (strict) so that a benchmark never reports figures of broken calls."""
    latencies: list[float] = []
    out = _Outcomes(allowed)
    stop_at = time.perf_counter() + duration_s
    counter = iter(range(10**12))

    async def caller() -> None:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                await call(next(counter))
            except Exception as exc:
                out.failed(exc)
                continue
            out.ok()
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with quiet_gc():
        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return _summary("closed", concurrency, latencies, out, time.perf_counter() - t0, strict)


async def open_loop(call: Call, rate: float, duration_s: float, seed: int = 0,
                    allowed: frozenset[str] = frozenset(), strict: bool = True) -> LoadResult:
    """Requests at Poisson arrivals of `rate`/s regardless of how fast answers come."""
    rng = random.Random(seed)
    latencies: list[float] = []
    out = _Outcomes(allowed)
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            await call(i)
        except Exception as exc:
            out.failed(exc)
            return
        out.ok()
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
    return _summary("open", rate, latencies, out, time.perf_counter() - start, strict)
