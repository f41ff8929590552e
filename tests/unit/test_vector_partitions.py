"""Per-filter partitions of HnswIndex: policy, exactness against brute force and the
callback path, multi-filter routing, deletes/upserts, compaction, persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from numpy.typing import NDArray

from server.knowledge.retrieval.vector_index import HnswIndex
from tests.unit.test_vector_index import DIM, N_PART, _exact_top, _meta, _partitioned, _unit


def _keep(filters: dict[str, str], meta: dict[str, Any]) -> bool:
    """Naive filter semantics, independent of the index's postings."""
    for key, want in filters.items():
        field = {"category": "categories", "product_id": "product_ids"}.get(key, key)
        raw = meta.get(field)
        values = [] if raw is None else [raw] if isinstance(raw, str) else list(raw)
        if key == "category":
            values = ["/".join(v.split("/")[:d]) for v in values for d in range(1, 4)]
        if want not in values:
            return False
    return True


def _ids(hits: list[list[tuple[str, float]]]) -> list[list[str]]:
    return [[h[0] for h in row] for row in hits]


def test_partitions_follow_the_policy() -> None:
    index, _ = _partitioned(category_depth=1)
    assert index.partition_keys() == [
        ("category", "Electronics"),
        ("category", "Home"),
        ("kind", "article"),
        ("kind", "faq"),
        ("locale", "de"),
        ("locale", "en"),
    ]  # product_id is not a partitioned key; depth 1 leaves out "Electronics/Phones"
    deep, _ = _partitioned(category_depth=2, keys=("category",))
    assert {v for _, v in deep.partition_keys()} == {
        "Electronics",
        "Home",
        "Electronics/Phones",
        "Electronics/Audio",
        "Home/Kitchen",
    }
    # Sizes: de 86, faq 120, three subcategories 150 each, top categories 300 each.
    small, _ = _partitioned(min_size=100, max_fraction=0.5, keys=("kind", "locale"))
    assert small.partition_keys() == [("kind", "faq")]  # de < 100, article/en > 50%
    budget, _ = _partitioned(budget=0.6)  # 360 items: 86 + 120 + 150, smallest first
    assert budget.partition_keys() == [
        ("category", "Electronics/Audio"),
        ("kind", "faq"),
        ("locale", "de"),
    ]
    stats = budget.partition_stats()
    assert (stats.partitions, stats.slots, stats.deleted) == (3, 356, 0)
    assert stats.bytes > 356 * DIM * 4
    assert HnswIndex(DIM).partition_stats().partitions == 0


@pytest.mark.parametrize(
    "filters",
    [
        {"kind": "faq"},
        {"locale": "en"},
        {"category": "Electronics"},
        {"category": "Home/Kitchen"},
        {"kind": "faq", "locale": "de"},  # smallest partition (de) plus a callback for kind
        {"category": "Electronics", "product_id": "SKU-3"},  # unpartitioned key on top
        {"category": "Electronics/Phones", "kind": "article", "locale": "en"},
        {"product_id": "SKU-101"},  # no partition at all: main graph and callback
    ],
)
def test_partition_results_equal_brute_force_and_the_callback_path(
    filters: dict[str, str],
) -> None:
    index, vectors = _partitioned()
    exact, _ = _partitioned()
    exact.set_partition_routing(False)
    keep = [i for i in range(N_PART) if _keep(filters, _meta(i))]
    assert keep  # the case is not vacuous
    queries = _unit(np.random.default_rng(5), 12)
    got = index.search(queries, k=10, filters=filters)
    callback = exact.search(queries, k=10, filters=filters)
    assert _ids(got) == _ids(callback)
    for row, q in zip(got, queries, strict=True):
        assert [h[0] for h in row] == _exact_top(vectors, q, 10, keep)
        want = np.sort(vectors[keep] @ q)[::-1][:10]
        assert [s for _, s in row] == pytest.approx(want.tolist(), abs=1e-5)


def test_single_partitioned_filter_walks_the_partition_without_a_callback() -> None:
    index, _ = _partitioned()
    route = index._route({"kind": "faq"})
    assert route.check is None and route.graph is not index._graph
    both = index._route({"kind": "faq", "locale": "de"})
    assert both.check is not None and both.graph is index._route({"locale": "de"}).graph
    index.set_partition_routing(False)
    assert index._route({"kind": "faq"}).graph is index._graph


def test_deletes_and_upserts_reach_the_partitions() -> None:
    index, vectors = _partitioned()
    faq = [i for i in range(N_PART) if i % 5 == 0]
    gone = faq[::3]
    index.delete([f"d{i}" for i in gone])
    live_faq = [i for i in faq if i not in gone]
    queries = _unit(np.random.default_rng(7), 10)
    for row, q in zip(index.search(queries, k=10, filters={"kind": "faq"}), queries, strict=True):
        assert [h[0] for h in row] == _exact_top(vectors, q, 10, live_faq)
    # Upsert d1 (an article in Electronics/Audio) as a faq in Home: it moves partitions.
    index.add(["d1"], vectors[1][None, :], [{"kind": "faq", "categories": ("Home",)}])
    assert index.search(vectors[1], k=1, filters={"kind": "faq"})[0][0][0] == "d1"
    assert index.search(vectors[1], k=1, filters={"category": "Home"})[0][0][0] == "d1"
    for filters in ({"kind": "article"}, {"category": "Electronics/Audio"}):
        assert "d1" not in {h[0] for h in index.search(vectors[1], k=50, filters=filters)[0]}
    # A deleted item leaves a marked slot in each partition it was in; d1 was in four.
    parts = index.partition_keys()
    assert len(parts) == 9
    marked = sum(_keep({k: v}, _meta(i)) for i in gone for k, v in parts)
    assert index.partition_stats().deleted == marked + 4


