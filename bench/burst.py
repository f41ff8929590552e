"""`aftercare bench burst`: a 10x saturation burst (open loop, 2 s deadlines) against the
server with admission control by time, and against the same server with it off (only
the queue length bounds admission), in one run.

Per server: saturation (closed loop), steady p99 at 50% of it, then the burst: admitted
p99 against the steady p99, every outcome by status code (only RESOURCE_EXHAUSTED may
fail), server RSS before and after, and health right after. The last stdout line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import grpc
import msgspec
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aftercare.v1 import support_pb2, support_pb2_grpc
from bench.classify import sample_texts
from bench.loadgen import closed_loop, open_loop
from bench.serverproc import rss_mb, server_process

SHED = frozenset({"RESOURCE_EXHAUSTED"})


async def _measure(port: int, pid: int, texts: list[str], seconds: float,
                   burst_s: float, factor: float) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = support_pb2_grpc.SupportStub(channel)

        def caller(timeout: float) -> Any:
            async def call(i: int) -> object:
                return await stub.Classify(
                    support_pb2.ClassifyRequest(text=texts[i % len(texts)]), timeout=timeout)
            return call

        await closed_loop(caller(30), 4, 1.0)
        sat = 0.0
        for c in (32, 64):
            sat = max(sat, (await closed_loop(caller(30), c, seconds, allowed=SHED)).throughput)
        steady = await open_loop(caller(30), sat * 0.5, seconds)
        rss_before = rss_mb(pid)
        t0 = time.perf_counter()
        # Not strict: the point is to count what else fails (the JSON's `unexpected`).
        burst = await open_loop(caller(2.0), sat * factor, burst_s, allowed=SHED, strict=False)
        wall = time.perf_counter() - t0
        rss_after = rss_mb(pid)
        status = (await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10)).status
    offered = sum(burst.codes.values())
    return {
        "saturation_throughput": sat,
        "steady_p99_ms": steady.p99_ms,
        "burst_offered_rate": sat * factor,
        "burst_achieved_rate": offered / wall,  # the Python client's own ceiling shows here
        "burst": msgspec.to_builtins(burst),
        "admitted": burst.requests,
        "shed": burst.codes.get("RESOURCE_EXHAUSTED", 0),
        "unexpected": burst.unexpected,
        "admitted_p99_ms": burst.p99_ms,
        "p99_ratio": burst.p99_ms / steady.p99_ms,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "healthy_after": status == health_pb2.HealthCheckResponse.SERVING,
    }


def run(seconds: float = 3.0, burst_s: float = 3.0, factor: float = 10.0) -> dict[str, Any]:
    texts = sample_texts()
    out: dict[str, Any] = {"bench": "burst", "factor": factor}
    for name, env in (("admission", {}),
                      ("admission_rpc_cap", {"AFTERCARE_SERVER__MAX_CONCURRENT_RPCS": "256"}),
                      ("queue_only", {"AFTERCARE_CLASSIFIER_BATCHER__MAX_QUEUE_TIME_MS": "0"})):
        with server_process(env) as (port, pid):
            out[name] = uvloop.run(_measure(port, pid, texts, seconds, burst_s, factor))
    out["admitted_p99_ratio"] = out["admission"]["p99_ratio"]
    out["queue_only_p99_ratio"] = out["queue_only"]["p99_ratio"]
    return out


def _cmd(args: argparse.Namespace) -> int:
    print(json.dumps(run(args.seconds, args.burst_seconds, args.factor), default=float))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("burst", help="overload burst: admission control vs queue only")
    p.add_argument("--seconds", type=float, default=3.0, help="per steady load level")
    p.add_argument("--burst-seconds", type=float, default=3.0)
    p.add_argument("--factor", type=float, default=10.0, help="burst rate / saturation")
    p.set_defaults(func=_cmd)


