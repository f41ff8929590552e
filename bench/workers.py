"""Multi-process load generation: N worker processes, each with its own event loop and
one channel per target, driven by the benchmark process in lock step.

One Python process cannot offer much more than a few thousand gRPC calls a second, and
when it shares cores with the server its own lag shows up as the server's latency (or
as calls that end CANCELLED or DEADLINE_EXCEEDED on the client side). So a load level is
split between workers: a closed loop's callers, an open loop's arrival schedule (one
Poisson schedule, dealt out round-robin, so the offered process is the same whatever
the number of workers). Workers start together at one time.monotonic() instant and
send back raw `Run`s, which `loadgen.merge` pools. Workers can be pinned to CPUs, so
that the generator and the server do not take each other's cores.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from bench.loadgen import Call, LoadResult, Run, closed_run, merge, poisson_arrivals, scheduled_run

METHODS = ("classify", "embed", "health")
_START_MARGIN_S = 0.1  # time for every worker to get the start message before it is due


class Job(msgspec.Struct):
    """One worker's share of one load level."""

    mode: str  # closed | open
    method: str  # classify | embed | health
    timeout_s: float
    duration_s: float = 0.0  # closed
    concurrency: int = 0  # closed: this worker's callers
    first_index: int = 0  # closed: request numbers start here (texts and targets rotate)
    arrivals: list[float] = []  # open: send times (s from the start), this worker's share
    indices: list[int] = []  # open: the request number of each arrival


def split_concurrency(total: int, workers: int) -> list[int]:
    """`total` callers over `workers` as evenly as possible (first workers get more)."""
    base, extra = divmod(total, workers)
    return [base + (1 if k < extra else 0) for k in range(workers)]


def split_arrivals(arrivals: Sequence[float], workers: int,
                   ) -> list[tuple[list[float], list[int]]]:
    """One schedule dealt out round-robin: worker k sends arrivals k, k+N, k+2N, ...
    (with those request numbers), so together they send exactly the original."""
    return [(list(arrivals[k::workers]), list(range(k, len(arrivals), workers)))
            for k in range(workers)]


def closed_jobs(method: str, concurrency: int, duration_s: float, workers: int,
                timeout_s: float) -> list[Job]:
    shares = split_concurrency(concurrency, workers)
    return [Job("closed", method, timeout_s, duration_s=duration_s, concurrency=n,
                first_index=k * 10**9) for k, n in enumerate(shares)]


def open_jobs(method: str, rate: float, duration_s: float, workers: int, timeout_s: float,
              seed: int = 0) -> list[Job]:
    arrivals = poisson_arrivals(rate, duration_s, seed)
    return [Job("open", method, timeout_s, arrivals=a, indices=i)
            for a, i in split_arrivals(arrivals, workers)]


# -- the worker process ----------------------------------------------------------------
def _calls(targets: Sequence[str], texts: Sequence[str]) -> tuple[list[Any], Any]:
    """Channels (one per target) and a call factory `(method, timeout) -> Call`; request
    i goes to target i mod len(targets) with text i mod len(texts)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from aftercare.v1 import support_pb2, support_pb2_grpc

    channels = [grpc.aio.insecure_channel(t) for t in targets]
    support = [support_pb2_grpc.SupportStub(c) for c in channels]
    health = [health_pb2_grpc.HealthStub(c) for c in channels]
    n = len(channels)

    def factory(method: str, timeout: float) -> Call:
        async def classify(i: int) -> object:
            return await support[i % n].Classify(
                support_pb2.ClassifyRequest(text=texts[i % len(texts)]), timeout=timeout)

        async def embed(i: int) -> object:
            return await support[i % n].Embed(
                support_pb2.EmbedRequest(texts=[texts[i % len(texts)]]), timeout=timeout)

        async def check(i: int) -> object:
            return await health[i % n].Check(health_pb2.HealthCheckRequest(), timeout=timeout)

        return {"classify": classify, "embed": embed, "health": check}[method]

    return channels, factory


async def _serve(conn: Connection, targets: Sequence[str], texts: Sequence[str]) -> None:
    channels, factory = _calls(targets, texts)
    try:
        while True:
            message = conn.recv_bytes()  # blocking is fine: nothing else runs meanwhile
            if not message:
                return
            job = msgspec.msgpack.decode(message, type=Job)
            call = factory(job.method, job.timeout_s)
            conn.send_bytes(b"ready")
            start_at = float(conn.recv_bytes().decode())
            if job.mode == "closed":
                run = await closed_run(call, job.concurrency, job.duration_s, job.first_index,
                                       start_at)
            else:
                run = await scheduled_run(call, job.arrivals, job.indices, start_at)
            conn.send_bytes(msgspec.msgpack.encode(run))
    finally:
        for channel in channels:
            await channel.close()


def _worker_main(conn: Connection, targets: list[str], texts: list[str],
                 cpus: list[int] | None) -> None:
    if cpus:  # before any thread (grpc's, the loop's) exists, so all of them inherit it
        os.sched_setaffinity(0, cpus)
    import uvloop

    uvloop.run(_serve(conn, targets, texts))


# -- the driver ------------------------------------------------------------------------
class LoadWorkers:
    """`with LoadWorkers(targets, texts, workers=2, cpus={1}) as lw: lw.closed(...)`."""

    def __init__(self, targets: Sequence[str], texts: Sequence[str], workers: int = 1,
                 cpus: Iterable[int] | None = None) -> None:
        if workers < 1 or not targets:
            raise ValueError("need at least one worker and one target")
        self.targets = list(targets)
        self.workers = workers
        self._texts = list(texts)
        self._cpus = sorted(cpus) if cpus else None
        self._procs: list[Any] = []
        self._conns: list[Connection] = []

    def __enter__(self) -> LoadWorkers:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with grpc threads
        for _ in range(self.workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, daemon=True,
                               args=(child, self.targets, self._texts, self._cpus))
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):  # a worker that already died
                conn.send_bytes(b"")
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for conn in self._conns:
            conn.close()

    def run(self, jobs: Sequence[Job]) -> list[Run]:
        """Every worker gets its job, says ready, and all start at one instant."""
        if any(job.method not in METHODS for job in jobs):
            raise ValueError(f"methods are {METHODS}")
        for conn, job in zip(self._conns, jobs, strict=True):
            conn.send_bytes(msgspec.msgpack.encode(job))
        for conn in self._conns:
            if conn.recv_bytes() != b"ready":
                raise RuntimeError("a load worker did not get ready")
        start_at = str(time.monotonic() + _START_MARGIN_S).encode()
        for conn in self._conns:
            conn.send_bytes(start_at)
        return [msgspec.msgpack.decode(conn.recv_bytes(), type=Run) for conn in self._conns]

    def closed(self, method: str, concurrency: int, duration_s: float, timeout_s: float = 30.0,
               allowed: Iterable[str] = (), strict: bool = True) -> LoadResult:
        runs = self.run(closed_jobs(method, concurrency, duration_s, self.workers, timeout_s))
        return merge("closed", concurrency, runs, allowed, strict)

    def open(self, method: str, rate: float, duration_s: float, timeout_s: float = 30.0,
             allowed: Iterable[str] = (), strict: bool = True, seed: int = 0) -> LoadResult:
        runs = self.run(open_jobs(method, rate, duration_s, self.workers, timeout_s, seed))
        return merge("open", rate, runs, allowed, strict)
