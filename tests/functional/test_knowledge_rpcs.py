"""Search, Recommend and GetCustomerContext over a real channel on the demo shop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from tests.functional.harness import ServerThread


@pytest.fixture(scope="module")
def stub(server_overrides: dict) -> Iterator[support_pb2_grpc.SupportStub]:
    srv = ServerThread(server_overrides).start()
    with grpc.insecure_channel(srv.address) as channel:
        yield support_pb2_grpc.SupportStub(channel)
    srv.stop()


def _customer_with_orders(stub: support_pb2_grpc.SupportStub) -> support_pb2.CustomerContext:
    for i in range(1, 50):
        ctx = stub.GetCustomerContext(
            support_pb2.CustomerContextRequest(customer_id=f"C{i:06d}"), timeout=30)
        if len(ctx.orders) >= 2:
            return ctx
    raise AssertionError("no demo customer with two orders")


def test_search_finds_the_returns_article(stub: support_pb2_grpc.SupportStub) -> None:
    resp = stub.Search(support_pb2.SearchRequest(query="how do I return an item for a refund",
                                                 top_k=5), timeout=30)
    assert 1 <= len(resp.passages) <= 5
    scores = [p.score for p in resp.passages]
    assert scores == sorted(scores, reverse=True)
    assert any("return" in (p.title + p.text).lower() for p in resp.passages[:3])
    assert resp.index_version


def test_search_filters_apply(stub: support_pb2_grpc.SupportStub) -> None:
    resp = stub.Search(support_pb2.SearchRequest(
        query="return window", top_k=10, filters={"kind": "policy"}), timeout=30)
    assert resp.passages and all(p.kind == "policy" for p in resp.passages)


def test_search_bad_input(stub: support_pb2_grpc.SupportStub) -> None:
    for req in (support_pb2.SearchRequest(query=" "),
                support_pb2.SearchRequest(query="x", top_k=500),
                support_pb2.SearchRequest(query="x", filters={"colour": "red"})):
        with pytest.raises(grpc.RpcError) as err:
            stub.Search(req, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_customer_context_has_orders_eligibility_and_warranties(
    stub: support_pb2_grpc.SupportStub,
) -> None:
    ctx = _customer_with_orders(stub)
    assert ctx.name and ctx.snapshot_id.startswith("snap-")
    dates = [o.ordered_at for o in ctx.orders]
    assert dates == sorted(dates, reverse=True)  # most recent first
    for order in ctx.orders:
        assert order.status in {"processing", "shipped", "delivered", "returned", "cancelled"}
        assert order.items
        for line in order.items:
            assert line.return_reason  # every line says why it is (not) eligible
            if line.return_eligible:
                assert line.return_deadline and order.status == "delivered"


def test_recommend_gives_reasons_and_skips_owned(stub: support_pb2_grpc.SupportStub) -> None:
    ctx = _customer_with_orders(stub)
    resp = stub.Recommend(support_pb2.RecommendRequest(customer_id=ctx.customer_id, top_k=5),
                          timeout=30)
    assert 1 <= len(resp.items) <= 5
    assert all(r.reason and r.title for r in resp.items)
    by_product = stub.Recommend(support_pb2.RecommendRequest(
        product_ids=[ctx.orders[0].items[0].product_id], top_k=3), timeout=30)
    assert by_product.items


def test_unknown_ids_are_not_found(stub: support_pb2_grpc.SupportStub) -> None:
    calls = [
        lambda: stub.GetCustomerContext(
            support_pb2.CustomerContextRequest(customer_id="C999999999")),
        lambda: stub.Recommend(support_pb2.RecommendRequest(customer_id="nobody")),
        lambda: stub.Recommend(support_pb2.RecommendRequest(product_ids=["NOPE-1"])),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.Recommend(support_pb2.RecommendRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_reload_data_swaps_the_snapshot(server_overrides: dict, tmp_path: Path) -> None:
    from server.demo.generate import generate

    shop = tmp_path / "shop-xs"
    generate(shop, "XS", seed=11)
    srv = ServerThread({**server_overrides,
                        "retrieval": {"index_dir": str(tmp_path / "index")}}).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            admin = admin_pb2_grpc.AdminStub(ch)
            support = support_pb2_grpc.SupportStub(ch)
            before = support.GetCustomerContext(
                support_pb2.CustomerContextRequest(customer_id="C000001")).snapshot_id
            resp = admin.ReloadData(admin_pb2.ReloadDataRequest(data_dir=str(shop)), timeout=120)
            assert resp.previous_snapshot_id == before
            assert resp.snapshot_id.startswith("snap-") and resp.snapshot_id != before
            customers = resp.counts["customers"]
            assert customers.read == customers.accepted + customers.quarantined + customers.merged
            assert customers.accepted == 200 and resp.index_action == "built"
            after = support.GetCustomerContext(
                support_pb2.CustomerContextRequest(customer_id="C000001"))
            assert after.snapshot_id == resp.snapshot_id
            with pytest.raises(grpc.RpcError) as err:
                admin.ReloadData(admin_pb2.ReloadDataRequest(data_dir=str(tmp_path / "nope")))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            still = support.GetCustomerContext(
                support_pb2.CustomerContextRequest(customer_id="C000001")).snapshot_id
            assert still == resp.snapshot_id  # a failed reload leaves the shop in force
    finally:
        srv.stop()
