"""The vector index behind retrieval: a small `VectorIndex` interface and its hnswlib default.

`HnswIndex` keeps L2-normalized float32 vectors in an hnswlib graph (space "ip", so
score = inner product = cosine). String ids map to integer labels; an upsert marks
the old label deleted and inserts under a fresh one, a delete marks it deleted, and
the graph grows with `resize_index` - nothing is rebuilt.

Metadata filters apply during the graph search, never by over-fetching and dropping.
A filter is resolved to its allowed labels from per-(key, value) posting sets, then
routed: few labels -> exact scan; a frequent low-cardinality value (kind, locale,
category, ...) -> that value's own small graph (see vector_partitions), walked with no
predicate, or with one for the remaining filters; anything else -> the main graph with
hnswlib's `filter` callback.

Thread safety: hnswlib allows concurrent `knn_query` calls but not a query during
`add_items`/`mark_deleted`/`resize_index`, so searches share a read lock and writes
take it exclusively.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import hnswlib
import msgspec
import numpy as np
from numpy.typing import NDArray

from server.errors import InvalidInput
from server.knowledge.retrieval.partitions import (
    FILTER_FIELDS,
    FilterPartitions,
    Key,
    MetaValue,
    PartitionFile,
    PartitionPolicy,
    PartitionStats,
    VectorsOf,
    check_filters,
    filter_keys,
    move_into_place,
    new_graph,
    vectors_from,
)
from server.knowledge.retrieval.rwlock import ReadWriteLock

_INDEX_FILE = "hnsw.bin"
_STATE_FILE = "ids.msgpack"
_FORMAT = 2  # 2 added partitions; a format-1 state loads and its partitions are rebuilt
_EMPTY: frozenset[int] = frozenset()

Hits = list[list[tuple[str, float]]]


class VectorIndex(Protocol):
    """What retrieval needs from a vector store; hnswlib is the embedded default."""

    @property
    def dim(self) -> int: ...

    def add(
        self,
        ids: Sequence[str],
        vectors: NDArray[np.float32],
        metadata: Sequence[Mapping[str, MetaValue]],
    ) -> None:
        """Insert or replace (same id) items."""

    def delete(self, ids: Iterable[str]) -> int:
        """Remove items; unknown ids are ignored. Returns how many were removed."""

    def search(
        self, vectors: NDArray[np.float32], k: int, filters: Mapping[str, str] | None = None
    ) -> Hits:
        """For each row of `vectors`, up to k (id, score) pairs, best first."""

    def save(self, directory: Path) -> None: ...

    def load(self, directory: Path) -> None: ...

    def __len__(self) -> int: ...

    def __contains__(self, item_id: object) -> bool: ...


class HnswParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    M: int = 16
    ef_construction: int = 200
    # Query-time breadth (candidate list size), not part of the saved graph. A filtered
    # walk goes on until it holds `ef` *matching* items, so it explores more per unit
    # of ef and needs a smaller one for the same recall. A partition's graph is a fraction
    # of the whole, so a smaller breadth reaches the recall `ef` reaches on the whole.
    ef: int = 128
    ef_filtered: int = 32
    ef_partition: int = 64
    initial_capacity: int = 1024
    build_threads: int = -1  # add_items threads (-1: all cores)
    query_threads: int = 1  # knn_query threads per call; the server parallelizes across calls
    # When a filter allows at most this many items, score them exactly instead: the graph
    # walk would visit most of the index to collect them anyway.
    exact_below: int = 2048  # up to a partition's minimum size: no callback walks below
    seed: int = 100
    partitions: PartitionPolicy = msgspec.field(default_factory=PartitionPolicy)


class _State(msgspec.Struct):
    """The part of the index that hnswlib does not store: ids, metadata, counters."""

    format: int
    dim: int
    M: int
    ef_construction: int
    next_label: int
    capacity: int
    deleted: int
    labels: list[int]
    ids: list[str]
    metadata: list[dict[str, str | list[str]]]
    partition_policy: PartitionPolicy | None = None
    partitions: list[PartitionFile] = msgspec.field(default_factory=list)


class _Route(NamedTuple):
    """How one filter combination is answered; cached until the next write."""

    graph: hnswlib.Index | None  # None: exact scan
    allowed: frozenset[int] | None  # None: every live item
    check: Callable[[int], bool] | None  # hnswlib's filter; None: an unfiltered walk
    ef: int


def normalize_rows(vectors: NDArray[np.floating], dim: int) -> NDArray[np.float32]:
    """Rows as a C-contiguous float32 [n, dim] array of unit length."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.shape == (dim,):
        # One query, the hot path: a dot and Python floats beat numpy's reductions here.
        sq = float(arr @ arr)
        if not 0.0 < sq < math.inf:  # also False for NaN
            raise InvalidInput("vectors must be finite and non-zero")
        return (arr / np.float32(math.sqrt(sq)))[None, :]
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InvalidInput(f"vectors must have shape [n, {dim}], got {list(np.shape(vectors))}")
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))[:, None]
    if not np.isfinite(norms).all() or not norms.all():
        raise InvalidInput("vectors must be finite and non-zero")
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


