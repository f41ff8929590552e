"""The shop's knowledge graph: typed nodes and typed, weighted edges built from a Snapshot.

Vertices are laid out in contiguous blocks, one per node type in `NODE_TYPES` order, so
"all products" is a range and a product's vertex minus the block start is its index in
`snapshot.products`. Edges are undirected; each carries an int8 type code (`EDGE_TYPES`)
and a weight:

- bought (customer-product): sum over purchases of 0.5 + 0.5 * 2^(-age / 180 days),
  so repeat purchases count and recent ones count more; cancelled orders are skipped;
- placed (customer-order) 1; contains (order-product) the quantity;
- in_category (product-leaf category), subcategory_of (category-parent), made_by
  (product-brand), complements (product-product), covered_by (product-warranty and
  order-warranty), holds (customer-warranty), about (article-product/category),
  governs (policy-category; "*" governs every top-level category), returned
  (customer-product, one per return) - all 1.

The igraph `Graph` is built in one call from the edge arrays (never edge by edge);
`csr()` exports the symmetric CSR arrays the kernels walk. Edge weights are rounded
to float32-representable values (relative change < 6e-8) so the kernels can store
them in 4 bytes losslessly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import igraph as ig
import numpy as np
import numpy.typing as npt

from kernels.scoring import reweight_edges
from server.errors import InvalidInput, NotFound, short
from server.knowledge.shop.schema import Snapshot

NODE_TYPES = ("customer", "product", "category", "brand", "order", "article", "policy", "warranty")
EDGE_TYPES = (
    "bought", "placed", "contains", "in_category", "subcategory_of", "made_by",
    "complements", "covered_by", "holds", "about", "governs", "returned",
)
NODE_CODE = {t: i for i, t in enumerate(NODE_TYPES)}
EDGE_CODE = {t: i for i, t in enumerate(EDGE_TYPES)}
BOUGHT_HALF_LIFE_DAYS = 180.0


@dataclass(frozen=True)
class CSR:
    """Symmetric CSR adjacency: every undirected edge appears in both endpoint rows."""

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    weights: npt.NDArray[np.float64]
    edge_types: npt.NDArray[np.int8]

    @property
    def n_vertices(self) -> int:
        return int(self.indptr.shape[0] - 1)


def _int_array(values: Iterable[int]) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(np.int64, copy=False)
    return np.fromiter(values, dtype=np.int64)


class _EdgeList:
    """Accumulates edges per type as index arrays, joined once at the end."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []

    def add(self, etype: str, src: Iterable[int], dst: Iterable[int],
            weight: Iterable[float] | float = 1.0) -> None:
        s = _int_array(src)
        d = _int_array(dst)
        w = (np.full(s.shape[0], float(weight)) if isinstance(weight, int | float)
             else np.asarray(weight, dtype=np.float64) if isinstance(weight, np.ndarray)
             else np.fromiter(weight, dtype=np.float64))
        if s.shape != d.shape or w.shape != s.shape:
            raise ValueError(f"ragged edge arrays for {etype}")
        self.parts.append((s, d, w, EDGE_CODE[etype]))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0), np.zeros(0, dtype=np.int8)
        src = np.concatenate([p[0] for p in self.parts])
        dst = np.concatenate([p[1] for p in self.parts])
        # Weights are rounded to float32-representable values: the walk kernel then stores
        # them as float32 without losing anything (less memory traffic per sweep).
        w = np.concatenate([p[2] for p in self.parts]).astype(np.float32).astype(np.float64)
        t = np.concatenate([np.full(p[0].shape[0], p[3], dtype=np.int8) for p in self.parts])
        return src, dst, w, t


def category_chain(path: str) -> list[str]:
    """'A/B/C' -> ['A', 'A/B', 'A/B/C'] (every ancestor, root first)."""
    parts = [p for p in path.split("/") if p]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def category_key(path: str) -> str:
    """The canonical node id of a category path ('' when the path is empty)."""
    return "/".join(p for p in path.split("/") if p)


