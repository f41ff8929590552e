"""`aftercare bench burst`: a 10x saturation burst (open loop, 2 s deadlines) against the
server with admission control by time, with admission plus grpc's RPC cap, and with
admission off (only the queue length bounds it), in one run.

The generator must not be what fails: the server is pinned to one CPU and the load
worker processes to the others (`--no-pin` to share), the burst rate is `--factor`
times the saturation measured against that same pinned server, and the JSON says how
late the generator sent (`lag_p99_ms`) and what rate it reached.

Per server: saturation (closed loop), steady p99 at 50% of it, its RPC ceiling (Health
.Check, closed loop: what it can answer at all), then the burst: admitted
p99 against the steady p99, every outcome by status code, how many sheds carried a
retry hint, server RSS before and after, and health right after. With admission on,
only RESOURCE_EXHAUSTED may fail; anything else fails the run (exit status 1, after the
JSON). Without admission, DEADLINE_EXCEEDED is the expected way it fails. The last
stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import grpc
import msgspec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.classify import sample_texts
from bench.loadgen import LoadResult
from bench.serverproc import rss_mb, server_process
from bench.workers import LoadWorkers

SHED = frozenset({"RESOURCE_EXHAUSTED"})
# name: (server environment, codes a burst may end with besides OK)
VARIANTS: dict[str, tuple[dict[str, str], frozenset[str]]] = {
    "admission": ({}, SHED),
    "admission_rpc_cap": ({"AFTERCARE_SERVER__MAX_CONCURRENT_RPCS": "256"}, SHED),
    "queue_only": ({"AFTERCARE_CLASSIFIER_BATCHER__MAX_QUEUE_TIME_MS": "0"},
                   SHED | {"DEADLINE_EXCEEDED"}),
}


def split_cpus(cpus: set[int]) -> tuple[set[int] | None, set[int] | None]:
    """(server, load generator): the lowest CPU for the server, the rest for the
    generator; no pinning with fewer than two."""
    if len(cpus) < 2:
        return None, None
    first = min(cpus)
    return {first}, cpus - {first}


def _health(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10).status
    return bool(status == health_pb2.HealthCheckResponse.SERVING)


def summary(sat: float, steady: LoadResult, burst: LoadResult, offered_rate: float,
            burst_s: float, allowed: frozenset[str]) -> dict[str, Any]:
    """The burst's figures against the steady state of the same server; the achieved
    rate is what the generator sent over the burst's schedule (`burst_s`)."""
    sent = sum(burst.codes.values())
    shed = burst.codes.get("RESOURCE_EXHAUSTED", 0)
    return {
        "saturation_throughput": sat,
        "steady_p99_ms": steady.p99_ms,
        "steady_codes": steady.codes,
        "burst_offered_rate": offered_rate,
        "burst_achieved_rate": sent / burst_s if burst_s > 0 else 0.0,
        "lag_p99_ms": burst.lag_p99_ms,
        "burst": msgspec.to_builtins(burst),
        "allowed": sorted(allowed),
        "admitted": burst.requests,
        "shed": shed,
        "shed_with_retry_hint": burst.hinted,
        "unexpected": burst.unexpected,
        "admitted_p99_ms": burst.p99_ms,
        "p99_ratio": burst.p99_ms / steady.p99_ms if steady.p99_ms > 0 else float("nan"),
    }


def _measure(env: dict[str, str], allowed: frozenset[str], texts: list[str], seconds: float,
             burst_s: float, factor: float, workers: int, pin: bool) -> dict[str, Any]:
    server_cpus, client_cpus = split_cpus(os.sched_getaffinity(0)) if pin else (None, None)
    with server_process(env, ("--metrics-port", "0"), cpus=server_cpus) as (port, pid), \
            LoadWorkers([f"127.0.0.1:{port}"], texts, workers, client_cpus) as lw:
        lw.closed("classify", 4, 1.0)
        sat = max(lw.closed("classify", c, seconds, allowed=SHED).throughput for c in (32, 64))
        steady = lw.open("classify", sat * 0.5, seconds)
        # What the server can answer at all (no model work): a burst far past this is
        # refused by the transport, before any admission code can run.
        ceiling = lw.closed("health", 64, seconds).throughput
        rss_before = rss_mb(pid)
        # Not strict: every outcome is counted and judged below, after the JSON exists.
        burst = lw.open("classify", sat * factor, burst_s, timeout_s=2.0, allowed=allowed,
                        strict=False, seed=1)
        rss_after = rss_mb(pid)
        healthy = _health(port)
    return {**summary(sat, steady, burst, sat * factor, burst_s, allowed),
            "rpc_ceiling": ceiling, "burst_over_rpc_ceiling": sat * factor / ceiling,
            "server_cpus": sorted(server_cpus or ()), "client_cpus": sorted(client_cpus or ()),
            "rss_before_mb": rss_before, "rss_after_mb": rss_after, "healthy_after": healthy}


def run(seconds: float = 3.0, burst_s: float = 3.0, factor: float = 10.0, workers: int = 2,
        pin: bool = True, variants: tuple[str, ...] = tuple(VARIANTS)) -> dict[str, Any]:
    texts = sample_texts()
    out: dict[str, Any] = {"bench": "burst", "factor": factor, "workers": workers}
    for name in variants:
        env, allowed = VARIANTS[name]
        out[name] = _measure(env, allowed, texts, seconds, burst_s, factor, workers, pin)
    for name in variants:
        out[f"{name}_p99_ratio"] = out[name]["p99_ratio"]
    out["ok"] = all(out[n]["unexpected"] == 0 and out[n]["healthy_after"] for n in variants)
    return out


def _cmd(args: argparse.Namespace) -> int:
    variants = tuple(args.variants.split(",")) if args.variants else tuple(VARIANTS)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    result = run(args.seconds, args.burst_seconds, args.factor, args.workers, not args.no_pin,
                 variants)
    print(json.dumps(result, default=float))
    return 0 if result["ok"] else 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("burst", help="overload burst: admission control vs queue only")
    p.add_argument("--seconds", type=float, default=3.0, help="per steady load level")
    p.add_argument("--burst-seconds", type=float, default=3.0)
    p.add_argument("--factor", type=float, default=10.0, help="burst rate / saturation")
    p.add_argument("--workers", type=int, default=2, help="load generator processes")
    p.add_argument("--no-pin", action="store_true",
                   help="let server and generator share every CPU")
    p.add_argument("--variants", default="",
                   help=f"comma-separated subset of {','.join(VARIANTS)}")
    p.set_defaults(func=_cmd)
