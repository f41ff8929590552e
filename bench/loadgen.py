"""Async load generator: closed loop (N callers back to back) and open loop (Poisson rate).

Used by every server benchmark; latencies in seconds from time.perf_counter(). One
event loop drives the calls; `bench.workers` runs the same loops in several processes
and merges their `Run`s, so that the generator's own CPU is not the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence

import msgspec
import numpy as np

Call = Callable[[int], Awaitable[object]]  # call(i) sends request number i

RETRY_HINT = "retry-after-ms"  # the trailer an overload answer carries (server.api.errors)


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
    hinted: int = 0  # RESOURCE_EXHAUSTED answers that carried a retry hint
    # Open loop: how late requests left against their schedule. A large lag means the
    # generator, not the server, was the limit.
    lag_p99_ms: float = 0.0
    workers: int = 1


class UnexpectedFailures(RuntimeError):
    """Calls failed with codes the benchmark did not allow: its figures would lie."""


class Run(msgspec.Struct):
    """The raw outcome of one loop in one process: what `merge` combines."""

    latencies_s: list[float]  # of successful calls
    codes: dict[str, int]
    hinted: int
    started: float  # time.monotonic(), comparable across processes on one machine
    ended: float
    lags_s: list[float] = []


def status_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            return str(code().name)
        except Exception:
            pass
    return exc.__class__.__name__


def _has_retry_hint(exc: BaseException) -> bool:
    trailing = getattr(exc, "trailing_metadata", None)
    if not callable(trailing):
        return False
    try:
        return any(key == RETRY_HINT for key, _ in (trailing() or ()))
    except Exception:
        return False


class Outcomes:
    """Every call's outcome by status code."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.hinted = 0

    def ok(self) -> None:
        self.codes["OK"] = self.codes.get("OK", 0) + 1

    def failed(self, exc: BaseException) -> None:
        code = status_code(exc)
        self.codes[code] = self.codes.get(code, 0) + 1
        if code == "RESOURCE_EXHAUSTED" and _has_retry_hint(exc):
            self.hinted += 1


def unexpected_count(codes: dict[str, int], allowed: Iterable[str]) -> int:
    """Failures (anything but OK) whose code is not in `allowed`."""
    ok = {"OK", *allowed}
    return sum(n for code, n in codes.items() if code not in ok)


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


def merge(mode: str, level: float, runs: Sequence[Run], allowed: Iterable[str] = (),
          strict: bool = True) -> LoadResult:
    """One result from the runs of several processes: latencies pooled (percentiles
    over all of them, not averaged), codes summed, time from the first start to the
    last end. Strict: a failure whose code is not `allowed` raises, so a benchmark never
    reports figures of broken calls."""
    lat = [x for r in runs for x in r.latencies_s]
    lags = [x for r in runs for x in r.lags_s]
    codes: dict[str, int] = {}
    for r in runs:
        for code, n in r.codes.items():
            codes[code] = codes.get(code, 0) + n
    secs = (max(r.ended for r in runs) - min(r.started for r in runs)) if runs else 0.0
    arr = np.asarray(lat or [float("nan")]) * 1000.0
    result = LoadResult(
        mode=mode,
        level=level,
        requests=len(lat),
        errors=sum(n for code, n in codes.items() if code != "OK"),
        seconds=secs,
        throughput=len(lat) / secs if secs > 0 else 0.0,
        p50_ms=float(np.percentile(arr, 50)),
        p95_ms=float(np.percentile(arr, 95)),
        p99_ms=float(np.percentile(arr, 99)),
        codes=dict(sorted(codes.items())),
        unexpected=unexpected_count(codes, allowed),
        hinted=sum(r.hinted for r in runs),
        lag_p99_ms=float(np.percentile(np.asarray(lags) * 1000.0, 99)) if lags else 0.0,
        workers=len(runs),
    )
    if strict and result.unexpected:
        raise UnexpectedFailures(f"{mode} loop at {level:g}: {result.unexpected} calls failed "
                                 f"unexpectedly; outcomes {result.codes}")
    return result


def poisson_arrivals(rate: float, duration_s: float, seed: int = 0) -> list[float]:
    """Send times (seconds from the start) of a Poisson process of `rate`/s."""
    rng = random.Random(seed)
    times: list[float] = []
    t = 0.0
    while rate > 0 and t < duration_s:
        times.append(t)
        t += rng.expovariate(rate)
    return times


async def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def closed_run(call: Call, concurrency: int, duration_s: float, first_index: int = 0,
                     start_at: float = 0.0) -> Run:
    """`concurrency` callers, each sending its next request when the last one returns,
    from `start_at` (time.monotonic(); 0 = now) for `duration_s`."""
    await _sleep_until(start_at)
    latencies: list[float] = []
    out = Outcomes()
    counter = iter(range(first_index, 10**15))
    started = time.monotonic()
    stop_at = started + duration_s

    async def caller() -> None:
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                await call(next(counter))
            except Exception as exc:
                out.failed(exc)
                continue
            out.ok()
            latencies.append(time.perf_counter() - t0)

    with quiet_gc():
        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return Run(latencies, out.codes, out.hinted, started, time.monotonic())


async def scheduled_run(call: Call, arrivals: Sequence[float], indices: Sequence[int],
                        start_at: float = 0.0) -> Run:
    """Open loop: request `indices[k]` leaves at `start_at + arrivals[k]` regardless of
    how fast answers come; each send's lateness is kept (the generator's own limit)."""
    latencies: list[float] = []
    lags: list[float] = []
    out = Outcomes()
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

    start = start_at or time.monotonic()
    await _sleep_until(start)
    with quiet_gc():
        for at, i in zip(arrivals, indices, strict=True):
            due = start + at
            await _sleep_until(due)
            lags.append(max(0.0, time.monotonic() - due))
            tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*tasks)
    return Run(latencies, out.codes, out.hinted, start, time.monotonic(), lags)


async def closed_loop(call: Call, concurrency: int, duration_s: float,
                      allowed: frozenset[str] = frozenset(), strict: bool = True,
                      ) -> LoadResult:
    """`concurrency` callers back to back in this process. Every outcome is counted by
    status code; a failure whose code is not in `allowed` fails the run (strict)."""
    run = await closed_run(call, concurrency, duration_s)
    return merge("closed", concurrency, [run], allowed, strict)


async def open_loop(call: Call, rate: float, duration_s: float, seed: int = 0,
                    allowed: frozenset[str] = frozenset(), strict: bool = True) -> LoadResult:
    """Requests at Poisson arrivals of `rate`/s regardless of how fast answers come."""
    arrivals = poisson_arrivals(rate, duration_s, seed)
    run = await scheduled_run(call, arrivals, range(len(arrivals)))
    return merge("open", rate, [run], allowed, strict)
