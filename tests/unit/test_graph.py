"""Knowledge graph build, lookup and CSR export on a tiny hand-made shop.

`tiny_shop()` is the fixture builder the facts and recommender tests share.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from server.errors import InvalidInput, NotFound
from server.knowledge.graph.graph import EDGE_CODE, EDGE_TYPES, NODE_TYPES, KnowledgeGraph
from server.knowledge.shop.schema import (
    Article,
    Customer,
    Order,
    OrderItem,
    Policy,
    Product,
    Return,
    Snapshot,
    Warranty,
)

AS_OF = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def _t(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _product(pid: str, title: str, category: str, brand: str = "Acme", *,
             in_stock: bool = True, warranty: int = 0, complements: tuple[str, ...] = (),
             replenish: int = 0, price: float = 10.0) -> Product:
    return Product(pid, title, brand, category, price, "EUR", in_stock, warranty,
                   f"{title} description", complements, replenish)


def _order(oid: str, cid: str, ordered: datetime, status: str = "delivered",
           delivered: datetime | None = None, total: float = 10.0) -> Order:
    shipped = ordered if status in ("shipped", "delivered", "returned") else None
    return Order(oid, cid, ordered, status, shipped, delivered, total, "EUR")


def tiny_shop() -> Snapshot:
    """A shop small enough to reason about by hand (see the comments for the cases)."""
    customers = [
        Customer("c1", "Ada", "ada@example.com", "+491", "standard", _t(1, 1, year=2025)),
        Customer("c2", "Bo", "bo@example.com", "", "vip", _t(1, 1, year=2025)),
        Customer("c3", "Cy", "cy@example.com", "", "standard", _t(1, 1, year=2025)),
        Customer("c4", "Di", "di@example.com", "", "standard", _t(1, 1, year=2025)),
        Customer("c5", "Ed", "ed@example.com", "", "standard", _t(1, 1, year=2025)),
    ]
    products = [
        _product("p-phone", "Phone X", "Electronics/Phones", warranty=24,
                 complements=("p-case", "p-charger", "p-cable"), price=500.0),
        _product("p-case", "Phone Case", "Electronics/Phones/Cases"),
        _product("p-charger", "Fast Charger", "Electronics/Phones/Chargers", "Volt"),
        _product("p-cable", "USB-C Cable", "Electronics/Phones/Chargers", "Volt",
                 in_stock=False),
        _product("p-coffee", "Coffee Beans", "Grocery/Coffee", "Bean", replenish=28),
        _product("p-filter", "Coffee Filters", "Grocery/Coffee", "Bean", replenish=60),
        _product("p-grinder", "Coffee Grinder", "Home/Kitchen", complements=("p-coffee",)),
        _product("p-headphones", "Headphones", "Electronics/Audio", "Sonic"),
        _product("p-soft", "Office Suite", "Software/Office", "Soft"),
    ]
    orders = [
        # o1: delivered 10-16, 30-day window -> last day 11-15 (= as_of): eligible.
        _order("o1", "c1", _t(10, 10), delivered=_t(10, 16, 9), total=510.0),
        # o2: coffee re-bought 28 days after o3 (due now); headphones already returned.
        _order("o2", "c1", _t(10, 18), delivered=_t(10, 20), total=60.0),
        _order("o3", "c1", _t(9, 20), delivered=_t(9, 22)),
        # o4: still processing -> nothing returnable yet.
        _order("o4", "c1", _t(11, 14), status="processing"),
        # o5: VIP, delivered 09-25: 51 days ago -> only the 60-day VIP window allows it.
        _order("o5", "c2", _t(9, 20), delivered=_t(9, 25), total=500.0),
        _order("o6", "c2", _t(11, 1), status="cancelled"),
        _order("o7", "c4", _t(11, 5), delivered=_t(11, 10), total=520.0),
        _order("o8", "c4", _t(11, 5), delivered=_t(11, 10)),
        _order("o9", "c5", _t(10, 1), delivered=_t(10, 3)),
    ]
    items = [
        OrderItem("o1", "p-phone", 1, 500.0), OrderItem("o1", "p-case", 1, 10.0),
        OrderItem("o2", "p-coffee", 1, 10.0), OrderItem("o2", "p-headphones", 1, 50.0),
        OrderItem("o3", "p-coffee", 1, 10.0),
        OrderItem("o4", "p-grinder", 1, 40.0),
        OrderItem("o5", "p-phone", 1, 500.0),
        OrderItem("o6", "p-headphones", 1, 50.0),
        OrderItem("o7", "p-phone", 1, 500.0), OrderItem("o7", "p-charger", 2, 10.0),
        OrderItem("o8", "p-soft", 1, 10.0),
        OrderItem("o9", "p-coffee", 1, 10.0), OrderItem("o9", "p-filter", 1, 5.0),
    ]
    returns = [Return("o2", "p-headphones", _t(10, 25), "too loud", "requested", 50.0)]
    warranties = [
        Warranty("w1", "c1", "o1", "p-phone", _t(10, 16, 9), _t(10, 16, 9, year=2028)),
        Warranty("w2", "c2", "o5", "p-phone", _t(11, 1, year=2024), _t(11, 1),
                 kind="extended", claim_status="rejected"),
    ]
    policies = [
        Policy("pol-returns", "Returns", "30 days, VIP 60.", "*", "2",
               {"return_window_days": 30, "vip_return_window_days": 60,
                "refund_auto_limit": 150.0}),
        Policy("pol-returns", "Returns", "Old terms.", "*", "1", {"return_window_days": 14}),
        Policy("pol-software", "Software", "Opened software cannot be returned.",
               "Software", "1", {"returnable": False}),
    ]
    articles = [Article("a1", "Charging your phone", "## Tips\nUse a fast charger.",
                        product_ids=("p-phone", "p-charger"), categories=("Electronics",))]
    return Snapshot("snap-tiny", customers, products, orders, items, returns, warranties,
                    policies, articles, as_of=AS_OF)


def test_build_lays_out_typed_blocks_and_lookup() -> None:
    g = KnowledgeGraph.build(tiny_shop())
    assert g.graph.vcount() == g.n_vertices
    assert g.graph.ecount() == g.n_edges
    assert len(g.vertices("customer")) == 5 and len(g.vertices("product")) == 9
    v = g.node("product", "p-case")
    assert g.node_id(v) == ("product", "p-case")
    assert v - g.vertices("product").start == 1  # index in snapshot.products
    assert set(g.ids("category")) >= {"Electronics", "Electronics/Phones",
                                      "Electronics/Phones/Cases", "Software"}
    assert g.graph.vs[v]["type"] == NODE_TYPES.index("product")
    with pytest.raises(NotFound):
        g.node("customer", "nobody")
    with pytest.raises(InvalidInput):
        g.node("planet", "p-case")
    assert g.build_seconds > 0


def _edges_of(g: KnowledgeGraph, etype: str) -> dict[tuple[tuple[str, str], tuple[str, str]],
                                                      float]:
    code = EDGE_CODE[etype]
    out = {}
    for s, d, w, t in zip(g.src, g.dst, g.weights, g.edge_types, strict=True):
        if t == code:
            out[(g.node_id(int(s)), g.node_id(int(d)))] = float(w)
    return out


def test_edges_carry_types_and_weights() -> None:
    g = KnowledgeGraph.build(tiny_shop())
    bought = _edges_of(g, "bought")
    # c1 bought coffee twice (o2 28 days ago, o3 56 days ago): two recency-weighted terms.
    w = bought[(("customer", "c1"), ("product", "p-coffee"))]
    assert w == pytest.approx(1.0 + 0.5 * 2 ** (-(28 + 2 / 24) / 180) + 0.5 * 2 ** (
        -(56 + 2 / 24) / 180))
    # The cancelled order o6 gives no bought edge, but its placed/contains edges exist.
    assert (("customer", "c2"), ("product", "p-headphones")) not in bought
    assert (("order", "o6"), ("product", "p-headphones")) in _edges_of(g, "contains")
    assert _edges_of(g, "contains")[(("order", "o7"), ("product", "p-charger"))] == 2.0
    comp = _edges_of(g, "complements")
    assert len(comp) == 4  # phone-case, phone-charger, phone-cable, grinder-coffee
    assert (("customer", "c1"), ("product", "p-headphones")) in _edges_of(g, "returned")
    governs = _edges_of(g, "governs")
    assert (("policy", "pol-software"), ("category", "Software")) in governs
    roots = {d for (s, d) in governs if s == ("policy", "pol-returns")}
    assert roots == {("category", c) for c in ("Electronics", "Grocery", "Home", "Software")}
    assert (("article", "a1"), ("category", "Electronics")) in _edges_of(g, "about")
    assert _edges_of(g, "subcategory_of")[(("category", "Electronics/Phones/Cases"),
                                           ("category", "Electronics/Phones"))] == 1.0


def test_csr_is_symmetric_and_typed() -> None:
    g = KnowledgeGraph.build(tiny_shop())
    csr = g.csr()
    assert csr.indptr.dtype == np.int64 and csr.indices.dtype == np.int32
    assert csr.weights.dtype == np.float64 and csr.edge_types.dtype == np.int8
    assert csr.indptr[-1] == 2 * g.n_edges
    dense = np.zeros((g.n_vertices, g.n_vertices))
    for v in range(g.n_vertices):
        for e in range(csr.indptr[v], csr.indptr[v + 1]):
            dense[v, csr.indices[e]] += csr.weights[e]
    np.testing.assert_allclose(dense, dense.T)
    # Matches the igraph graph's weighted adjacency.
    np.testing.assert_allclose(dense, _igraph_dense(g))


def _igraph_dense(g: KnowledgeGraph) -> np.ndarray:
    out = np.zeros((g.n_vertices, g.n_vertices))
    for e in g.graph.es:
        s, d = e.tuple
        out[s, d] += e["weight"]
        out[d, s] += e["weight"]
    return out


def test_csr_type_weights_drop_and_scale() -> None:
    g = KnowledgeGraph.build(tiny_shop())
    csr = g.csr({"bought": 2.0, "complements": 1.0})
    kept = set(np.unique(csr.edge_types).tolist())
    assert kept == {EDGE_CODE["bought"], EDGE_CODE["complements"]}
    n_bought = sum(1 for t in g.edge_types if t == EDGE_CODE["bought"])
    n_comp = sum(1 for t in g.edge_types if t == EDGE_CODE["complements"])
    assert csr.indptr[-1] == 2 * (n_bought + n_comp)
    bought_w = csr.weights[csr.edge_types == EDGE_CODE["bought"]]
    stored = g.weights[g.edge_types == EDGE_CODE["bought"]]
    assert bought_w.sum() == pytest.approx(2 * 2.0 * stored.sum())
    assert g.csr({"bought": 2.0, "complements": 1.0}) is csr  # cached
    with pytest.raises(InvalidInput):
        g.csr({"likes": 1.0})
    assert len(EDGE_TYPES) < 127


def test_update_returns_self_when_unchanged_and_rebuilds_otherwise() -> None:
    snap = tiny_shop()
    g = KnowledgeGraph.build(snap)
    assert g.update(snap) is g
    newer = tiny_shop()
    newer.snapshot_id = "snap-tiny-2"
    newer.customers.append(Customer("c9", "New", "n@example.com", "", "standard", AS_OF))
    g2 = g.update(newer)
    assert g2 is not g and g2.has_node("customer", "c9") and not g.has_node("customer", "c9")


def test_build_empty_shop() -> None:
    g = KnowledgeGraph.build(Snapshot("snap-empty", [], [], [], [], [], [], [], [], as_of=AS_OF))
    assert g.n_vertices == 0 and g.n_edges == 0
    assert g.csr().indptr.tolist() == [0]
