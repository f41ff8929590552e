"""`aftercare bench replicas`: Classify saturation against one server vs two replicas of
it on this machine, same config, same run.

Both replicas (`aftercare serve --port 0`, the same config) are started first and stay
up, so the only difference between the two measurements is where the load goes: all on
the first, or spread over both (request i to replica i mod 2, one channel per replica
per load worker). The two are measured alternately (`--rounds` times each) so a drift
of the shared machine hits both; each round's saturation is the best of the closed-loop
concurrencies (scaled by the number of replicas). Against servers elsewhere, use
`aftercare bench classify --targets host:port,host:port`. The last stdout line is one
JSON object with `two_vs_one`, the ratio of the median saturations.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
from collections.abc import Sequence
from typing import Any

from bench.classify import SHED, sample_texts
from bench.serverproc import server_process
from bench.workers import LoadWorkers

PER_REPLICA_CONCURRENCY = (32, 64)
METRICS_OFF = ("--metrics-port", "0")  # two replicas cannot share the default port


def saturation(lw: LoadWorkers, targets: int, seconds: float) -> dict[str, Any]:
    """Best closed-loop throughput with `targets` replicas' worth of callers."""
    results = [lw.closed("classify", c * targets, seconds, allowed=SHED)
               for c in PER_REPLICA_CONCURRENCY]
    best = max(results, key=lambda r: r.throughput)
    return {"throughput": best.throughput, "concurrency": best.level, "p99_ms": best.p99_ms,
            "codes": best.codes}


def scaling(one: Sequence[float], two: Sequence[float]) -> dict[str, float]:
    """Median saturation per arrangement and their ratio (two replicas over one)."""
    m1, m2 = statistics.median(one), statistics.median(two)
    return {"one_median": m1, "two_median": m2, "two_vs_one": m2 / m1 if m1 > 0 else 0.0}


def run(seconds: float = 3.0, rounds: int = 2, workers: int = 2) -> dict[str, Any]:
    texts = sample_texts()
    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(server_process(args=METRICS_OFF))[0] for _ in range(2)]
        targets = [f"127.0.0.1:{p}" for p in ports]
        one_lw = stack.enter_context(LoadWorkers(targets[:1], texts, workers))
        two_lw = stack.enter_context(LoadWorkers(targets, texts, workers))
        two_lw.closed("classify", 8, 1.0)  # warm both replicas and every channel
        one_lw.closed("classify", 4, 0.5)
        one, two = [], []
        for _ in range(rounds):
            one.append(saturation(one_lw, 1, seconds))
            two.append(saturation(two_lw, 2, seconds))
    return {"bench": "replicas", "targets": targets, "workers": workers,
            "one": one, "two": two,
            **scaling([r["throughput"] for r in one], [r["throughput"] for r in two])}


def _cmd(args: argparse.Namespace) -> int:
    print(json.dumps(run(args.seconds, args.rounds, args.workers), default=float))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("replicas", help="Classify saturation: one vs two replicas here")
    p.add_argument("--seconds", type=float, default=3.0, help="per load level")
    p.add_argument("--rounds", type=int, default=2, help="alternate measurements of each")
    p.add_argument("--workers", type=int, default=2, help="load generator processes")
    p.set_defaults(func=_cmd)
