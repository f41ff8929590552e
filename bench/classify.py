"""`aftercare bench classify|embed`: the served model against raw onnxruntime, same run.

(a) The limit, two ways, on the same model.onnx with the same tokenizer: `sequential`,
one caller at onnxruntime's defaults (all cores inside one run), batch sizes 1..64;
and `concurrent`, as many threads as the server runs batches at once, each on the
session the server would build (its intra-op threads and spinning), at the batch sizes
the server can form. The honest limit is the better of the two. (b) The real server in
a child process (or the running servers named by `--targets`, load spread across them)
over real channels from `--workers` load processes: the gRPC floor (Health.Check, one
caller), closed-loop concurrencies (saturation) and an open loop at 50% of it (p99).
The last stdout line is one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from bench.serverproc import running_server
from bench.workers import LoadWorkers
from models.repository import ModelRepository
from server.config import load_config
from server.inference.encoder import usable_cpus
from server.inference.session import create_session
from server.inference.tokenizer import TextTokenizer

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
CONCURRENCY = (1, 8, 32, 64, 128)
SHED = frozenset({"RESOURCE_EXHAUSTED"})
_DEMO = Path(__file__).resolve().parents[1] / "models" / "data" / "demo_intents.csv"


def sample_texts(limit: int = 512) -> list[str]:
    with _DEMO.open(newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    return texts[:: max(1, len(texts) // limit)][:limit]


Runner = Callable[[list[str]], None]


def _runner(kind: str, server_threads: bool) -> tuple[Runner, dict[str, Any]]:
    cfg = load_config()
    name = cfg.models.classifier if kind == "classify" else cfg.models.embedder
    output = "probabilities" if kind == "classify" else "embedding"
    mv = ModelRepository(Path(cfg.models.repository)).latest(name)
    m = cfg.models
    session = (create_session(mv.model_path, m.providers, m.intra_op_threads,
                              m.inter_op_threads, m.allow_spinning) if server_threads
               else create_session(mv.model_path, m.providers))
    tok = TextTokenizer(mv.tokenizer_path, m.max_length, m.max_input_tokens)
    inputs = [i.name for i in session.get_inputs()]

    def run(batch: list[str]) -> None:
        enc = [e for e in tok.encode(batch) if not isinstance(e, BaseException)]
        session.run([output], tok.pad(enc).feeds(inputs))

    for _ in range(3):
        run(["where is my order"] * 8)
    return run, {"model_version": f"{mv.name}/{mv.version}",
                 "providers": session.get_providers()}


def _pass(run: Runner, texts: list[str], bs: int, threads: int, seconds: float) -> float:
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def caller(k: int) -> None:
        i = k * 7919
        while time.perf_counter() < stop:
            run([texts[(i + j) % len(texts)] for j in range(bs)])
            done[k] += bs
            i += bs

    t0 = time.perf_counter()
    pool = [threading.Thread(target=caller, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def _throughput(run: Runner, texts: list[str], bs: int, threads: int, seconds: float) -> float:
    """Items/s of `threads` callers running batches of `bs` back to back; best of three
    passes: the limit, not the machine's noise."""
    return max(_pass(run, texts, bs, threads, seconds / 3) for _ in range(3))


def _bs1_p50_ms(run: Runner, texts: list[str]) -> float:
    lat = []
    for j in range(3 * len(texts)):
        t0 = time.perf_counter()
        run([texts[j % len(texts)]])
        lat.append(time.perf_counter() - t0)
    return statistics.median(lat) * 1000.0


def _best(throughput: dict[int, float]) -> dict[str, Any]:
    bs = max(throughput, key=throughput.__getitem__)
    return {"throughput_by_batch": throughput, "best_batch_size": bs,
            "best_throughput": throughput[bs]}


def raw_limit(kind: str, texts: list[str], seconds: float) -> dict[str, Any]:
    """Sequential at onnxruntime's defaults (the figures at the top level, as before)
    and concurrent the way the server runs the model (`concurrent`)."""
    cfg = load_config()
    batcher = cfg.classifier_batcher if kind == "classify" else cfg.embedder_batcher
    threads = batcher.concurrency or usable_cpus()
    default, info = _runner(kind, server_threads=False)
    seq = {bs: _throughput(default, texts, bs, 1, seconds) for bs in BATCH_SIZES}
    bs1 = _bs1_p50_ms(default, texts)
    del default  # its spinning threads would take cores from the concurrent pass
    like_server, _ = _runner(kind, server_threads=True)
    sizes = [bs for bs in BATCH_SIZES if bs <= batcher.max_batch_size]
    conc = {bs: _throughput(like_server, texts, bs, threads, seconds) for bs in sizes}
    return {**info, **_best(seq), "bs1_p50_ms": bs1,
            "concurrent": {"threads": threads, "intra_op_threads": cfg.models.intra_op_threads,
                           **_best(conc), "bs1_p50_ms": _bs1_p50_ms(like_server, texts[:128])}}


