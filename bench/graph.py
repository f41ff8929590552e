"""`aftercare bench graph`: the exact PageRank kernel vs igraph, and the local
forward-push kernel vs the exact one, on the demo shop graph.

Exact vs igraph: both sides walk the same undirected weighted graph (every edge of
the knowledge graph with its stored weight) from the same seed sets: each seed set is
one customer's purchased products weighted by purchase weight, the way the
recommender seeds. igraph runs `Graph.personalized_pagerank` (PRPACK, its default,
which solves to ~1e-10); the kernel runs SOR sweeps to an L1 change below `tol`. Setup
is untimed on both sides: `walk_graph` validates the kernel's arrays once (reported
as `walk_prepare_s`), and igraph's weights are read out of the edge attribute into a
list once (`igraph_weights_prepare_s`). What stays inside igraph's timed call is the
binding's conversion of that list to a C vector, which python-igraph does on every
call; `igraph_strength_ms` (a `Graph.strength` call with the same list: conversion
plus one pass over the edges) bounds it. Both are timed after a warm-up, interleaved
per seed set (igraph, kernel, igraph, ... `repeats` times) so that drift on a shared
machine hits both sides alike; each seed set gives the ratio of the median igraph time
to the median kernel time, and `speedup` is the median of those ratios
(`speedup_total` is the plain ratio of summed medians). Agreement is |kernel top-100
& igraph top-100| / 100 per seed set.

Local vs exact (`local`): the recommender's walk (its edge-type weights, damping and
push tolerance, `RecommendWeights`) from `local_seed_sets` customers' purchases:
forward push on the layout with customers folded into products (`eliminate_vertices`,
built once, `fold_customers_s`) vs the exact kernel on the whole graph at tol 1e-10,
timed interleaved the same way.
Agreement: top-20 products (seeds left out, as the recommender reads them) and top-20
vertices. `recommend_ms` is one whole `Recommender.recommend` call (all signals, the
untuned default mix) for the same customers.
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
from kernels.push import eliminate_vertices, local_pagerank

DEFAULT_CACHE = Path("var/bench")


def _shop(size: str, cache_dir: Path) -> Path:
    from server.demo.generate import generate

    path = cache_dir / f"demo-{size}"
    if not (path / "customers.csv").exists() and not (path / "customers.jsonl").exists():
        generate(path, size=size, seed=7)
    return path


def run(size: str = "L", seed_sets: int = 5, tol: float = 1e-9, damping: float = 0.85,
        cache_dir: Path = DEFAULT_CACHE, repeats: int = 3, local_seed_sets: int = 50,
        eps: float | None = None) -> dict[str, Any]:
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
    start = time.perf_counter()
    ig_weights = g.es["weight"]
    ig_weights_s = time.perf_counter() - start
    g.personalized_pagerank(reset=resets[0], weights=ig_weights, damping=damping)  # warm-up
    personalized_pagerank(walk, resets[0], damping=damping, tol=tol)
    strength_runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        g.strength(weights=ig_weights)
        strength_runs.append(time.perf_counter() - t0)
    ig_times, k_times, agreement, max_abs, sweeps = [], [], [], [], []
    for reset in resets:
        ig_runs, k_runs = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            want = np.array(g.personalized_pagerank(reset=reset, weights=ig_weights,
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
        "igraph_weights_prepare_s": round(ig_weights_s, 4),
        "igraph_strength_ms": round(1000 * float(np.median(strength_runs)), 2),
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
        "local": local_vs_exact(kg, local_seed_sets, repeats, eps),
    }


def _cmd(args: argparse.Namespace) -> int:
    result = run(size=args.size, seed_sets=args.seed_sets, tol=args.tol,
                 cache_dir=Path(args.cache_dir), repeats=args.repeats,
                 local_seed_sets=args.local_seed_sets, eps=args.eps)
    print(json.dumps(result))
    return 0


def register(subparsers: Any) -> None:
    """Add `graph` to the `aftercare bench` subcommands."""
    p = subparsers.add_parser(
        "graph", help="PageRank: exact kernel vs igraph, local push vs exact, demo shop graph")
    p.add_argument("--size", default="L", choices=["XS", "S", "M", "L"])
    p.add_argument("--seed-sets", type=int, default=5)
    p.add_argument("--tol", type=float, default=1e-9)
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved timings per seed set; the median of each side counts")
    p.add_argument("--local-seed-sets", type=int, default=50,
                   help="customers for the local-vs-exact comparison")
    p.add_argument("--eps", type=float,
                   help="relative push tolerance (default: the recommender's push_eps)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE),
                   help="where demo shops are generated once and reused")
    p.set_defaults(func=_cmd)


def _top(scores: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-scores, kind="stable")[:k].tolist())


def local_vs_exact(kg: Any, seed_sets: int, repeats: int, eps: float | None) -> dict[str, Any]:
    """Forward push vs the exact kernel on the recommender's walk (module docstring)."""
    from server.knowledge.graph.graph import EDGE_CODE
    from server.knowledge.recommend.recommender import (
        Recommender,
        RecommendWeights,
        push_tolerance,
    )

    w = RecommendWeights()
    relative = w.push_eps if eps is None else eps
    csr = kg.csr(w.edge_weights)
    walk = walk_graph(csr.indptr, csr.indices, csr.weights)
    start = time.perf_counter()
    customers_v = np.arange(kg.vertices("customer").start, kg.vertices("customer").stop)
    folded = eliminate_vertices(csr.indptr, csr.indices, csr.weights, customers_v, w.damping)
    fold_s = time.perf_counter() - start
    products = kg.vertices("product")
    eps = push_tolerance(folded, relative, products.start, len(products))
    bought = kg.edge_types == EDGE_CODE["bought"]
    rng = np.random.default_rng(11)
    customers = rng.choice(np.unique(kg.src[bought]), size=seed_sets, replace=False)
    exact_t, local_t, agree_products, agree_all, pushes, touched = [], [], [], [], [], []
    for c in customers:
        sel = bought & (kg.src == c)
        seeds, weights = kg.dst[sel], kg.weights[sel]
        reset = np.zeros(kg.n_vertices)
        np.add.at(reset, seeds, weights)
        ex_runs, lo_runs = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            exact, _ = personalized_pagerank(walk, reset, damping=w.damping, tol=1e-10)
            t1 = time.perf_counter()
            got = local_pagerank(folded, seeds, weights, damping=w.damping, eps=eps)
            t2 = time.perf_counter()
            ex_runs.append(t1 - t0)
            lo_runs.append(t2 - t1)
        exact_t.append(float(np.median(ex_runs)))
        local_t.append(float(np.median(lo_runs)))
        approx = np.zeros(kg.n_vertices)
        approx[got.vertices] = got.scores
        pushes.append(got.pushes)
        touched.append(got.vertices.size)
        agree_all.append(len(_top(exact, 20) & _top(approx, 20)) / 20)
        ex_p, ap_p = exact[products.start:products.stop], approx[products.start:products.stop]
        ex_p[seeds - products.start] = ap_p[seeds - products.start] = -1.0
        k = min(20, int((ex_p > 0).sum()))
        agree_products.append(len(_top(ex_p, k) & _top(ap_p, k)) / k if k else 1.0)
    rec = Recommender(kg, w)
    ids = kg.ids("customer")
    rec_t = []
    for c in customers:
        cid = ids[int(c) - kg.vertices("customer").start]
        rec.recommend(cid, (), 10)
        t0 = time.perf_counter()
        rec.recommend(cid, (), 10)
        rec_t.append(time.perf_counter() - t0)
    ratios = [e / lo for e, lo in zip(exact_t, local_t, strict=True)]
    return {
        "seed_sets": seed_sets,
        "damping": w.damping,
        "push_eps_relative": relative,
        "eps": eps,
        "fold_customers_s": round(fold_s, 3),
        "folded_edges": int(folded.indptr[-1]),
        "local_ms_p50": round(1000 * float(np.median(local_t)), 3),
        "local_ms_p95": round(1000 * float(np.percentile(local_t, 95)), 3),
        "exact_ms_p50": round(1000 * float(np.median(exact_t)), 2),
        "speedup_vs_exact": round(float(np.median(ratios)), 1),
        "top20_product_agreement": round(float(np.mean(agree_products)), 4),
        "top20_product_agreement_min": round(float(np.min(agree_products)), 4),
        "top20_vertex_agreement": round(float(np.mean(agree_all)), 4),
        "pushes_p50": int(np.median(pushes)),
        "touched_vertices_p50": int(np.median(touched)),
        "recommend_ms_p50": round(1000 * float(np.median(rec_t)), 3),
        "recommend_ms_p95": round(1000 * float(np.percentile(rec_t, 95)), 3),
    }
