"""The reference linker: ids in free forms, product mentions, dates, "the last one",
ambiguity, and answers to a clarifying question."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.conversation.linker import (
    ProductInfo,
    content_words,
    explicit_order_ids,
    link,
    mask_order_refs,
    mask_titles,
    months_named,
    resolve_answer,
)
from server.knowledge.graph.facts import OrderFacts, OrderItemFacts

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
PRODUCTS = {
    "SHO-0001": ProductInfo("Stride Road Running Shoes", "Stride", "Sports/Running"),
    "CHO-0001": ProductInfo("Dark Chocolate 85% 100 g x5", "Cacao Lane", "Grocery/Snacks"),
    "CHR-0001": ProductInfo("ErgoSeat Office Chair", "ErgoSeat", "Office/Furniture"),
    "FLT-0001": ProductInfo("HEPA Filter for Cyclo Compact", "Cyclo",
                            "Home & Kitchen/Vacuums/Supplies"),
    "AUD-0001": ProductInfo("Novaphone Buds Wireless Earbuds", "Novaphone", "Electronics/Audio"),
}


def _order(oid: str, day: str, *pids: str) -> OrderFacts:
    at = datetime.fromisoformat(day).replace(tzinfo=UTC)
    items = [OrderItemFacts(p, PRODUCTS[p].title, 1, 10.0, False) for p in pids]
    return OrderFacts(oid, "delivered", at, at, at, 10.0 * len(pids), "EUR", items)


# Newest first, as Facts.customer_orders returns them.
ORDERS = [
    _order("O0000863", "2026-11-11", "FLT-0001"),
    _order("O0000858", "2026-05-29", "CHR-0001", "AUD-0001"),
    _order("O0000855", "2026-03-26", "CHO-0001"),
    _order("O0000854", "2026-02-13", "SHO-0001", "CHO-0001"),
]


@pytest.mark.parametrize("text", [
    "Where is my order O0000854?", "where is o854", "status of order 854 please",
    "order no. 854", "order number 854", "order #854", "my order #854", "#854 hasn't arrived",
    "what about O854?", "ORDER 0854",
])
def test_explicit_ids_in_free_forms(text: str) -> None:
    got = link(text, ORDERS, PRODUCTS, NOW)
    assert (got.order_id, got.how, got.confidence, got.ambiguous) == ("O0000854", "id", 1.0,
                                                                      False)


def test_ids_of_other_customers_and_plain_numbers() -> None:
    ids, unknown = explicit_order_ids("order 999 and O0000123", ORDERS)
    assert ids == [] and set(unknown) == {"999", "O0000123"}
    # A number that is not introduced as an order is a quantity, not a reference.
    assert link("I bought 854 of them", ORDERS, PRODUCTS, NOW).order_id == ""


def test_id_and_product_picks_the_item_of_that_order() -> None:
    got = link("the chocolate from order 854 is broken", ORDERS, PRODUCTS, NOW)
    assert (got.order_id, got.product_id) == ("O0000854", "CHO-0001")


@pytest.mark.parametrize("text,order,product", [
    ("I want to return my shoes", "O0000854", "SHO-0001"),
    ("the running shoe", "O0000854", "SHO-0001"),
    ("my office chair wobbles", "O0000858", "CHR-0001"),
    ("the earbuds", "O0000858", "AUD-0001"),
    ("my novaphone", "O0000858", "AUD-0001"),  # brand
    ("the vacuum filter", "O0000863", "FLT-0001"),
    ("the erbuds I got", "O0000858", "AUD-0001"),  # a typo
])
def test_product_mentions(text: str, order: str, product: str) -> None:
    got = link(text, ORDERS, PRODUCTS, NOW)
    assert (got.order_id, got.product_id, got.how, got.ambiguous) == (order, product,
                                                                      "product", False)
    assert got.confidence >= 0.5


def test_same_product_in_two_orders_is_ambiguous_and_lists_both() -> None:
    got = link("I want to return the Dark Chocolate 85% 100 g x5", ORDERS, PRODUCTS, NOW)
    assert got.ambiguous and got.how == "product"
    assert [c.order_id for c in got.candidates] == ["O0000855", "O0000854"]
    assert all(c.product_id == "CHO-0001" for c in got.candidates)


def test_dates_and_latest_narrow_the_choice() -> None:
    march = link("the chocolate I bought in March", ORDERS, PRODUCTS, NOW)
    assert (march.order_id, march.ambiguous) == ("O0000855", False)
    assert link("the one I bought in February", ORDERS, PRODUCTS, NOW).order_id == "O0000854"
    assert link("the last chocolate I bought", ORDERS, PRODUCTS, NOW).order_id == "O0000855"
    latest = link("where is my last order?", ORDERS, PRODUCTS, NOW)
    assert (latest.order_id, latest.how) == ("O0000863", "latest")
    assert months_named("bought on 13 February", NOW) == {(2026, 2)}
    assert months_named("in December 2025", NOW) == {(2025, 12)}
    assert months_named("in December", NOW) == {(2025, 12)}  # the latest December
    assert months_named("may I return it", NOW) == set()  # "may" the verb


def test_no_reference_links_nothing_but_offers_recent_candidates() -> None:
    got = link("can I still return it?", ORDERS, PRODUCTS, NOW)
    assert got.order_id == "" and got.how == "none"
    assert [c.order_id for c in got.candidates] == ["O0000863", "O0000858", "O0000855"]
    assert content_words("can I still return it?") == []


def test_embedding_similarity_only_when_no_word_matches() -> None:
    sims = {"SHO-0001": 0.72, "CHO-0001": 0.1}
    got = link("my sneakers", ORDERS, PRODUCTS, NOW, similarity=sims)
    assert (got.order_id, got.product_id) == ("O0000854", "SHO-0001")
    assert got.confidence < 0.6  # below any word match
    words = link("my chocolate", ORDERS, PRODUCTS, NOW, similarity=sims)
    assert words.product_id == "CHO-0001"


@pytest.mark.parametrize("answer,order", [
    ("the second one", "O0000854"), ("2", "O0000854"), ("first", "O0000855"),
    ("O0000854", "O0000854"), ("855", "O0000855"), ("the one from March", "O0000855"),
    ("the last one", "O0000854"),
])
def test_answers_to_a_clarifying_question(answer: str, order: str) -> None:
    cands = link("return the chocolate", ORDERS, PRODUCTS, NOW).candidates
    picked = resolve_answer(answer, cands, PRODUCTS, NOW)
    assert picked is not None and picked.order_id == order


def test_answer_by_title_and_answers_that_pick_nothing() -> None:
    cands = link("my order", ORDERS, PRODUCTS, NOW).candidates  # three latest orders
    picked = resolve_answer("the chocolate", cands, PRODUCTS, NOW)
    assert picked is not None and picked.order_id == "O0000855"
    assert resolve_answer("the chair", cands, PRODUCTS, NOW).order_id == "O0000858"  # type: ignore[union-attr]
    assert resolve_answer("do you ship to Canada?", cands, PRODUCTS, NOW) is None
    assert resolve_answer("the fifth one", cands, PRODUCTS, NOW) is None


def test_full_title_wins_and_titles_are_masked_for_the_classifier() -> None:
    products = {**PRODUCTS,
                "CAS-1": ProductInfo("Clear Case for Orbit 3", "Orbit", "Electronics/Cases"),
                "CAS-2": ProductInfo("Clear Case for Orbit 3 Mini", "Orbit", "Electronics/Cases")}
    orders = [_order("O0000900", "2026-10-01", "SHO-0001"),
              OrderFacts("O0000890", "delivered", NOW, NOW, NOW, 9.0, "EUR", [
                  OrderItemFacts("CAS-1", "Clear Case for Orbit 3", 1, 9.0, False)]),
              OrderFacts("O0000880", "delivered", NOW, NOW, NOW, 9.0, "EUR", [
                  OrderItemFacts("CAS-2", "Clear Case for Orbit 3 Mini", 1, 9.0, False)])]
    got = link("return the Clear Case for Orbit 3 Mini", orders, products, NOW)
    assert (got.order_id, got.product_id, got.ambiguous) == ("O0000880", "CAS-2", False)
    assert mask_titles("I want to return the Dark Chocolate 85% 100 g x5 please",
                       [p.title for p in PRODUCTS.values()]) == (
        "I want to return the item please")
    assert mask_titles("my shoes", ["Stride Road Running Shoes"]) == "my shoes"


@pytest.mark.parametrize("text,masked", [
    ("has order no. 5222 shipped?", "has order shipped?"),
    ("Where is my order O0000854?", "Where is my order?"),
    ("any news on order #11007?", "any news on order?"),
    ("I want a refund of €480 for order O0000854", "I want a refund of €480 for order"),
])
def test_order_numbers_are_masked_for_the_classifier(text: str, masked: str) -> None:
    assert mask_order_refs(text) == masked
