"""The column mapping on single rows: renames, collisions, value tables, date formats."""

from __future__ import annotations

import pytest

from server.knowledge.shop.mapping import ColumnMapping, parse_mapping
from server.knowledge.shop.normalize import RowError, required_timestamp

MAPPING = '''
date_format = "%d.%m.%Y"

[orders]
date_format = "%m/%d/%Y %H:%M %z"
[orders.columns]
order_id = "Order No"
customer_id = "buyer"
status = "State"
[orders.values.status]
"On Hold" = "processing"

[customers.columns]
customer_id = "buyer"
'''


def test_identity_mapping_leaves_rows_as_read() -> None:
    row = {"order_id": "O1", "Extra": "x"}
    assert ColumnMapping().mapper("orders").apply(row) is row


def test_columns_are_renamed_case_insensitively_and_collisions_lose() -> None:
    mapper = parse_mapping(MAPPING).mapper("orders")
    row = mapper.apply({"ORDER NO": "O1", "Buyer": "K1", "customer_id": "stale", "state": "x",
                        "note": "kept"})
    assert row == {"order_id": "O1", "customer_id": "K1", "status": "x", "note": "kept"}
    assert mapper.schema_columns(["Order No", "buyer", "customer_id", "ordered_at"]) == {
        "order_id", "customer_id", "ordered_at"}


def test_value_tables_translate_case_insensitively_and_keep_the_rest() -> None:
    mapper = parse_mapping(MAPPING).mapper("orders")
    assert mapper.apply({"State": " on hold "})["status"] == "processing"
    assert mapper.apply({"State": "shipped"})["status"] == "shipped"


def test_date_formats_per_file_override_the_file_wide_one() -> None:
    mapping = parse_mapping(MAPPING)
    order = mapping.mapper("orders").apply({"ordered_at": "12/1/2010 8:26 +0100",
                                            "shipped_at": ""})
    assert required_timestamp(order["ordered_at"], "ordered_at").isoformat() == (
        "2010-12-01T07:26:00+00:00")
    assert order["shipped_at"] == ""  # empty stays empty (optional dates)
    customer = mapping.mapper("customers").apply({"buyer": "K1", "created_at": "05.03.2026"})
    assert customer == {"customer_id": "K1", "created_at": "2026-03-05T00:00:00"}
    with pytest.raises(RowError, match=r"bad date in created_at: '2026-03-05' \(expected"):
        mapping.mapper("customers").apply({"created_at": "2026-03-05"})