def served(kind: str, targets: Sequence[str], texts: list[str], seconds: float,
           workers: int) -> dict[str, Any]:
    with LoadWorkers(targets, texts, workers) as lw:
        lw.closed(kind, 4 * len(targets), 1.0)  # warm the channels and the servers
        # The floor: a gRPC round trip that does no work (Python client and server).
        floor = lw.closed("health", 1, 2.0)
        # High concurrencies may be shed (RESOURCE_EXHAUSTED, counted in `codes`) when
        # the expected queue wait passes the admission budget; anything else fails.
        closed = [lw.closed(kind, c, seconds, allowed=SHED) for c in CONCURRENCY]
        saturation = max(r.throughput for r in closed)
        # Sheds at half load are allowed but counted (`half_shed`): on a noisy machine a
        # stall can push the expected wait past the budget.
        half = lw.open(kind, saturation * 0.5, seconds * 1.5, allowed=SHED)
    return {
        "targets": list(targets),
        "workers": workers,
        "closed": [msgspec.to_builtins(r) for r in closed],
        "open_half": msgspec.to_builtins(half),
        "saturation_throughput": saturation,
        "low_p50_ms": closed[0].p50_ms,
        "grpc_floor_ms": floor.p50_ms,
        "half_p99_ms": half.p99_ms,
        "half_shed": half.codes.get("RESOURCE_EXHAUSTED", 0),
    }


def ratios(raw: dict[str, Any], srv: dict[str, Any]) -> dict[str, float]:
    """The issue's targets, all against figures of the same run: saturation over the
    better raw limit (and over each), low-load p50 over raw bs1 alone and over raw bs1
    plus the gRPC floor, p99 at half saturation over raw bs1."""
    seq, conc = raw["best_throughput"], raw["concurrent"]["best_throughput"]
    sat, bs1 = srv["saturation_throughput"], raw["bs1_p50_ms"]
    return {
        "sat_ratio": sat / max(seq, conc),
        "sat_ratio_sequential": sat / seq,
        "sat_ratio_concurrent": sat / conc,
        "low_p50_ratio": srv["low_p50_ms"] / bs1,
        "low_p50_floor_ratio": srv["low_p50_ms"] / (bs1 + srv["grpc_floor_ms"]),
        "p99_half_ratio": srv["half_p99_ms"] / bs1,
    }


@contextlib.contextmanager
def _targets(targets: Sequence[str], metrics_port: int) -> Iterator[list[str]]:
    if targets:  # already running servers
        yield list(targets)
        return
    with running_server(args=("--metrics-port", str(metrics_port))) as port:
        yield [f"127.0.0.1:{port}"]


def run(kind: str = "classify", seconds: float = 4.0, metrics_port: int = 0,
        targets: Sequence[str] = (), workers: int = 1) -> dict[str, Any]:
    texts = sample_texts()
    raw = raw_limit(kind, texts, seconds / 2)
    with _targets(targets, metrics_port) as where:
        srv = served(kind, where, texts, seconds, workers)
    return {"bench": kind, "raw": raw, "server": srv, "grpc_floor_ms": srv["grpc_floor_ms"],
            **ratios(raw, srv)}


def parse_targets(value: str) -> list[str]:
    targets = [t.strip() for t in value.split(",") if t.strip()]
    for t in targets:
        host, _, port = t.rpartition(":")
        if not host or not port.isdigit():
            raise argparse.ArgumentTypeError(f"target {t!r} is not host:port")
    return targets


def _cmd(args: argparse.Namespace) -> int:
    result = run(args.bench_command, args.seconds, args.metrics_port, args.targets,
                 args.workers)
    print(json.dumps(result, default=float))
    return 0


def register(subparsers: Any) -> None:
    for kind in ("classify", "embed"):
        p = subparsers.add_parser(kind, help=f"served {kind} vs raw onnxruntime")
        p.add_argument("--seconds", type=float, default=4.0, help="per load level")
        p.add_argument("--metrics-port", type=int, default=0,
                       help="the server's metrics port (default 0 = metrics off)")
        p.add_argument("--targets", type=parse_targets, default=[],
                       help="host:port,host:port of running servers (load is spread over "
                            "them); default: start one server here")
        p.add_argument("--workers", type=int, default=1,
                       help="load generator processes (each its own channel per target)")
        p.set_defaults(func=_cmd)
