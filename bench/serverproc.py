"""Start a real `aftercare serve` in a child process on port 0 and wait until SERVING."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

_PORT_LINE = re.compile(r"aftercare serving on .*:(\d+)")


@contextlib.contextmanager
def running_server(
    env: Mapping[str, str] | None = None, args: tuple[str, ...] = (), timeout_s: float = 300.0,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Iterator[int]:
    """Yield the port of a server child process; stop it with SIGTERM afterwards.
    `on_start` sees the child process once it serves (e.g. to read its CPU time)."""
    with server_process(env, args, timeout_s, on_start) as (port, _pid):
        yield port


def rss_mb(pid: int) -> float:
    """Resident set size of a process (Linux /proc), in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


@contextlib.contextmanager
def server_process(
    env: Mapping[str, str] | None = None, args: tuple[str, ...] = (), timeout_s: float = 300.0,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    cpus: Iterable[int] | None = None,
) -> Iterator[tuple[int, int]]:
    """Yield (port, pid) of a server child process; stop it with SIGTERM afterwards.
    `cpus`: pin the server to these CPUs (e.g. so a load generator keeps the others)."""
    child_env = dict(os.environ)
    child_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env,
    )
    if cpus:
        # Set on the main thread right after exec, long before the interpreter starts
        # any thread (onnxruntime, grpc, the executor), so every thread inherits it.
        os.sched_setaffinity(proc.pid, set(cpus))
    port = 0
    deadline = time.monotonic() + timeout_s
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-20:], line]
            match = _PORT_LINE.search(line)
            if match:
                port = int(match.group(1))
                break
            if time.monotonic() > deadline:
                break
        if not port:
            raise RuntimeError("server did not start:\n" + "".join(tail))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
            if status != health_pb2.HealthCheckResponse.SERVING:
                raise RuntimeError(f"server reports {status}")
        # Keep draining its output so the child never blocks on a full pipe.
        drain = subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
        if on_start is not None:
            on_start(proc)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        with contextlib.suppress(NameError):
            drain.wait(5)
