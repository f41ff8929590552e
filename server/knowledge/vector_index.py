"""The vector index behind retrieval: a small `VectorIndex` interface and its hnswlib default.

`HnswIndex` keeps L2-normalized float32 vectors in an hnswlib graph (space "ip", so
score = inner product = cosine). String ids map to integer labels; an upsert marks
the old label deleted and inserts under a fresh one, a delete marks it deleted, and
the graph grows with `resize_index` - nothing is rebuilt. Metadata filters are
resolved to a set of allowed labels from per-(key, value) posting sets and handed to
hnswlib's `filter` callback, so they apply during the graph search.

Thread safety: hnswlib allows concurrent `knn_query` calls but not a query during
`add_items`/`mark_deleted`/`resize_index`, so searches share a read lock and writes
take it exclusively.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import hnswlib
import msgspec
import numpy as np
from numpy.typing import NDArray

from server.errors import InvalidInput

MetaValue = str | Sequence[str]
# Filter key -> the metadata field it reads. "category" matches a path and everything
# below it ("Electronics" matches "Electronics/Phones"); list fields match membership.
FILTER_FIELDS: dict[str, str] = {
    "kind": "kind",
    "doc_type": "doc_type",
    "locale": "locale",
    "source_id": "source_id",
    "category": "categories",
    "product_id": "product_ids",
    "tag": "tags",
}
_INDEX_FILE = "hnsw.bin"
_STATE_FILE = "ids.msgpack"
_FORMAT = 1

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
    # of ef and needs a smaller one for the same recall.
    ef: int = 128
    ef_filtered: int = 32
    initial_capacity: int = 1024
    build_threads: int = -1  # add_items threads (-1: all cores)
    query_threads: int = 1  # knn_query threads per call; the server parallelizes across calls
    # When a filter allows at most this many items, score them exactly instead: the graph
    # walk would visit most of the index to collect them anyway.
    exact_below: int = 256
    seed: int = 100


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


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writing and not self._readers)
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def normalize_rows(vectors: NDArray[np.floating], dim: int) -> NDArray[np.float32]:
    """Rows as a C-contiguous float32 [n, dim] array of unit length."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InvalidInput(f"vectors must have shape [n, {dim}], got {list(np.shape(vectors))}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise InvalidInput("vectors must be finite and non-zero")
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


def check_filters(filters: Mapping[str, str] | None) -> None:
    """Raise InvalidInput for an unknown key or an empty value."""
    for key, value in (filters or {}).items():
        if key not in FILTER_FIELDS:
            raise InvalidInput(f"unknown filter {key!r}; known: {', '.join(sorted(FILTER_FIELDS))}")
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"filter {key!r} needs a non-empty string value")


def _filter_keys(metadata: Mapping[str, MetaValue]) -> Iterator[tuple[str, str]]:
    """The (filter key, value) postings an item belongs to."""
    for key, field in FILTER_FIELDS.items():
        raw = metadata.get(field)
        if raw is None:
            continue
        values = (raw,) if isinstance(raw, str) else tuple(raw)
        for value in values:
            if key == "category":
                parts = value.split("/")
                for depth in range(1, len(parts) + 1):
                    yield key, "/".join(parts[:depth])
            else:
                yield key, value


