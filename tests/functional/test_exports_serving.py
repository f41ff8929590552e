"""A shop given as a real-shaped export is served: `data.dir` + `data.mapping`, no converter.

The server ingests the Online Retail II-shaped fixture (tests/data/exports/, written by
us in that export's layout) through its mapping file at start-up, and answers
GetCustomerContext over a real channel on port 0.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aftercare.v1 import support_pb2, support_pb2_grpc
from server.knowledge.shop.ingest import ingest_dir
from server.knowledge.shop.mapping import load_mapping
from tests.functional.harness import ServerThread

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
RETAIL = EXPORTS / "online-retail-ii"
OLIST = EXPORTS / "olist"


def _serve(overrides: dict, base: Path, data: dict) -> ServerThread:
    data = {**overrides["data"], **data, "quarantine_dir": str(base / "q")}
    return ServerThread({**overrides, "data": data,
                         "retrieval": {"index_dir": str(base / "index")}}).start()


@pytest.fixture(scope="module")
def retail(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[support_pb2_grpc.SupportStub]:
    srv = _serve(server_overrides, tmp_path_factory.mktemp("retail"),
                 {"dir": str(RETAIL), "mapping": str(RETAIL / "mapping.toml")})
    try:
        with grpc.insecure_channel(srv.address) as channel:
            yield support_pb2_grpc.SupportStub(channel)
    finally:
        srv.stop()


def test_a_transactions_export_is_served(retail: support_pb2_grpc.SupportStub) -> None:
    ctx = retail.GetCustomerContext(
        support_pb2.CustomerContextRequest(customer_id="17850"), timeout=30)
    expected = ingest_dir(RETAIL, mapping=load_mapping(RETAIL / "mapping.toml")).snapshot
    assert ctx.snapshot_id == expected.snapshot_id
    assert [o.order_id for o in ctx.orders] == ["581016", "581012", "581002", "581001"]
    first = ctx.orders[-1]
    assert (first.status, first.currency, first.total) == ("delivered", "GBP", 71.28)
    assert first.ordered_at.startswith("2010-12-01T08:26")
    assert ("85123A", 6, 2.55) in {(i.product_id, i.quantity, i.unit_price) for i in first.items}
    assert {i.title for i in first.items} >= {"WHITE METAL LANTERN"}
    # The credit note C581014 is a return of this customer's latest hearts (581012).
    hearts = next(i for i in ctx.orders[1].items if i.product_id == "85123A")
    assert not hearts.return_eligible and hearts.return_reason


def test_a_credit_note_without_its_purchase_is_a_cancelled_order(
    retail: support_pb2_grpc.SupportStub,
) -> None:
    ctx = retail.GetCustomerContext(
        support_pb2.CustomerContextRequest(customer_id="15311"), timeout=30)
    status = {o.order_id: o.status for o in ctx.orders}
    assert status == {"581007": "delivered", "C581006": "cancelled"}


def test_guest_lines_are_not_customers(retail: support_pb2_grpc.SupportStub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        retail.GetCustomerContext(support_pb2.CustomerContextRequest(customer_id=""), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        retail.GetCustomerContext(
            support_pb2.CustomerContextRequest(customer_id="581008"), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_multi_file_export_is_served_in_the_configured_currency(
    server_overrides: dict, tmp_path: Path,
) -> None:
    # The order with two units of one product; its customer id is Olist's per-order id.
    with (OLIST / "olist_orders_dataset.csv").open(newline="") as fh:
        order_id, customer_id = next(
            (row[0], row[1]) for row in csv.reader(fh) if row[3] == "2018-08-08 08:38:49")
    srv = _serve(server_overrides, tmp_path, {
        "dir": str(OLIST), "mapping": str(OLIST / "mapping.toml"), "currency": "BRL"})
    try:
        with grpc.insecure_channel(srv.address) as channel:
            ctx = support_pb2_grpc.SupportStub(channel).GetCustomerContext(
                support_pb2.CustomerContextRequest(customer_id=customer_id), timeout=30)
    finally:
        srv.stop()
    [summary] = ctx.orders
    assert (summary.order_id, summary.status, summary.currency) == (order_id, "delivered", "BRL")
    assert summary.total == 433.74  # two units at 199.00 plus 17.87 freight each
    assert [i.quantity for i in summary.items] == [1, 1]
    assert summary.delivered_at.startswith("2018-08-17")
    assert all(line.return_reason for line in summary.items)