def test_partitions_compact_and_drop_as_items_go() -> None:
    index, vectors = _partitioned(keys=("kind",))
    faq = [i for i in range(N_PART) if i % 5 == 0]  # 120 items
    index.delete([f"d{i}" for i in faq[:65]])  # 65 deleted > 55 live: rebuilt compactly
    assert ("kind", "faq") in index.partition_keys()
    assert index.partition_stats().deleted == 0
    survivors = faq[65:]
    q = vectors[faq[70]]
    assert _ids(index.search(q, k=5, filters={"kind": "faq"}))[0] == _exact_top(
        vectors, q, 5, survivors
    )
    index.delete([f"d{i}" for i in faq[65:105]])  # 15 left < min_size // 2: dropped
    assert index.partition_keys() == [("kind", "article")]
    assert len(index.search(q, k=50, filters={"kind": "faq"})[0]) == 15


def test_partitions_grow_with_adds() -> None:
    index, vectors = _partitioned(keys=("kind",))
    capacity = index.partition_stats().bytes
    more = _unit(np.random.default_rng(8), 300)
    index.add([f"m{i}" for i in range(300)], more, [{"kind": "faq"}] * 300)
    assert index.partition_stats().bytes > capacity  # the faq graph was resized
    everyone = np.concatenate([vectors, more])
    faq = [i for i in range(N_PART) if i % 5 == 0] + list(range(N_PART, N_PART + 300))
    queries = _unit(np.random.default_rng(9), 10)
    for row, q in zip(index.search(queries, k=10, filters={"kind": "faq"}), queries, strict=True):
        want = [f"d{i}" if i < N_PART else f"m{i - N_PART}" for i in _top(everyone, q, 10, faq)]
        assert [h[0] for h in row] == want


def _top(
    vectors: NDArray[np.float32], query: NDArray[np.float32], k: int, keep: list[int]
) -> list[int]:
    scores = vectors[keep] @ query
    return [keep[i] for i in np.argsort(-scores, kind="stable")[:k]]


def test_shared_category_prefix_is_one_posting() -> None:
    index, vectors = _partitioned(n=100, min_size=10)
    two = {"categories": ("Electronics/Phones", "Electronics/Audio"), "kind": "faq"}
    index.add(["both"], -vectors[0][None, :], [two])
    hits = index.search(-vectors[0], k=200, filters={"category": "Electronics"})[0]
    assert [h[0] for h in hits].count("both") == 1
    assert index.delete(["both"]) == 1  # once per posting, not once per path
    assert "both" not in {h[0] for h in index.search(-vectors[0], k=5)[0]}


def test_partitions_survive_save_and_load(tmp_path: Path) -> None:
    index, vectors = _partitioned()
    index.add(["d1"], -vectors[1][None, :], [{"kind": "faq", "locale": "en"}])
    index.delete(["d5", "d10"])
    index.save(tmp_path)
    loaded, _ = _partitioned(n=0)
    loaded.load(tmp_path)
    assert loaded.partition_keys() == index.partition_keys()
    assert loaded.partition_stats().slots == index.partition_stats().slots
    assert loaded.partition_stats().build_seconds == 0.0  # read from disk, not rebuilt
    queries = _unit(np.random.default_rng(9), 8)
    for filters in ({"kind": "faq"}, {"category": "Home"}, {"kind": "faq", "locale": "en"}):
        assert loaded.search(queries, k=10, filters=filters) == index.search(
            queries, k=10, filters=filters
        )
    # A smaller partition set replaces the files of the larger one.
    index.delete([f"d{i}" for i in range(N_PART) if i % 7 == 0])  # locale "de" gone
    index.save(tmp_path)
    files = sorted(p.name for p in tmp_path.glob("partition-*.bin"))
    assert len(files) == len(index.partition_keys()) == 8


def test_load_rebuilds_partitions_it_cannot_reuse(tmp_path: Path) -> None:
    index, _ = _partitioned()
    index.save(tmp_path)
    queries = _unit(np.random.default_rng(10), 5)
    want = index.search(queries, k=10, filters={"category": "Electronics"})

    def reloaded(**policy: Any) -> HnswIndex:
        fresh, _ = _partitioned(n=0, **policy)
        fresh.load(tmp_path)
        assert fresh.search(queries, k=10, filters={"category": "Electronics"}) == want
        return fresh

    assert len(reloaded(keys=("category",)).partition_keys()) == 5  # another policy
    state_path = tmp_path / "ids.msgpack"
    state = msgspec.msgpack.decode(state_path.read_bytes())
    (tmp_path / state["partitions"][0]["file"]).write_bytes(b"broken")
    assert reloaded().partition_stats().build_seconds > 0  # an unreadable file
    # A format-1 state (before partitions) still loads; its partitions are built.
    old = {k: v for k, v in state.items() if k not in ("partitions", "partition_policy")}
    state_path.write_bytes(msgspec.msgpack.encode({**old, "format": 1}))
    assert reloaded().partition_keys() == index.partition_keys()
