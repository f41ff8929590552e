"""`aftercare bench classify|embed`: the served model against raw onnxruntime, same run.

(a) The limit: raw onnxruntime on the same model.onnx with the same tokenizer, batch
sizes 1..64: best throughput and bs1 latency. (b) The real server in a child process
over a real channel: closed-loop concurrencies (saturation throughput) and an open
loop at 50% of saturation (p99). The last stdout line is one JSON object with the raw
figures and the ratios `sat_ratio`, `low_p50_ratio`, `p99_half_ratio`.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path
from typing import Any

import grpc
import msgspec
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aftercare.v1 import support_pb2, support_pb2_grpc
from bench.loadgen import closed_loop, open_loop
from bench.serverproc import running_server
from models.repository import ModelRepository
from server.config import load_config
from server.inference.session import create_session
from server.inference.tokenizer import TextTokenizer

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
_DEMO = Path(__file__).resolve().parents[1] / "models" / "data" / "demo_intents.csv"


def sample_texts(limit: int = 512) -> list[str]:
    with _DEMO.open(newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    return texts[:: max(1, len(texts) // limit)][:limit]


def raw_limit(kind: str, texts: list[str], seconds: float) -> dict[str, Any]:
    cfg = load_config()
    name = cfg.models.classifier if kind == "classify" else cfg.models.embedder
    output = "probabilities" if kind == "classify" else "embedding"
    mv = ModelRepository(Path(cfg.models.repository)).latest(name)
    # The limit is onnxruntime at its own defaults (all cores, spinning threads),
    # whatever the server is configured with.
    session = create_session(mv.model_path, cfg.models.providers)
    tok = TextTokenizer(mv.tokenizer_path, cfg.models.max_length, cfg.models.max_input_tokens)
    inputs = [i.name for i in session.get_inputs()]

    def run(batch: list[str]) -> None:
        enc = [e for e in tok.encode(batch) if not isinstance(e, BaseException)]
        session.run([output], tok.pad(enc).feeds(inputs))

    for _ in range(3):
        run(texts[:8])
    throughput: dict[int, float] = {}
    for bs in BATCH_SIZES:
        passes = []
        for _ in range(3):  # best of three: the limit, not the machine's noise
            done, i, t0 = 0, 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 3:
                run([texts[(i + j) % len(texts)] for j in range(bs)])
                done += bs
                i += bs
            passes.append(done / (time.perf_counter() - t0))
        throughput[bs] = max(passes)
    lat = []
    for j in range(3 * len(texts)):
        t0 = time.perf_counter()
        run([texts[j % len(texts)]])
        lat.append(time.perf_counter() - t0)
    best_bs = max(throughput, key=throughput.__getitem__)
    return {
        "model_version": f"{mv.name}/{mv.version}",
        "providers": session.get_providers(),
        "throughput_by_batch": throughput,
        "best_batch_size": best_bs,
        "best_throughput": throughput[best_bs],
        "bs1_p50_ms": statistics.median(lat) * 1000.0,
    }


async def served(kind: str, port: int, texts: list[str], seconds: float) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = support_pb2_grpc.SupportStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        async def ping(i: int) -> object:
            return await health.Check(health_pb2.HealthCheckRequest(), timeout=30)

        async def call(i: int) -> object:
            text = texts[i % len(texts)]
            if kind == "classify":
                return await stub.Classify(support_pb2.ClassifyRequest(text=text), timeout=30)
            return await stub.Embed(support_pb2.EmbedRequest(texts=[text]), timeout=30)

        await closed_loop(call, 4, 1.0)  # warm the channel and the server
        # The floor: a gRPC round trip that does no work (Python client and server).
        floor = await closed_loop(ping, 1, 2.0)
        # High concurrencies may be shed (RESOURCE_EXHAUSTED, counted in `codes`) when
        # the expected queue wait passes the admission budget; anything else fails.
        closed = [await closed_loop(call, c, seconds, allowed=frozenset({"RESOURCE_EXHAUSTED"}))
                  for c in (1, 8, 32, 64, 128)]
        saturation = max(r.throughput for r in closed)
        half = await open_loop(call, saturation * 0.5, seconds * 1.5)
    return {
        "closed": [msgspec.to_builtins(r) for r in closed],
        "open_half": msgspec.to_builtins(half),
        "saturation_throughput": saturation,
        "low_p50_ms": closed[0].p50_ms,
        "grpc_floor_p50_ms": floor.p50_ms,
        "half_p99_ms": half.p99_ms,
    }


def run(kind: str = "classify", seconds: float = 4.0, metrics_port: int = 0) -> dict[str, Any]:
    texts = sample_texts()
    raw = raw_limit(kind, texts, seconds / 2)
    with running_server(args=("--metrics-port", str(metrics_port))) as port:
        srv = uvloop.run(served(kind, port, texts, seconds))
    return {
        "bench": kind,
        "raw": raw,
        "server": srv,
        "sat_ratio": srv["saturation_throughput"] / raw["best_throughput"],
        "low_p50_ratio": srv["low_p50_ms"] / raw["bs1_p50_ms"],
        "p99_half_ratio": srv["half_p99_ms"] / raw["bs1_p50_ms"],
    }


def _cmd(args: argparse.Namespace) -> int:
    result = run(args.bench_command, args.seconds, args.metrics_port)
    print(json.dumps(result, default=float))
    return 0


def register(subparsers: Any) -> None:
    for kind in ("classify", "embed"):
        p = subparsers.add_parser(kind, help=f"served {kind} vs raw onnxruntime")
        p.add_argument("--seconds", type=float, default=4.0, help="per load level")
        p.add_argument("--metrics-port", type=int, default=0,
                       help="the server's metrics port (default 0 = metrics off)")
        p.set_defaults(func=_cmd)
