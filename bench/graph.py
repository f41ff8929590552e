"""`aftercare bench graph`: the personalized PageRank kernel vs igraph on the demo shop graph.

Both sides walk the same undirected weighted graph (every edge of the knowledge graph
with its stored weight) from the same seed sets: each seed set is one customer's
purchased products weighted by purchase weight, the way the recommender seeds. igraph
runs `Graph.personalized_pagerank` (PRPACK, its default, which solves to ~1e-10); the
kernel runs SOR sweeps to an L1 change below `tol` on arrays validated once per graph
by `walk_graph` (that one-off cost is reported separately, as is the graph build).
Both are timed after a warm-up, interleaved per seed set (igraph, kernel, igraph, ...
`repeats` times) so that drift on a shared machine hits both sides alike; each seed set
gives the ratio of the median igraph time to the median kernel time, and `speedup` is
the median of those ratios (`speedup_total` is the plain ratio of summed medians).
Agreement is |kernel top-100 & igraph top-100| / 100 per seed set.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from kernels import warmup
from kernels.pagerank import personalized_pagerank, walk_graph

DEFAULT_CACHE = Path("var/bench")


def _shop(size: str, cache_dir: Path) -> Path:
    from server.demo.generate import generate

    path = cache_dir / f"demo-{size}"
    if not (path / "customers.csv").exists() and not (path / "customers.jsonl").exists():
        generate(path, size=size, seed=7)
    return path


def run(size: str = "L", seed_sets: int = 5, tol: float = 1e-9, damping: float = 0.85,
        cache_dir: Path = DEFAULT_CACHE, repeats: int = 3) -> dict[str, Any]:
    from server.knowledge.graph.graph import EDGE_CODE, KnowledgeGraph
    from server.knowledge.shop.ingest import ingest_dir

    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    start = time.perf_counter()
    snapshot = ingest_dir(_shop(size, cache_dir)).snapshot
    ingest_s = time.perf_counter() - start
    kg = KnowledgeGraph.build(snapshot)
    start = time.perf_counter()
    csr = kg.csr()
    csr_s = time.perf_counter() - start
    warmup()
    start = time.perf_counter()
    walk = walk_graph(csr.indptr, csr.indices, csr.weights)
    prepare_s = time.perf_counter() - start

    # Seeds: random customers' purchases weighted like their bought edges.
    bought = kg.edge_types == EDGE_CODE["bought"]
    rng = np.random.default_rng(7)
    customers = rng.choice(np.unique(kg.src[bought]), size=seed_sets, replace=False)
    resets = []
    for c in customers:
        sel = bought & (kg.src == c)
        reset = np.zeros(kg.n_vertices)
        np.add.at(reset, kg.dst[sel], kg.weights[sel])
        resets.append(reset)

    g = kg.graph
    g.personalized_pagerank(reset=resets[0], weights="weight", damping=damping)  # warm-up
    personalized_pagerank(walk, resets[0], damping=damping, tol=tol)
    ig_times, k_times, agreement, max_abs, sweeps = [], [], [], [], []
    for reset in resets:
        ig_runs, k_runs = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            want = np.array(g.personalized_pagerank(reset=reset, weights="weight",
                                                    damping=damping))
            t1 = time.perf_counter()
            got, iters = personalized_pagerank(walk, reset, damping=damping, tol=tol)
            t2 = time.perf_counter()
            ig_runs.append(t1 - t0)
            k_runs.append(t2 - t1)
        ig_times.append(float(np.median(ig_runs)))
        k_times.append(float(np.median(k_runs)))
        sweeps.append(iters)
        top_want = set(np.argsort(-want, kind="stable")[:100].tolist())
        top_got = set(np.argsort(-got, kind="stable")[:100].tolist())
        agreement.append(len(top_want & top_got) / 100.0)
        max_abs.append(float(np.abs(got - want).max()))
    ratios = [i / k for i, k in zip(ig_times, k_times, strict=True)]
    return {
        "size": size,
        "vertices": kg.n_vertices,
        "edges": kg.n_edges,
        "seed_sets": seed_sets,
        "tol": tol,
        "damping": damping,
        "ingest_s": round(ingest_s, 3),
        "graph_build_s": round(kg.build_seconds, 3),
        "csr_export_s": round(csr_s, 3),
        "walk_prepare_s": round(prepare_s, 4),
        "kernel_weights": str(walk.weights.dtype),
        "igraph_ms": round(1000 * float(np.mean(ig_times)), 2),
        "kernel_ms": round(1000 * float(np.mean(k_times)), 2),
        "kernel_sweeps": int(np.mean(sweeps)),
        "speedup": round(float(np.median(ratios)), 2),
        "speedup_min": round(min(ratios), 2),
        "speedup_total": round(sum(ig_times) / sum(k_times), 2),
        "repeats": repeats,
        "top100_agreement": round(float(np.mean(agreement)), 4),
        "max_abs_diff": float(max(max_abs)),
    }


def _cmd(args: argparse.Namespace) -> int:
    result = run(size=args.size, seed_sets=args.seed_sets, tol=args.tol,
                 cache_dir=Path(args.cache_dir), repeats=args.repeats)
    print(json.dumps(result))
    return 0


def register(subparsers: Any) -> None:
    """Add `graph` to the `aftercare bench` subcommands."""
    p = subparsers.add_parser("graph", help="PageRank kernel vs igraph on the demo shop graph")
    p.add_argument("--size", default="L", choices=["XS", "S", "M", "L"])
    p.add_argument("--seed-sets", type=int, default=5)
    p.add_argument("--tol", type=float, default=1e-9)
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved timings per seed set; the median of each side counts")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE),
                   help="where demo shops are generated once and reused")
    p.set_defaults(func=_cmd)