class HnswIndex:
    """hnswlib HNSW graph with string ids, upsert/delete, filters and persistence."""

    def __init__(self, dim: int, params: HnswParams | None = None) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self._dim = dim
        self.params = params or HnswParams()
        self._lock = ReadWriteLock()
        self._use_partitions = True
        self._reset(self.params.initial_capacity)

    def _reset(self, capacity: int) -> None:
        p = self.params
        self._graph = new_graph(self._dim, capacity, p.M, p.ef_construction, p.seed)
        self._parts = FilterPartitions(
            self._dim,
            p.partitions,
            ef_construction=p.ef_construction,
            seed=p.seed,
            threads=p.build_threads,
        )
        self._label_of: dict[str, int] = {}
        self._id_of: list[str] = []  # by label; "" for a deleted one (a list: hot-path lookup)
        self._meta: dict[int, dict[str, str | list[str]]] = {}
        self._postings: dict[Key, set[int]] = {}
        self._partitionable: set[Key] = set()  # posting keys the partition policy covers
        self._routes: dict[tuple[Key, ...], _Route] = {}
        # Vectors of small allowed sets, for exact scans; cleared with the routes.
        self._exact_rows: dict[frozenset[int], tuple[NDArray[np.int64], NDArray[np.float32]]] = {}
        self._next_label = 0
        self._deleted = 0

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def deleted(self) -> int:
        """Marked-deleted slots still in the graph (they cost memory and walk time)."""
        return self._deleted

    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._label_of

    def ids(self) -> list[str]:
        return list(self._label_of)

    def set_ef(
        self, ef: int, ef_filtered: int | None = None, ef_partition: int | None = None
    ) -> None:
        """Change the query-time breadths (recall against speed); no rebuild needed."""
        ef_filtered = self.params.ef_filtered if ef_filtered is None else ef_filtered
        ef_partition = self.params.ef_partition if ef_partition is None else ef_partition
        if min(ef, ef_filtered, ef_partition) < 1:
            raise InvalidInput(
                f"ef values must be at least 1, got {ef}, {ef_filtered}, {ef_partition}"
            )
        with self._lock.write():
            self.params = msgspec.structs.replace(
                self.params, ef=ef, ef_filtered=ef_filtered, ef_partition=ef_partition
            )
            self._routes.clear()
            self._exact_rows.clear()

    def set_partition_routing(self, enabled: bool) -> None:
        """Query-time switch (benchmarks, A/B): off sends filters to the main graph's callback.

        Partitions are maintained either way, so switching back on costs nothing.
        """
        with self._lock.write():
            self._use_partitions = enabled
            self._routes.clear()
            self._exact_rows.clear()

    def partition_stats(self) -> PartitionStats:
        with self._lock.read():
            return self._parts.stats()

    def partition_keys(self) -> list[Key]:
        with self._lock.read():
            return sorted(self._parts)

    # -- writes -------------------------------------------------------------------

    def add(
        self,
        ids: Sequence[str],
        vectors: NDArray[np.float32],
        metadata: Sequence[Mapping[str, MetaValue]],
    ) -> None:
        if not len(ids) == len(metadata) == len(vectors):
            raise InvalidInput(
                f"add: {len(ids)} ids, {len(vectors)} vectors, {len(metadata)} metadata"
            )
        if len(set(ids)) != len(ids):
            raise InvalidInput("add: duplicate ids in one batch")
        for meta in metadata:
            for key in meta:
                if key in FILTER_FIELDS and FILTER_FIELDS[key] != key:
                    # A filter name used as a field would silently never match.
                    raise InvalidInput(f"metadata key {key!r}: the field is {FILTER_FIELDS[key]!r}")
        if not ids:
            return
        data = normalize_rows(vectors, self._dim)
        with self._lock.write():
            first = self._next_label
            labels = np.arange(first, first + len(ids), dtype=np.int64)
            needed = self._graph.get_current_count() + len(ids)
            if needed > self._graph.get_max_elements():
                self._graph.resize_index(max(needed, 2 * self._graph.get_max_elements()))
            self._graph.add_items(data, labels, num_threads=self.params.build_threads)
            self._next_label += len(ids)
            self._id_of.extend([""] * len(ids))
            fresh: dict[Key, list[int]] = {}  # new labels of partitions that exist already
            for item_id, label, meta in zip(ids, labels.tolist(), metadata, strict=True):
                old = self._label_of.get(item_id)
                if old is not None:
                    self._forget(old)
                stored = {k: v if isinstance(v, str) else list(v) for k, v in meta.items()}
                self._remember(item_id, label, stored, fresh)
            vectors_of = vectors_from(self._graph, first, data)
            self._parts.add(fresh, vectors_of)
            self._after_write(vectors_of)

    def delete(self, ids: Iterable[str]) -> int:
        with self._lock.write():
            removed = 0
            for item_id in ids:
                label = self._label_of.get(item_id)
                if label is not None:
                    self._forget(label)
                    removed += 1
            if removed:
                self._after_write(vectors_from(self._graph, self._next_label, None))
            return removed

    def _after_write(self, vectors_of: VectorsOf) -> None:
        self._parts.rebalance(self._postings, self._partitionable, len(self), vectors_of)
        self._routes.clear()
        self._exact_rows.clear()

    def _remember(
        self,
        item_id: str,
        label: int,
        meta: dict[str, str | list[str]],
        fresh: dict[Key, list[int]] | None = None,
    ) -> None:
        self._label_of[item_id] = label
        self._id_of[label] = item_id
        self._meta[label] = meta
        for key in filter_keys(meta):
            posting = self._postings.get(key)
            if posting is None:
                posting = self._postings[key] = set()
                if self._parts.policy.wants(key):
                    self._partitionable.add(key)
            posting.add(label)
            if fresh is not None and self._parts.get(key) is not None:
                fresh.setdefault(key, []).append(label)

    def _forget(self, label: int) -> None:
        self._graph.mark_deleted(label)
        self._deleted += 1
        item_id = self._id_of[label]
        self._id_of[label] = ""
        del self._label_of[item_id]
        for key in filter_keys(self._meta.pop(label)):
            self._parts.mark_deleted(key, label)
            posting = self._postings[key]
            posting.discard(label)
            if not posting:
                del self._postings[key]
                self._partitionable.discard(key)

    # -- reads --------------------------------------------------------------------

    def allowed_labels(self, filters: Mapping[str, str] | None) -> frozenset[int] | None:
        """Labels passing every filter (None: no filter). Cached until the next write."""
        return self._route(filters).allowed

    def _route(self, filters: Mapping[str, str] | None) -> _Route:
        check_filters(filters)
        if not filters:
            return _Route(self._graph, None, None, self.params.ef)
        key = tuple(sorted(filters.items()))
        route = self._routes.get(key)
        if route is not None:
            return route
        postings = sorted((self._postings.get(item, _EMPTY) for item in key), key=len)
        allowed = frozenset(postings[0].intersection(*postings[1:]))
        p = self.params
        parts = [part for item in key if (part := self._parts.get(item)) is not None]
        if len(allowed) <= p.exact_below:
            route = _Route(None, allowed, None, 0)
        elif len(allowed) == len(self._label_of):  # a filter that passes every item
            route = _Route(self._graph, allowed, None, p.ef)
        elif parts and self._use_partitions:
            smallest = min(parts, key=lambda part: part.live)
            # allowed is a subset of the partition's items: equal sizes mean equal sets.
            if smallest.live == len(allowed):
                route = _Route(smallest.graph, allowed, None, p.ef_partition)
            else:
                route = _Route(smallest.graph, allowed, allowed.__contains__, p.ef_filtered)
        else:
            # frozenset.__contains__ is a C method: no Python frame per visited node.
            route = _Route(self._graph, allowed, allowed.__contains__, p.ef_filtered)
        if len(self._routes) >= 256:
            self._routes.clear()
            self._exact_rows.clear()
        self._routes[key] = route
        return route

    def search(
        self, vectors: NDArray[np.float32], k: int, filters: Mapping[str, str] | None = None
    ) -> Hits:
        if k < 1:
            raise InvalidInput(f"k must be at least 1, got {k}")
        queries = normalize_rows(vectors, self._dim)
        with self._lock.read():
            route = self._route(filters)
            candidates = len(self._label_of) if route.allowed is None else len(route.allowed)
            k = min(k, candidates)
            if k == 0:
                return [[] for _ in range(len(queries))]
            if route.graph is None:
                return self._exact(queries, k, route.allowed)
            # hnswlib walks with breadth max(its ef, k); its ef is pinned to 1, so asking
            # for `breadth` results sets this query's ef without touching shared state.
            # Only the first k are kept.
            breadth = min(max(k, route.ef), candidates)
            try:
                labels, dists = route.graph.knn_query(
                    queries, k=breadth, num_threads=self.params.query_threads, filter=route.check
                )
            except RuntimeError:
                # hnswlib found fewer items than asked (a graph split by deletions).
                return self._exact(queries, k, route.allowed)
            # One C-level lookup per hit: this loop runs on every query.
            id_of = self._id_of.__getitem__
            return [
                list(zip(map(id_of, row_l), [1.0 - d for d in row_d], strict=True))
                for row_l, row_d in zip(labels[:, :k].tolist(), dists[:, :k].tolist(), strict=True)
            ]

    def _exact(self, queries: NDArray[np.float32], k: int, allowed: frozenset[int] | None) -> Hits:
        cached = self._exact_rows.get(allowed) if allowed is not None else None
        if cached is None:
            live = self._label_of.values() if allowed is None else allowed
            labels = np.fromiter(live, dtype=np.int64, count=len(live))
            labels.sort()  # a stable order makes ties deterministic
            stored = np.asarray(self._graph.get_items(labels, return_type="numpy"),
                                dtype=np.float32)
            if allowed is not None:  # the same filter comes back: keep its rows
                if len(self._exact_rows) >= 32:  # at most 32 x exact_below rows held
                    self._exact_rows.clear()
                self._exact_rows[allowed] = (labels, stored)
        else:
            labels, stored = cached
        scores = queries @ stored.T
        out: Hits = []
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.lexsort((labels[top], -row[top]))]
            out.append([(self._id_of[int(labels[i])], float(row[i])) for i in top])
        return out

    # -- persistence ----------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the graphs and the id/metadata state into `directory`, each file atomically.

        The state file goes last and records each graph's slot count, so `load` notices
        graph files from a save that did not finish.
        """
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock.read():
            labels = list(self._label_of.values())
            partitions, moves = self._parts.save(directory)
            state = _State(
                format=_FORMAT,
                dim=self._dim,
                M=self.params.M,
                ef_construction=self.params.ef_construction,
                next_label=self._next_label,
                capacity=self._graph.get_max_elements(),
                deleted=self._deleted,
                labels=labels,
                ids=list(self._label_of),
                metadata=[self._meta[label] for label in labels],
                partition_policy=self._parts.policy,
                partitions=partitions,
            )
            tmp_index = directory / f".{_INDEX_FILE}.tmp"
            self._graph.save_index(str(tmp_index))
        tmp_state = directory / f".{_STATE_FILE}.tmp"
        tmp_state.write_bytes(msgspec.msgpack.encode(state))
        os.replace(tmp_index, directory / _INDEX_FILE)
        move_into_place(moves)
        os.replace(tmp_state, directory / _STATE_FILE)
        FilterPartitions.remove_stale(directory, (p.file for p in partitions))

    def load(self, directory: Path) -> None:
        """Replace the content with what `save` wrote; the saved graph must match dim and M.

        Partitions saved under the same policy are loaded; otherwise (an older format, a
        changed policy, a missing or inconsistent file) they are rebuilt from the graph.
        """
        state = msgspec.msgpack.decode((directory / _STATE_FILE).read_bytes(), type=_State)
        if state.format not in (1, _FORMAT) or state.dim != self._dim or state.M != self.params.M:
            raise ValueError(
                f"saved index (format {state.format}, dim {state.dim}, M {state.M}) does not match "
                f"(format {_FORMAT}, dim {self._dim}, M {self.params.M})"
            )
        graph = hnswlib.Index(space="ip", dim=self._dim)
        graph.load_index(str(directory / _INDEX_FILE), max_elements=state.capacity)
        if graph.get_current_count() != state.next_label:
            raise ValueError(
                f"saved graph has {graph.get_current_count()} slots, state says {state.next_label}"
            )
        graph.set_ef(1)
        with self._lock.write():
            self._reset(1)
            self._graph = graph
            self._next_label = state.next_label
            self._id_of = [""] * state.next_label
            self._deleted = state.deleted
            for label, item_id, meta in zip(state.labels, state.ids, state.metadata, strict=True):
                self._remember(item_id, label, meta)
            # Saved partitions are used only if they match; missing ones are built here.
            self._parts.load(directory, state.partition_policy, state.partitions, self._postings)
            self._after_write(vectors_from(self._graph, self._next_label, None))
