"""`aftercare bench respond`: time to first token and total time of Respond, against the
Classify latency measured in the same run on the same server, plus the PII comparison.

The real server runs in a child process over a real channel, on the demo shop. For
each concurrency a closed loop of customers sends a mix of order, return, warranty,
policy and handoff messages. Ratio reported: `ttft_classify_ratio` = Respond TTFT p50
at concurrency 1 / Classify p50 at concurrency 1 (target <= 3). The PII section is
`bench pii` (ours vs Presidio pattern recognizers) when presidio-analyzer is installed
(`make bench-deps`). One JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

import grpc
import numpy as np

from aftercare.v1 import support_pb2, support_pb2_grpc
from bench.loadgen import closed_loop
from bench.serverproc import running_server

TEMPLATES = (
    "where is my order {order}?",
    "I want to return the item from order {order}",
    "has my refund been processed?",
    "my {title} stopped working, is it still under warranty?",
    "how long does standard shipping take?",
    "what is your return policy for electronics?",
    "can I change the delivery address of {order}?",
    "I need an invoice for order {order}",
    "this is the third time I write, I want to talk to a human",
)


async def _messages(stub: support_pb2_grpc.SupportStub, n: int) -> list[tuple[str, str, str]]:
    """One message per customer per round, templates rotating: a customer writing about
    the same order again and again would (rightly) be handed off as a repeat contact."""
    contexts: list[support_pb2.CustomerContext] = []
    for start in range(1, n + 1, 100):
        got = await asyncio.gather(*(
            stub.GetCustomerContext(support_pb2.CustomerContextRequest(customer_id=f"C{i:06d}"),
                                    timeout=30) for i in range(start, min(start + 100, n + 1))),
            return_exceptions=True)
        contexts += [c for c in got
                     if isinstance(c, support_pb2.CustomerContext) and c.orders]
    out: list[tuple[str, str, str]] = []
    for j in range(len(TEMPLATES)):
        for i, ctx in enumerate(contexts):
            order = ctx.orders[0]
            fill = {"order": order.order_id, "title": order.items[0].title}
            template = TEMPLATES[(i + j) % len(TEMPLATES)]
            channel = ("chat", "email", "social")[(i + j) % 3]
            out.append((template.format(**fill), ctx.customer_id, channel))
    return out


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


async def measure(port: int, seconds: float, concurrencies: tuple[int, ...]) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = support_pb2_grpc.SupportStub(channel)
        messages = await _messages(stub, 2000)

        async def classify(i: int) -> object:
            return await stub.Classify(
                support_pb2.ClassifyRequest(text=messages[i % len(messages)][0]), timeout=30)

        ttfts: list[float] = []
        outcomes: dict[str, int] = {}

        async def respond(i: int) -> object:
            text, customer, channel_name = messages[i % len(messages)]
            t0 = time.perf_counter()
            first = None
            async for ev in stub.Respond(support_pb2.RespondRequest(
                    text=text, customer_id=customer, channel=channel_name), timeout=60):
                if first is None and ev.HasField("delta"):
                    first = time.perf_counter() - t0
                if ev.HasField("final"):
                    outcomes[ev.final.outcome] = outcomes.get(ev.final.outcome, 0) + 1
            ttfts.append(first if first is not None else time.perf_counter() - t0)
            return None

        await closed_loop(respond, 2, 1.0)  # warm up both paths
        await closed_loop(classify, 2, 1.0)
        classify_low = await closed_loop(classify, 1, seconds)
        levels = []
        for c in concurrencies:
            ttfts.clear()
            result = await closed_loop(respond, c, seconds)
            levels.append({
                "concurrency": c, "throughput": result.throughput, "errors": result.errors,
                "ttft_p50_ms": _pct(ttfts, 50), "ttft_p95_ms": _pct(ttfts, 95),
                "total_p50_ms": result.p50_ms, "total_p95_ms": result.p95_ms,
                "total_p99_ms": result.p99_ms,
            })
    return {"classify_p50_ms": classify_low.p50_ms, "levels": levels, "outcomes": outcomes}


def _pii_section() -> dict[str, Any]:
    try:
        from bench.pii import run as pii_run

        full = pii_run()
    except ImportError as exc:
        return {"skipped": f"presidio-analyzer not installed ({exc}); run make bench-deps"}
    return {name: {"messages_per_s": full[name]["messages_per_s"],
                   "recall": {k: m["recall"] for k, m in full[name]["per_kind"].items()}}
            for name in ("ours", "presidio") if name in full} | {
        "speed_ratio_ours_over_presidio": full.get("speed_ratio_ours_over_presidio")}


def run(seconds: float = 5.0, concurrencies: tuple[int, ...] = (1, 4, 16),
        records_url: str = "") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, running_server(
        env={"AFTERCARE_RECORDS__PATH": f"{tmp}/records.sqlite",
             "AFTERCARE_RECORDS__URL": records_url}
    ) as port:
        served = asyncio.run(measure(port, seconds, concurrencies))
    low = served["levels"][0]
    return {
        "bench": "respond",
        "records": "postgresql" if records_url else "sqlite",
        **served,
        "ttft_classify_ratio": low["ttft_p50_ms"] / served["classify_p50_ms"],
        "pii": _pii_section(),
    }


def _cmd(args: argparse.Namespace) -> int:
    conc = tuple(int(c) for c in args.concurrency.split(","))
    print(json.dumps(run(args.seconds, conc, args.records_url), default=float))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("respond", help="Respond TTFT/total vs Classify, PII vs Presidio")
    p.add_argument("--seconds", type=float, default=5.0, help="per load level")
    p.add_argument("--concurrency", default="1,4,16")
    p.add_argument("--records-url", default="",
                   help="records.url of the server (e.g. postgresql://...); default SQLite")
    p.set_defaults(func=_cmd)