class HnswIndex:
    """hnswlib HNSW graph with string ids, upsert/delete, filters and persistence."""

    def __init__(self, dim: int, params: HnswParams | None = None) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self._dim = dim
        self.params = params or HnswParams()
        self._lock = _ReadWriteLock()
        self._reset(self.params.initial_capacity)

    def _reset(self, capacity: int) -> None:
        self._graph = hnswlib.Index(space="ip", dim=self._dim)
        self._graph.init_index(
            max_elements=max(capacity, 1),
            M=self.params.M,
            ef_construction=self.params.ef_construction,
            random_seed=self.params.seed,
        )
        self._graph.set_ef(1)  # breadth is chosen per query, see search()
        self._label_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._meta: dict[int, dict[str, str | list[str]]] = {}
        self._postings: dict[tuple[str, str], set[int]] = {}
        self._allowed_cache: dict[tuple[tuple[str, str], ...], frozenset[int]] = {}
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

    def set_ef(self, ef: int, ef_filtered: int | None = None) -> None:
        """Change the query-time breadth (recall against speed); no rebuild needed."""
        ef_filtered = self.params.ef_filtered if ef_filtered is None else ef_filtered
        if ef < 1 or ef_filtered < 1:
            raise InvalidInput(f"ef values must be at least 1, got {ef}, {ef_filtered}")
        self.params = msgspec.structs.replace(self.params, ef=ef, ef_filtered=ef_filtered)

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
            labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
            needed = self._graph.get_current_count() + len(ids)
            if needed > self._graph.get_max_elements():
                self._graph.resize_index(max(needed, 2 * self._graph.get_max_elements()))
            self._graph.add_items(data, labels, num_threads=self.params.build_threads)
            self._next_label += len(ids)
            for item_id, label, meta in zip(ids, labels.tolist(), metadata, strict=True):
                old = self._label_of.get(item_id)
                if old is not None:
                    self._forget(old)
                stored = {k: v if isinstance(v, str) else list(v) for k, v in meta.items()}
                self._remember(item_id, label, stored)
            self._allowed_cache.clear()

    def delete(self, ids: Iterable[str]) -> int:
        with self._lock.write():
            removed = 0
            for item_id in ids:
                label = self._label_of.get(item_id)
                if label is not None:
                    self._forget(label)
                    removed += 1
            if removed:
                self._allowed_cache.clear()
            return removed

    def _remember(self, item_id: str, label: int, meta: dict[str, str | list[str]]) -> None:
        self._label_of[item_id] = label
        self._id_of[label] = item_id
        self._meta[label] = meta
        for key in _filter_keys(meta):
            self._postings.setdefault(key, set()).add(label)

    def _forget(self, label: int) -> None:
        self._graph.mark_deleted(label)
        self._deleted += 1
        item_id = self._id_of.pop(label)
        del self._label_of[item_id]
        for key in _filter_keys(self._meta.pop(label)):
            posting = self._postings[key]
            posting.discard(label)
            if not posting:
                del self._postings[key]

    # -- reads --------------------------------------------------------------------

    def allowed_labels(self, filters: Mapping[str, str] | None) -> frozenset[int] | None:
        """Labels passing every filter (None: no filter). Cached until the next write."""
        check_filters(filters)
        if not filters:
            return None
        key = tuple(sorted(filters.items()))
        cached = self._allowed_cache.get(key)
        if cached is not None:
            return cached
        postings = sorted((self._postings.get(item, set()) for item in key), key=len)
        allowed = frozenset(postings[0].intersection(*postings[1:]))
        if len(self._allowed_cache) >= 256:
            self._allowed_cache.clear()
        self._allowed_cache[key] = allowed
        return allowed

    def search(
        self, vectors: NDArray[np.float32], k: int, filters: Mapping[str, str] | None = None
    ) -> Hits:
        if k < 1:
            raise InvalidInput(f"k must be at least 1, got {k}")
        queries = normalize_rows(vectors, self._dim)
        with self._lock.read():
            allowed = self.allowed_labels(filters)
            candidates = len(self._label_of) if allowed is None else len(allowed)
            k = min(k, candidates)
            if k == 0:
                return [[] for _ in range(len(queries))]
            if allowed is not None and len(allowed) <= self.params.exact_below:
                return self._exact(queries, k, allowed)
            # hnswlib walks with breadth max(its ef, k); its ef is pinned to 1, so asking
            # for `breadth` results sets this query's ef without touching shared state.
            # Only the first k are kept.
            ef = self.params.ef if allowed is None else self.params.ef_filtered
            breadth = min(max(k, ef), candidates)
            try:
                # frozenset.__contains__ is a C method: no Python frame per visited node.
                labels, dists = self._graph.knn_query(
                    queries,
                    k=breadth,
                    num_threads=self.params.query_threads,
                    filter=None if allowed is None else allowed.__contains__,
                )
            except RuntimeError:
                # hnswlib found fewer items than asked (a graph split by deletions).
                return self._exact(queries, k, allowed)
            return [
                [
                    (self._id_of[label], 1.0 - float(dist))
                    for label, dist in zip(row_l, row_d, strict=True)
                ]
                for row_l, row_d in zip(labels[:, :k].tolist(), dists[:, :k].tolist(), strict=True)
            ]

    def _exact(self, queries: NDArray[np.float32], k: int, allowed: frozenset[int] | None) -> Hits:
        labels = np.fromiter(self._id_of if allowed is None else allowed, dtype=np.int64)
        labels.sort()  # a stable order makes ties deterministic
        stored = np.asarray(self._graph.get_items(labels, return_type="numpy"), dtype=np.float32)
        scores = queries @ stored.T
        out: Hits = []
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.lexsort((labels[top], -row[top]))]
            out.append([(self._id_of[int(labels[i])], float(row[i])) for i in top])
        return out

    # -- persistence ----------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the graph and the id/metadata state into `directory`, each file atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock.read():
            labels = list(self._id_of)
            state = _State(
                format=_FORMAT,
                dim=self._dim,
                M=self.params.M,
                ef_construction=self.params.ef_construction,
                next_label=self._next_label,
                capacity=self._graph.get_max_elements(),
                deleted=self._deleted,
                labels=labels,
                ids=[self._id_of[label] for label in labels],
                metadata=[self._meta[label] for label in labels],
            )
            tmp_index = directory / f".{_INDEX_FILE}.tmp"
            self._graph.save_index(str(tmp_index))
        tmp_state = directory / f".{_STATE_FILE}.tmp"
        tmp_state.write_bytes(msgspec.msgpack.encode(state))
        os.replace(tmp_index, directory / _INDEX_FILE)
        os.replace(tmp_state, directory / _STATE_FILE)

    def load(self, directory: Path) -> None:
        """Replace the content with what `save` wrote; the saved graph must match dim and M."""
        state = msgspec.msgpack.decode((directory / _STATE_FILE).read_bytes(), type=_State)
        if state.format != _FORMAT or state.dim != self._dim or state.M != self.params.M:
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
            self._deleted = state.deleted
            for label, item_id, meta in zip(state.labels, state.ids, state.metadata, strict=True):
                self._remember(item_id, label, meta)
