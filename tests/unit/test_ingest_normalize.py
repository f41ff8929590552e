"""Field normalizers: each accepted spelling maps to one canonical value, the rest raise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.knowledge.shop import normalize as n
from server.knowledge.shop.normalize import RowError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.5", 12.5),
        ("1,299.00", 1299.0),
        ("$12.50", 12.5),
        ("€1,299.00", 1299.0),
        ("12,50 EUR", 12.5),
        ("EUR 12.50", 12.5),
        ("1.299,95", 1299.95),
        ("1,299", 1299.0),
        (" 7 ", 7.0),
        (3, 3.0),
        (19.999, 20.0),
        ("0", 0.0),
    ],
)
def test_money_accepts_common_spellings(raw: object, expected: float) -> None:
    assert n.money(raw, "price") == expected


@pytest.mark.parametrize("raw", ["-5", "-$5.00", "abc", "", None, "nan", True, "1.2.3"])
def test_money_rejects_negative_and_garbage(raw: object) -> None:
    with pytest.raises(RowError):
        n.money(raw, "price")


def test_money_reason_names_negative() -> None:
    with pytest.raises(RowError, match="negative price"):
        n.money("-1.00", "price")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 10:00:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 12:30:00+0200", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_timestamp_to_aware_utc(raw: str, expected: datetime) -> None:
    got = n.timestamp(raw, "at")
    assert got == expected
    assert got is not None and got.tzinfo is UTC


def test_timestamp_rejects_and_optional() -> None:
    with pytest.raises(RowError, match="bad date"):
        n.timestamp("31/02/2026", "at")
    with pytest.raises(RowError, match="missing at"):
        n.timestamp("  ", "at")
    assert n.timestamp("", "at", optional=True) is None


def test_currency() -> None:
    assert n.currency(" eur ") == "EUR"
    assert n.currency("€") == "EUR"
    for bad in ("XYZ", "EURO", "", "E1R"):
        with pytest.raises(RowError, match="unknown currency"):
            n.currency(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("electronics > phones", "Electronics/Phones"),
        ("Electronics/phones/", "Electronics/Phones"),
        ("home & kitchen | coffee  machines", "Home & Kitchen/Coffee Machines"),
        ("Electronics/TV", "Electronics/TV"),
        ("", ""),
    ],
)
def test_category_paths(raw: str, expected: str) -> None:
    assert n.category(raw) == expected


def test_email() -> None:
    assert n.email("  Anna.Schmidt@Example.COM ") == "anna.schmidt@example.com"
    assert n.email("mailto:a@b.de") == "a@b.de"
    for bad in ("no-at-sign", "a@b", "@b.com", "a@@b.com", "a b@c.com", "a@b.c", ""):
        with pytest.raises(RowError, match="invalid email"):
            n.email(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+49 (151) 234-5678", "+491512345678"),
        ("0049 151 2345678", "+491512345678"),
        ("030 1234567", "0301234567"),
        ("n/a", ""),
        ("", ""),
    ],
)
def test_phone(raw: str, expected: str) -> None:
    assert n.phone(raw) == expected


def test_phone_rejects_wrong_length() -> None:
    for bad in ("12", "+1234567890123456"):
        with pytest.raises(RowError, match="invalid phone"):
            n.phone(bad)


def test_text_cleanup() -> None:
    assert n.text("  Caf&eacute;\x00  &amp;\tBar\n ") == "Café & Bar"
    assert n.text("Size&nbsp;M") == "Size M"
    body = "## Title\r\n\r\n\r\n  first   line \x07\nsecond\n\n\n\nend  "
    assert n.text(body, multiline=True) == "## Title\n\nfirst line\nsecond\n\nend"


def test_statuses() -> None:
    assert n.order_status("Delivered") == "delivered"
    assert n.order_status(" IN_TRANSIT ") == "shipped"
    assert n.order_status("canceled") == "cancelled"
    assert n.refund_status("Declined") == "rejected"
    with pytest.raises(RowError, match="unknown order status"):
        n.order_status("teleported")
    with pytest.raises(RowError, match="unknown refund status"):
        n.refund_status("")


def test_lists_ints_bools_and_keys() -> None:
    assert n.str_list(" a | b|a||c ") == ("a", "b", "c")
    assert n.str_list(["x", " y", "x"]) == ("x", "y")
    assert n.integer("3.0", "q") == 3
    assert n.integer("", "q", default=0) == 0
    with pytest.raises(RowError):
        n.integer("0", "q", minimum=1)
    with pytest.raises(RowError):
        n.integer("2.5", "q")
    assert n.boolean("No", "b", default=True) is False
    assert n.boolean("", "b", default=True) is True
    assert n.sku_key(" phn-0001 ") == n.sku_key("PHN0001") == "PHN0001"
    assert n.match_key("Café  Crème!") == "cafe creme"