class KnowledgeGraph:
    """An immutable graph of one snapshot; `update()` returns the graph of a newer one."""

    def __init__(self, snapshot: Snapshot, ids: dict[str, list[str]],
                 vid: dict[str, dict[str, int]], src: np.ndarray, dst: np.ndarray,
                 weights: np.ndarray, etypes: np.ndarray, as_of: datetime) -> None:
        self.snapshot = snapshot
        self.snapshot_id = snapshot.snapshot_id
        self.as_of = as_of
        self._ids = ids
        self._vid = vid  # (type, id) -> vertex
        sizes = [len(ids[t]) for t in NODE_TYPES]
        self._offset = dict(zip(NODE_TYPES, np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist(),
                                strict=True))
        self.n_vertices = int(sum(sizes))
        self.node_types = np.repeat(np.arange(len(NODE_TYPES), dtype=np.int8), sizes)
        self.src, self.dst, self.weights, self.edge_types = src, dst, weights, etypes
        self.graph = ig.Graph(self.n_vertices, np.stack([src, dst], axis=1), directed=False)
        self.graph.vs["type"] = self.node_types
        self.graph.es["etype"] = etypes
        self.graph.es["weight"] = weights
        self.build_seconds = 0.0  # set by build(): arrays + igraph construction
        self._csr_cache: dict[tuple[float, ...] | None, CSR] = {}

    # --- construction -------------------------------------------------------------

    @classmethod
    def build(cls, snapshot: Snapshot) -> KnowledgeGraph:
        start = time.perf_counter()
        as_of = snapshot.as_of or max(
            (o.ordered_at for o in snapshot.orders), default=datetime.now(UTC))
        categories: dict[str, None] = {}
        for p in snapshot.products:
            categories.update(dict.fromkeys(category_chain(p.category)))
        for pol in snapshot.policies:
            if pol.applies_to != "*":
                categories.update(dict.fromkeys(category_chain(pol.applies_to)))
        for a in snapshot.articles:
            for c in a.categories:
                categories.update(dict.fromkeys(category_chain(c)))
        ids = {
            "customer": [c.customer_id for c in snapshot.customers],
            "product": [p.product_id for p in snapshot.products],
            "category": list(categories),
            "brand": list(dict.fromkeys(p.brand for p in snapshot.products if p.brand)),
            "order": [o.order_id for o in snapshot.orders],
            "article": [a.article_id for a in snapshot.articles],
            "policy": list(dict.fromkeys(p.policy_id for p in snapshot.policies)),
            "warranty": [w.warranty_id for w in snapshot.warranties],
        }
        sizes = [len(ids[t]) for t in NODE_TYPES]
        offsets = dict(zip(NODE_TYPES, np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist(),
                           strict=True))
        vid = {t: {k: offsets[t] + i for i, k in enumerate(ids[t])} for t in NODE_TYPES}
        edges = _EdgeList()
        _commerce_edges(snapshot, vid, as_of, edges)
        _catalog_edges(snapshot, vid, edges)
        src, dst, w, t = edges.arrays()
        graph = cls(snapshot, ids, vid, src, dst, w, t, as_of)
        graph.build_seconds = time.perf_counter() - start
        return graph

    def update(self, snapshot: Snapshot) -> KnowledgeGraph:
        """The graph of `snapshot`: self when unchanged, else a full rebuild.

        Snapshots are immutable and content-addressed, and building from arrays takes
        seconds even for the L shop, so a rebuild is simpler and safer than patching
        igraph in place (igraph edits are O(|E|) each).
        """
        if snapshot.snapshot_id == self.snapshot_id:
            return self
        return KnowledgeGraph.build(snapshot)

    # --- lookup -------------------------------------------------------------------

    def node(self, node_type: str, node_id: str) -> int:
        """Vertex index of (type, id); NotFound when absent."""
        index = self._type_index(node_type)
        try:
            return index[node_id]
        except KeyError:
            raise NotFound(f"unknown {short(node_type)} {short(node_id)}") from None

    def has_node(self, node_type: str, node_id: str) -> bool:
        return node_id in self._type_index(node_type)

    def node_id(self, vertex: int) -> tuple[str, str]:
        if not 0 <= vertex < self.n_vertices:
            raise NotFound(f"no vertex {vertex}")
        node_type = NODE_TYPES[int(self.node_types[vertex])]
        return node_type, self._ids[node_type][vertex - self._offset[node_type]]

    def vertices(self, node_type: str) -> range:
        self._type_index(node_type)
        start = self._offset[node_type]
        return range(start, start + len(self._ids[node_type]))

    def ids(self, node_type: str) -> list[str]:
        self._type_index(node_type)
        return list(self._ids[node_type])

    def _type_index(self, node_type: str) -> dict[str, int]:
        try:
            return self._vid[node_type]
        except KeyError:
            raise InvalidInput(f"unknown node type {short(node_type)}") from None

    @property
    def n_edges(self) -> int:
        return int(self.src.shape[0])

    # --- export -------------------------------------------------------------------

    def type_weight_vector(self, type_weights: Mapping[str, float]) -> np.ndarray:
        """Per-edge-type weights in code order; types not named get 0 (dropped)."""
        unknown = set(type_weights) - set(EDGE_TYPES)
        if unknown:
            raise InvalidInput(f"unknown edge types {sorted(unknown)}")
        return np.array([float(type_weights.get(t, 0.0)) for t in EDGE_TYPES])

    def csr(self, type_weights: Mapping[str, float] | None = None) -> CSR:
        """Symmetric CSR of the edges, weights scaled per type; zero-weight edges dropped.

        None keeps every edge with its stored weight. Results are cached per weighting.
        """
        key = None if type_weights is None else tuple(self.type_weight_vector(type_weights))
        cached = self._csr_cache.get(key)
        if cached is not None:
            return cached
        w = self.weights if key is None else reweight_edges(self.weights, self.edge_types, key)
        keep = w > 0
        src, dst, w, t = self.src[keep], self.dst[keep], w[keep], self.edge_types[keep]
        rows = np.concatenate([src, dst])
        cols = np.concatenate([dst, src])
        # Stable sort by row keeps each row's neighbours in edge insertion order.
        order = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=self.n_vertices)
        indptr = np.zeros(self.n_vertices + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        csr = CSR(
            indptr=indptr,
            indices=cols[order].astype(np.int32),
            weights=np.concatenate([w, w])[order],
            edge_types=np.concatenate([t, t])[order],
        )
        self._csr_cache[key] = csr
        return csr


def _commerce_edges(snapshot: Snapshot, vid: dict[str, dict[str, int]], as_of: datetime,
                    edges: _EdgeList) -> None:
    cust, prod, order = vid["customer"], vid["product"], vid["order"]
    o_start = min(order.values(), default=0)  # order vertices are contiguous, in list order
    o_cust = np.fromiter((cust.get(o.customer_id, -1) for o in snapshot.orders), np.int64)
    o_age = np.fromiter(((as_of - o.ordered_at).total_seconds() / 86400.0
                         for o in snapshot.orders), np.float64)
    o_live = np.fromiter((o.status != "cancelled" for o in snapshot.orders), np.bool_)
    known = o_cust >= 0
    o_vertex = o_start + np.arange(len(snapshot.orders))
    edges.add("placed", o_cust[known], o_vertex[known])
    it_order = np.fromiter((order.get(it.order_id, -1) for it in snapshot.order_items), np.int64)
    it_prod = np.fromiter((prod.get(it.product_id, -1) for it in snapshot.order_items), np.int64)
    it_qty = np.fromiter((max(it.quantity, 1) for it in snapshot.order_items), np.float64)
    row = it_order - o_start
    ok = (it_order >= 0) & (it_prod >= 0)
    ok[ok] &= known[row[ok]]
    edges.add("contains", it_order[ok], it_prod[ok], it_qty[ok])
    # bought: one edge per (customer, product), summing a recency-weighted term per purchase.
    ok[ok] &= o_live[row[ok]]
    c, p = o_cust[row[ok]], it_prod[ok]
    term = 0.5 + 0.5 * np.exp2(-np.maximum(o_age[row[ok]], 0.0) / BOUGHT_HALF_LIFE_DAYS)
    pairs, inverse = np.unique(np.stack([c, p], axis=1), axis=0, return_inverse=True)
    edges.add("bought", pairs[:, 0], pairs[:, 1],
              np.bincount(inverse.ravel(), weights=term, minlength=pairs.shape[0]))
    order_cust = {o.order_id: o.customer_id for o in snapshot.orders if o.customer_id in cust}
    rets = [r for r in snapshot.returns if r.order_id in order_cust and r.product_id in prod]
    edges.add("returned", (cust[order_cust[r.order_id]] for r in rets),
              (prod[r.product_id] for r in rets))
    war = vid["warranty"]
    wars = [w for w in snapshot.warranties if w.product_id in prod]
    edges.add("covered_by", (prod[w.product_id] for w in wars), (war[w.warranty_id] for w in wars))
    wo = [w for w in wars if w.order_id in order]
    edges.add("covered_by", (order[w.order_id] for w in wo), (war[w.warranty_id] for w in wo))
    wc = [w for w in wars if w.customer_id in cust]
    edges.add("holds", (cust[w.customer_id] for w in wc), (war[w.warranty_id] for w in wc))


def _catalog_edges(snapshot: Snapshot, vid: dict[str, dict[str, int]], edges: _EdgeList) -> None:
    prod, cat = vid["product"], vid["category"]
    products = [p for p in snapshot.products if category_key(p.category)]
    edges.add("in_category", (prod[p.product_id] for p in products),
              (cat[category_key(p.category)] for p in products))
    children = [c for c in cat if "/" in c]
    edges.add("subcategory_of", (cat[c] for c in children),
              (cat[c.rsplit("/", 1)[0]] for c in children))
    branded = [p for p in snapshot.products if p.brand]
    edges.add("made_by", (prod[p.product_id] for p in branded),
              (vid["brand"][p.brand] for p in branded))
    pairs = {
        (min(prod[p.product_id], prod[c]), max(prod[p.product_id], prod[c]))
        for p in snapshot.products for c in p.complements
        if c in prod and c != p.product_id
    }
    edges.add("complements", (a for a, _ in sorted(pairs)), (b for _, b in sorted(pairs)))
    about = [(vid["article"][a.article_id], prod[p]) for a in snapshot.articles
             for p in a.product_ids if p in prod]
    about += [(vid["article"][a.article_id], cat[category_key(c)])
              for a in snapshot.articles for c in a.categories if category_key(c) in cat]
    edges.add("about", (a for a, _ in about), (b for _, b in about))
    roots = [c for c in cat if "/" not in c]
    governs: set[tuple[int, int]] = set()
    for pol in snapshot.policies:
        targets = roots if pol.applies_to == "*" else [category_key(pol.applies_to)]
        governs.update((vid["policy"][pol.policy_id], cat[c]) for c in targets if c in cat)
    edges.add("governs", (a for a, _ in sorted(governs)), (b for _, b in sorted(governs)))
