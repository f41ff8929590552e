"""HnswIndex: upsert, delete, filters, partitions, resize, persistence, recall vs brute force."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from server.errors import InvalidInput
from server.knowledge.retrieval.partitions import PartitionPolicy
from server.knowledge.retrieval.vector_index import HnswIndex, HnswParams, VectorIndex

DIM = 32


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> NDArray[np.float32]:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _meta(i: int) -> dict[str, str | tuple[str, ...]]:
    categories = ("Electronics/Phones", "Electronics/Audio", "Home/Kitchen", "Home")
    return {
        "kind": "faq" if i % 5 == 0 else "article",
        "locale": "de" if i % 7 == 0 else "en",
        "categories": (categories[i % 4],),
        "product_ids": (f"SKU-{i % 10}", f"SKU-{i % 3 + 100}"),
    }


def _filled(n: int, seed: int = 0, **params: Any) -> tuple[HnswIndex, NDArray[np.float32]]:
    vectors = _unit(np.random.default_rng(seed), n)
    index = HnswIndex(DIM, HnswParams(**params))
    index.add([f"d{i}" for i in range(n)], vectors, [_meta(i) for i in range(n)])
    return index, vectors


def _exact_top(
    vectors: NDArray[np.float32], query: NDArray[np.float32], k: int, keep: list[int]
) -> list[str]:
    scores = vectors[keep] @ query
    return [f"d{keep[i]}" for i in np.argsort(-scores, kind="stable")[:k]]


def test_hnsw_index_satisfies_the_protocol() -> None:
    index: VectorIndex = HnswIndex(DIM)
    assert len(index) == 0 and index.dim == DIM


def test_search_returns_self_first_with_cosine_score() -> None:
    index, vectors = _filled(200)
    hits = index.search(vectors[:3], k=4)
    for i, row in enumerate(hits):
        assert row[0][0] == f"d{i}"
        assert row[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [s for _, s in row] == sorted((s for _, s in row), reverse=True)
    # Score is cosine: scaling the query changes nothing.
    again = index.search(vectors[0] * 7.5, k=4)[0]
    assert [h[0] for h in again] == [h[0] for h in hits[0]]
    other = index.search(vectors[0], k=2)[0][1]
    assert other[1] == pytest.approx(float(vectors[0] @ vectors[int(other[0][1:])]), abs=1e-5)


def test_recall_against_brute_force_on_a_small_random_set() -> None:
    index, vectors = _filled(2000, ef=64)
    queries = _unit(np.random.default_rng(1), 100)
    everyone = list(range(2000))
    hits = index.search(queries, k=10)
    found = sum(
        len({h[0] for h in row} & set(_exact_top(vectors, q, 10, everyone)))
        for row, q in zip(hits, queries, strict=True)
    )
    assert found / 1000 >= 0.95


def test_upsert_replaces_the_vector_and_metadata() -> None:
    index, vectors = _filled(300)
    target = -vectors[5]  # the direction no item points to
    assert index.search(target, k=1)[0][0][0] != "d5"
    index.add(["d5"], target[None, :], [{"kind": "guideline"}])
    assert len(index) == 300 and index.deleted == 1
    top = index.search(target, k=1)[0][0]
    assert top[0] == "d5" and top[1] == pytest.approx(1.0, abs=1e-5)
    # The old metadata is gone with the old vector.
    assert [h[0] for h in index.search(target, k=5, filters={"kind": "guideline"})[0]] == ["d5"]
    assert "d5" not in {h[0] for h in index.search(vectors[5], k=300, filters={"kind": "faq"})[0]}


def test_deleted_ids_are_never_returned() -> None:
    index, vectors = _filled(300)
    gone = {f"d{i}" for i in range(0, 300, 3)}
    assert index.delete([*gone, "missing"]) == len(gone)
    assert len(index) == 300 - len(gone)
    for row in index.search(vectors[:30], k=50):
        assert not gone & {h[0] for h in row}
    everything = index.search(vectors[0], k=300)[0]
    assert len(everything) == 200 and not gone & {h[0] for h in everything}
    assert index.delete(gone) == 0


def test_resize_beyond_initial_capacity() -> None:
    index = HnswIndex(DIM, HnswParams(initial_capacity=8))
    rng = np.random.default_rng(3)
    batches = [_unit(rng, 7) for _ in range(6)]
    for b, batch in enumerate(batches):
        index.add([f"b{b}-{i}" for i in range(7)], batch, [{"kind": "article"}] * 7)
    assert len(index) == 42
    for b, batch in enumerate(batches):
        assert [row[0][0] for row in index.search(batch, k=1)] == [f"b{b}-{i}" for i in range(7)]


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"kind": "faq"}, lambda i: i % 5 == 0),
        ({"locale": "de", "kind": "faq"}, lambda i: i % 35 == 0),  # 9 of 300: tiny
        ({"category": "Electronics"}, lambda i: i % 4 in (0, 1)),  # path prefix
        ({"category": "Electronics/Phones"}, lambda i: i % 4 == 0),
        ({"category": "Home"}, lambda i: i % 4 in (2, 3)),
        ({"category": "Elec"}, lambda i: False),  # a prefix of a word is not a path prefix
        ({"product_id": "SKU-3"}, lambda i: i % 10 == 3),
        ({"product_id": "SKU-101", "locale": "en"}, lambda i: i % 3 == 1 and i % 7 != 0),
    ],
)
def test_filters_return_only_and_all_best_matches(
    filters: dict[str, str], keep: Callable[[int], bool]
) -> None:
    index, vectors = _filled(300, exact_below=0)  # exact_below=0: always the graph callback
    allowed = [i for i in range(300) if keep(i)]
    queries = _unit(np.random.default_rng(5), 20)
    for row, q in zip(index.search(queries, k=10, filters=filters), queries, strict=True):
        assert [h[0] for h in row] == _exact_top(vectors, q, 10, allowed)


def test_filter_paths_agree_between_graph_and_exact_scan() -> None:
    graph, _ = _filled(500, exact_below=0)
    exact, _ = _filled(500, exact_below=10_000)
    queries = _unit(np.random.default_rng(6), 10)
    for filters in ({"kind": "faq"}, {"category": "Home/Kitchen", "locale": "en"}):
        a = graph.search(queries, k=7, filters=filters)
        b = exact.search(queries, k=7, filters=filters)
        assert [[h[0] for h in r] for r in a] == [[h[0] for h in r] for r in b]
        for ra, rb in zip(a, b, strict=True):
            assert [s for _, s in ra] == pytest.approx([s for _, s in rb], abs=1e-5)


def test_filters_after_deletes_and_bad_filters() -> None:
    index, vectors = _filled(100)
    index.delete([f"d{i}" for i in range(0, 100, 5)])  # every faq
    assert index.search(vectors[:2], k=5, filters={"kind": "faq"}) == [[], []]
    with pytest.raises(InvalidInput, match="unknown filter"):
        index.search(vectors[0], k=5, filters={"colour": "red"})
    with pytest.raises(InvalidInput):
        index.search(vectors[0], k=5, filters={"kind": ""})
    with pytest.raises(InvalidInput):
        index.search(vectors[0], k=0)
    with pytest.raises(InvalidInput):
        index.search(np.zeros(DIM, dtype=np.float32), k=1)
    with pytest.raises(InvalidInput):
        index.add(["x", "x"], _unit(np.random.default_rng(0), 2), [{}, {}])


def test_save_and_load_give_the_same_results(tmp_path: Path) -> None:
    index, vectors = _filled(400)
    index.add(["d1"], -vectors[1][None, :], [{"kind": "guideline"}])
    index.delete(["d2", "d3"])
    index.save(tmp_path)
    loaded = HnswIndex(DIM)
    loaded.load(tmp_path)
    assert len(loaded) == len(index) == 398 and loaded.deleted == 3
    queries = _unit(np.random.default_rng(9), 20)
    for filters in (None, {"kind": "guideline"}, {"category": "Electronics"}):
        assert loaded.search(queries, k=10, filters=filters) == index.search(
            queries, k=10, filters=filters
        )
    # The loaded index keeps working: new labels do not collide with saved ones.
    loaded.add(["new"], vectors[7][None, :] * -1, [{}])
    assert loaded.search(-vectors[7], k=1)[0][0][0] == "new"
    assert "d7" in loaded and "d2" not in loaded


def test_load_rejects_a_different_dimension(tmp_path: Path) -> None:
    index, _ = _filled(10)
    index.save(tmp_path)
    with pytest.raises(ValueError, match="does not match"):
        HnswIndex(DIM * 2).load(tmp_path)


class _ShortGraph:
    """Delegates to hnswlib but fails knn_query like a graph split by deletions does."""

    def __init__(self, graph: object) -> None:
        self._graph = graph

    def knn_query(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("Cannot return the results in a contiguous 2D array")

    def __getattr__(self, name: str) -> object:
        return getattr(self._graph, name)


def test_exact_fallback_when_the_graph_returns_too_few() -> None:
    index, vectors = _filled(300)
    expected = index.search(vectors[:5], k=6, filters={"category": "Home"})
    index._graph = _ShortGraph(index._graph)
    fallback = index.search(vectors[:5], k=6, filters={"category": "Home"})
    assert [[h[0] for h in r] for r in fallback] == [[h[0] for h in r] for r in expected]
    for got, want in zip(fallback, expected, strict=True):
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    unfiltered = index.search(vectors[:5], k=3)
    assert [r[0][0] for r in unfiltered] == [f"d{i}" for i in range(5)]


def test_breadth_is_per_query_and_set_ef_validates() -> None:
    index, vectors = _filled(500, ef=1, ef_filtered=1)
    queries = _unit(np.random.default_rng(11), 30)
    narrow = index.search(queries, k=10)
    assert all(len(row) == 10 for row in narrow)  # breadth is at least k
    index.set_ef(400, ef_filtered=400)
    assert index.params.ef == 400 and index.params.ef_filtered == 400
    wide = index.search(queries, k=10)
    everyone = list(range(500))
    for row, q in zip(wide, queries, strict=True):
        assert [h[0] for h in row] == _exact_top(vectors, q, 10, everyone)
    with pytest.raises(InvalidInput):
        index.set_ef(0)


@pytest.mark.parametrize("partitioned", [False, True])
def test_concurrent_searches_during_writes_see_only_live_items(partitioned: bool) -> None:
    index, vectors = _partitioned(n=400) if partitioned else _filled(400)
    assert bool(index.partition_keys()) == partitioned
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        rng = np.random.default_rng(threading.get_ident() % 1000)
        while not stop.is_set():
            try:
                for row in index.search(_unit(rng, 4), k=5, filters={"kind": "article"}):
                    assert len(row) == 5 and all(h[0] in index or h[0].startswith("d") for h in row)
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    rng = np.random.default_rng(12)
    for round_ in range(30):
        batch = [f"n{round_}-{i}" for i in range(20)]
        index.add(batch, _unit(rng, 20), [{"kind": "article"}] * 20)
        index.delete(batch[:10])
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(index) == 400 + 30 * 10 and index.deleted == 30 * 10
    survivors = index.search(vectors[:1], k=1000)[0]
    assert {h[0] for h in survivors} == set(index.ids())


# -- an index with partitions (shared with test_vector_partitions) ----------------------

N_PART = 600
WIDE = 1000  # breadth above the item count: graph walks become exact, so results compare


def _partitioned(
    n: int = N_PART, seed: int = 0, **policy: Any
) -> tuple[HnswIndex, NDArray[np.float32]]:
    settings = {"min_size": 40, "max_fraction": 0.9, "budget": 10.0, **policy}
    params = HnswParams(
        ef=WIDE,
        ef_filtered=WIDE,
        ef_partition=WIDE,
        exact_below=0,
        partitions=PartitionPolicy(**settings),
    )
    vectors = _unit(np.random.default_rng(seed), n)
    index = HnswIndex(DIM, params)
    index.add([f"d{i}" for i in range(n)], vectors, [_meta(i) for i in range(n)])
    return index, vectors


def test_exact_scan_rows_are_refreshed_after_writes() -> None:
    """Exact scans keep the rows of a filter between queries; a write must drop them."""
    index, vectors = _filled(300, exact_below=10_000)
    kind = _meta(0)["kind"]  # "faq": d0, d5, d10, ...
    query = vectors[7]  # an "article", so no faq matches it exactly
    first = index.search(query[None, :], 1, {"kind": kind})[0][0]
    assert first[1] < 0.99
    # Replace d0 with the query itself: it must now be the best match of that filter.
    index.add(["d0"], query[None, :], [_meta(0)])
    again = index.search(query[None, :], 1, {"kind": kind})[0][0]
    assert again[0] == "d0" and again[1] == pytest.approx(1.0, abs=1e-5)
    index.delete(["d0"])
    assert "d0" not in {i for i, _ in index.search(query[None, :], 5, {"kind": kind})[0]}
