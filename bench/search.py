"""`aftercare bench search`: HnswIndex recall@10 and speed against exact numpy search.

Data: `n` 384-d unit vectors from a two-level gaussian mixture (a few dozen topics,
a few hundred clusters around them, cluster sizes log-normal, per-cluster spread
varied so a point's cosine to its cluster centre ranges ~0.55-0.85), plus held-out
queries from the same mixture. One categorical attribute, independent of the
clusters (the hard case for filtered graph search), selects ~15% of the items.

Two query sets are drawn: `tune` queries pick ef (the smallest meeting the recall
target, separately per path) and only the held-out `test` queries are reported, so
the recall shown is not the one ef was fitted to.

Both sides answer the same batches (`batch` queries per call, every test query once
per pass): HnswIndex.search (the server's code path: normalization, lock, filter
routing, id mapping; hnswlib walks each batch on `query_threads` threads, the server's
setting) against the exact limit, `batch @ matrix.T` as one BLAS matrix product
(numpy's BLAS threads) + argpartition; the filtered baseline scores only the matching
rows, gathered once up front (its best case). `--batch 1` measures single requests
(a matrix-vector product against one hnsw walk). Each side's QPS is the best of three
passes. The filtered hnsw query goes to the category's partition graph; the same
query through the main graph's filter callback (partition routing off) is reported
alongside. Ground truth is exact. Partition memory is hnswlib's element storage,
next to the main graph's. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from server.knowledge.retrieval.partitions import graph_bytes
from server.knowledge.retrieval.vector_index import HnswIndex, HnswParams

CATEGORIES = ("Electronics", "Home", "Fashion", "Toys", "Garden", "Sports", "Books")
# Electronics is the filtered category: ~15% of the items. Every category is above the
# partition threshold, so all seven get a partition graph (~1x the main graph's items).
CATEGORY_WEIGHTS = (0.15, 0.2, 0.2, 0.15, 0.1, 0.1, 0.1)
FILTER = {"category": "Electronics"}
K = 10


def make_data(
    n: int, n_queries: int, dim: int, clusters: int, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64]]:
    """Base vectors, held-out queries and each base vector's category index."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((max(clusters // 10, 1), dim)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    owner = rng.integers(0, len(topics), clusters)
    centers = topics[owner] + 0.8 / np.sqrt(dim) * rng.standard_normal((clusters, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    weights = rng.lognormal(0.0, 1.0, clusters)
    weights /= weights.sum()
    spread = rng.uniform(0.6, 1.4, clusters) / np.sqrt(dim)  # noise norm 0.6-1.4 x centre

    def draw(count: int) -> NDArray[np.float32]:
        which = rng.choice(clusters, size=count, p=weights)
        out = np.empty((count, dim), dtype=np.float32)
        for start in range(0, count, 20_000):  # bounded float64 temporaries
            part = which[start : start + 20_000]
            noise = rng.standard_normal((len(part), dim)) * spread[part, None]
            out[start : start + len(part)] = centers[part] + noise
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    base, queries = draw(n), draw(n_queries)
    category = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_WEIGHTS)
    return base, queries, category.astype(np.int64)


def exact_top(base: NDArray[np.float32], queries: NDArray[np.float32], k: int) -> NDArray[np.int64]:
    """Row indices of the k best base vectors for each query, best first."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 256):
        scores = queries[start : start + 256] @ base.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out[start : start + 256] = np.take_along_axis(top, order, axis=1)
    return out


def _brute(matrix: NDArray[np.float32], batch: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    """Exact top-k rows for a batch of queries: one matrix product, then argpartition."""
    scores = batch @ matrix.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def _timed(fn: Callable[[NDArray[np.float32]], list[Any]], queries: NDArray[np.float32],
           batch: int, repeat: int = 3) -> tuple[list[Any], float]:
    """Results of fn over the queries in batches, and queries per second of the fastest
    of `repeat` passes (best-of-n as timeit does, for every side alike: on a shared
    machine a slow pass measures the neighbours, not the code)."""
    best = 0.0
    results: list[Any] = []
    for _ in range(repeat):
        started = time.perf_counter()
        results = []
        for start in range(0, len(queries), batch):
            results.extend(fn(queries[start : start + batch]))
        best = max(best, len(queries) / (time.perf_counter() - started))
    return results, best


def _pick(sweep: list[dict[str, float]], key: str, target: float) -> dict[str, float]:
    """The first (smallest-ef) sweep point reaching the target, else the best one."""
    return next((s for s in sweep if s[key] >= target), max(sweep, key=lambda s: s[key]))


def _recall(found: list[set[int]], truth: NDArray[np.int64]) -> float:
    return sum(len(f & set(t.tolist())) for f, t in zip(found, truth, strict=True)) / truth.size


def run(
    n: int = 100_000,
    dim: int = 384,
    queries: int = 500,
    clusters: int = 300,
    M: int = 16,
    ef_construction: int = 200,
    efs: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128, 192),
    target_recall: float = 0.99,
    seed: int = 0,
    batch: int = 64,
) -> dict[str, Any]:
    """Build, sweep ef on the tuning queries, report the test queries (module docstring)."""
    base, both, category = make_data(n, 2 * queries, dim, clusters, seed)
    tune_qs, test_qs = both[:queries], both[queries:]
    allowed_rows = np.flatnonzero(category == 0)
    truth = {"tune": exact_top(base, tune_qs, K), "test": exact_top(base, test_qs, K)}
    truth_filtered = {name: allowed_rows[exact_top(base[allowed_rows], qs, K)]
                      for name, qs in (("tune", tune_qs), ("test", test_qs))}

    index = HnswIndex(
        dim, HnswParams(M=M, ef_construction=ef_construction, initial_capacity=n, exact_below=0)
    )
    ids = [str(i) for i in range(n)]
    meta = [{"categories": (CATEGORIES[c],)} for c in category.tolist()]
    started = time.perf_counter()
    index.add(ids, base, meta)
    build_s = time.perf_counter() - started
    parts = index.partition_stats()

    sub = np.ascontiguousarray(base[allowed_rows])
    bf, bf_qps = _timed(lambda b: list(_brute(base, b, K)), test_qs, batch)
    bff, bff_qps = _timed(lambda b: list(allowed_rows[_brute(sub, b, K)]), test_qs, batch)
    for got, want in ((bf, truth["test"]), (bff, truth_filtered["test"])):
        if _recall([set(r.tolist()) for r in got], want) < 0.999:  # float ties at most
            raise RuntimeError("the brute-force baseline disagrees with the ground truth")

    def hnsw(ef: int, filters: dict[str, str] | None, partitions: bool = True,
             split: str = "tune") -> tuple[float, float]:
        index.set_ef(ef, ef_filtered=ef, ef_partition=ef)
        index.set_partition_routing(partitions)
        qs = tune_qs if split == "tune" else test_qs
        hits, qps = _timed(lambda b: index.search(b, K, filters), qs, batch)
        found = [{int(h[0]) for h in row} for row in hits]
        return _recall(found, (truth_filtered if filters else truth)[split]), qps

    sweep: list[dict[str, float]] = []
    for ef in efs:
        recall, qps = hnsw(ef, None)
        f_recall, f_qps = hnsw(ef, FILTER)
        c_recall, c_qps = hnsw(ef, FILTER, partitions=False)
        sweep.append({"ef": ef, "recall": recall, "filtered_recall": f_recall,
                      "callback_recall": c_recall})
        print(
            f"tune ef={ef:4d}  recall@10={recall:.4f}  partition recall@10={f_recall:.4f}  "
            f"callback recall@10={c_recall:.4f}",
            flush=True,
        )
    # The smallest ef meeting the target on the tuning queries, separately per path.
    ef_plain = int(_pick(sweep, "recall", target_recall)["ef"])
    ef_part = int(_pick(sweep, "filtered_recall", target_recall)["ef"])
    ef_cb = int(_pick(sweep, "callback_recall", target_recall)["ef"])
    recall, qps = hnsw(ef_plain, None, split="test")
    f_recall, f_qps = hnsw(ef_part, FILTER, split="test")
    c_recall, c_qps = hnsw(ef_cb, FILTER, partitions=False, split="test")
    return {
        "recall_at_10": round(recall, 4),
        "qps_ratio": round(qps / bf_qps, 1),
        "filtered_recall_at_10": round(f_recall, 4),
        "filtered_qps_ratio": round(f_qps / bff_qps, 1),
        "callback_filtered_recall_at_10": round(c_recall, 4),
        "callback_filtered_qps_ratio": round(c_qps / bff_qps, 1),
        "hnsw_qps": round(qps),
        "brute_qps": round(bf_qps, 1),
        "filtered_hnsw_qps": round(f_qps),
        "filtered_brute_qps": round(bff_qps, 1),
        "filter_fraction": round(len(allowed_rows) / n, 4),
        "batch": batch,
        "hnsw_query_threads": index.params.query_threads,
        "params": {"M": M, "ef_construction": ef_construction, "ef": ef_plain,
                   "ef_partition": ef_part, "ef_filtered": ef_cb},
        "target_met": recall >= target_recall and f_recall >= target_recall,
        "build_s": round(build_s, 1),
        "partition_build_s": round(parts.build_seconds, 1),
        "partitions": parts.partitions,
        "partition_items": parts.slots,
        "partition_mb": round(parts.bytes / 2**20, 1),
        "main_graph_mb": round(graph_bytes(dim, M, n) / 2**20, 1),
        "n": n,
        "dim": dim,
        "queries": {"tune": queries, "test": queries},
        "clusters": clusters,
        "tune_sweep": [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()} for s in sweep
        ],
    }


def _main(args: argparse.Namespace) -> int:
    result = run(
        n=args.n,
        dim=args.dim,
        queries=args.queries,
        clusters=args.clusters,
        M=args.M,
        ef_construction=args.ef_construction,
        efs=tuple(int(e) for e in args.ef.split(",")),
        seed=args.seed,
        batch=args.batch,
    )
    print(json.dumps(result))
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `search` subcommand; its handler is `args.func(args) -> exit code`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "search", help="hnswlib recall@10 and QPS against exact numpy search"
    )
    parser.add_argument("--n", type=int, default=100_000, help="indexed vectors")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500,
                        help="queries per set (one set tunes ef, a held-out one is reported)")
    parser.add_argument("--batch", type=int, default=64,
                        help="queries per call on both sides (1 = single requests)")
    parser.add_argument("--clusters", type=int, default=300, help="gaussian clusters")
    parser.add_argument("--M", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", default="16,24,32,48,64,96,128,192", help="ef values to sweep")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=_main)
    return parser
