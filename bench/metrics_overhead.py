"""`aftercare bench metrics-overhead`: Classify saturation throughput with metrics on vs
off, in one run. Two real servers in child processes, one with `--metrics-port 0` (no
instrumentation at all) and one with metrics on a free port (scraped once per
measurement, as Prometheus would); closed-loop saturation is measured on each in turn,
off/on/on/off per round (ABBA, so a drift of the machine's load cancels out). The last
stdout line is JSON with each measurement and `loss` = 1 - on/off (median of rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import time
import urllib.request
from typing import Any

import grpc
import uvloop

from aftercare.v1 import support_pb2, support_pb2_grpc
from bench.classify import sample_texts
from bench.loadgen import closed_loop, quiet_gc
from bench.serverproc import running_server

CONCURRENCY = (32, 64)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def saturation(port: int, texts: list[str], seconds: float) -> float:
    """Best closed-loop Classify throughput over CONCURRENCY (requests/s)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = support_pb2_grpc.SupportStub(channel)

        async def call(i: int) -> object:
            return await stub.Classify(
                support_pb2.ClassifyRequest(text=texts[i % len(texts)]), timeout=30)

        await closed_loop(call, 8, 0.5)  # warm the channel
        with quiet_gc():
            return max([(await closed_loop(call, c, seconds)).throughput
                        for c in CONCURRENCY])


def instrumentation_cost_us(n: int = 20_000) -> dict[str, float]:
    """In-process CPU cost per Classify of what metrics add (the RPC interceptor's
    wrapper and observations, the batcher observer at batch size 1), in microseconds:
    best of three, against the same handler unwrapped. Far less noisy than throughput
    on a shared machine."""
    import asyncio

    from server.api.metrics import MetricsInterceptor
    from server.observability.inference import ModelObserver
    from server.observability.metrics import Metrics

    metrics = Metrics()
    observer = ModelObserver(metrics, None, "intent-classifier", "1")

    async def handler(request: object, context: object) -> object:
        return request

    wrapped: Any = MetricsInterceptor(metrics)._wrap(
        grpc.unary_unary_rpc_method_handler(handler), "/aftercare.v1.Support/Classify")

    async def loop(fn: Any, observe: bool) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await fn(None, None)
            if observe:
                observer.enqueued()
                observer.ran(1, (0.0001,), 0.0, 0.001, (None,))
        return (time.perf_counter() - t0) / n * 1e6

    async def main() -> tuple[float, float]:
        plain = min([await loop(handler, False) for _ in range(3)])
        instrumented = min([await loop(wrapped.unary_unary, True) for _ in range(3)])
        return plain, instrumented

    plain, instrumented = asyncio.run(main())
    return {"plain_us": plain, "instrumented_us": instrumented,
            "added_us_per_request": instrumented - plain}


def run(seconds: float = 3.0, rounds: int = 2) -> dict[str, Any]:
    texts = sample_texts()
    metrics_port = _free_port()
    measurements: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        off = stack.enter_context(running_server(args=("--metrics-port", "0")))
        on = stack.enter_context(running_server(args=("--metrics-port", str(metrics_port))))
        for r in range(rounds):
            for mode in ("off", "on", "on", "off"):
                port = off if mode == "off" else on
                thr = uvloop.run(saturation(port, texts, seconds))
                if mode == "on":  # a scrape, as Prometheus would between measurements
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
                        assert b"aftercare_rpc_requests_total" in resp.read()
                measurements.append({"round": r, "metrics": mode, "throughput": thr})
    ratios = []
    for r in range(rounds):
        by = {m: [x["throughput"] for x in measurements if x["round"] == r
                  and x["metrics"] == m] for m in ("off", "on")}
        ratios.append(statistics.mean(by["on"]) / statistics.mean(by["off"]))
    cost = instrumentation_cost_us()
    off_best = max(x["throughput"] for x in measurements if x["metrics"] == "off")
    return {"bench": "metrics-overhead", "seconds": seconds, "concurrency": CONCURRENCY,
            "instrumentation": cost,
            # The added CPU per request as a share of the server's time per request at
            # its best saturation throughput (2 cores shared with the load generator).
            "estimated_loss_from_cpu": cost["added_us_per_request"] * off_best / 1e6,
            "measurements": measurements, "on_off_ratio_by_round": ratios,
            "on_off_ratio": statistics.median(ratios),
            "loss": 1.0 - statistics.median(ratios)}


def _cmd(args: argparse.Namespace) -> int:
    print(json.dumps(run(args.seconds, args.rounds), default=float))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("metrics-overhead",
                              help="Classify saturation with metrics on vs off, one run")
    p.add_argument("--seconds", type=float, default=3.0, help="per concurrency level")
    p.add_argument("--rounds", type=int, default=2, help="off/on/on/off rounds")
    p.set_defaults(func=_cmd)
