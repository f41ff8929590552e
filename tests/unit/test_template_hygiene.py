"""Template hygiene: every composer plan, with every order status, refund status and
channel, over the demo shop's own help-center articles, produces text without a raw
status label ("Requested: ..."), a placeholder or an empty slot; and passages written
for other products are kept out of an answer about a linked item."""

from __future__ import annotations

import itertools
import re

import pytest

from server.demo.articles import ARTICLES, unwrap
from server.generation.base import CHANNELS, Fact, Grounding, PassageRef
from server.generation.composer import GroundedComposer
from server.generation.facts_text import passage_sentences
from server.generation.plans import PLANS
from server.knowledge.shop.schema import ORDER_STATUSES, REFUND_STATUSES
from server.pipeline.grounding import CatalogView, passage_fits

LABELS = tuple(s.capitalize() for s in (*ORDER_STATUSES, *REFUND_STATUSES))
LABEL = re.compile(rf"(?:^|[.!?]\s+|\n)(?:{'|'.join(LABELS)})\s*:", re.MULTILINE)
PLACEHOLDER = re.compile(r"\{[^}]*\}|\bNone\b|\bnan\b|\[[A-Z_]+\]|<[a-z_]+>|\s[.,]|\.\.(?!\.)"
                         r"|\b(?:of|on|until|for|is)\s*[.,]")
PASSAGES = [PassageRef(f"{aid}#0", aid, "article", title, unwrap(body), 0.9 - i * 0.001)
            for i, (aid, title, _tags, _cats, body) in enumerate(ARTICLES)]


def _facts(status: str, refund: str) -> list[Fact]:
    dates = {"ordered_at": "2026-10-01T10:00:00Z"}
    if status in ("shipped", "delivered", "returned"):
        dates["shipped_at"] = "2026-10-02T10:00:00Z"
    if status in ("delivered", "returned"):
        dates["delivered_at"] = "2026-10-04T10:00:00Z"
    eligible = status == "delivered"
    return [
        Fact("order", "O0000854", "order", f"Order O0000854 is {status}.",
             {"status": status, **dates, "total": 144.0, "currency": "EUR", "items": 1}),
        Fact("return_eligibility", "O0000854", "order", "Shoes: eligibility.",
             {"order_id": "O0000854", "product_id": "SHO-0001",
              "title": "Stride Road Running Shoes", "eligible": eligible,
              "code": "eligible" if eligible else "not_delivered",
              "reason": "" if eligible else "The order has not been delivered yet.",
              "deadline": "2026-11-03T23:59:59Z" if eligible else None,
              "policy_id": "pol-returns", "policy_version": "1"}),
        Fact("refund", "O0000854", "return", f"Refund is {refund}.",
             {"order_id": "O0000854", "product_id": "SHO-0001", "title": "Shoes",
              "refund_status": refund, "amount": 119.0, "currency": "EUR"}),
        Fact("warranty", "W1", "warranty", "Warranty.",
             {"order_id": "O0000854", "product_id": "SHO-0001", "title": "Shoes",
              "expires_at": "2027-10-04T10:00:00Z", "days_left": 300, "active": True,
              "claim_status": None, "kind": "manufacturer"}),
        Fact("product", "SHO-0001", "product", "Shoes cost 119.00 EUR.",
             {"title": "Stride Road Running Shoes", "in_stock": True, "price": 119.0,
              "currency": "EUR"}),
    ]


@pytest.mark.parametrize("intent", sorted(PLANS))
def test_no_status_label_or_placeholder_reaches_the_text(intent: str) -> None:
    composer = GroundedComposer(max_refund_statement=150.0)
    checked = 0
    for status, refund, channel, k in itertools.product(
            ORDER_STATUSES, REFUND_STATUSES, CHANNELS, range(0, len(PASSAGES), 7)):
        # Each article in turn is the best passage, so every article's sentences are tried.
        passages = [PASSAGES[k], *PASSAGES[k + 1:k + 2]]
        g = Grounding(intent=intent, confidence=0.9, channel=channel, customer_name="Ana Ruiz",
                      message="about my order", facts=_facts(status, refund),
                      passages=passages, linked_order_id="O0000854")
        text = "".join(c.text for c in composer.compose(g))
        assert not LABEL.search(text), (intent, status, refund, channel, text)
        assert not PLACEHOLDER.search(text), (intent, status, refund, channel, text)
        checked += 1
    assert checked == len(ORDER_STATUSES) * len(REFUND_STATUSES) * len(CHANNELS) * len(
        range(0, len(PASSAGES), 7))


def test_glossary_entries_are_never_quoted() -> None:
    body = dict((a[0], unwrap(a[4])) for a in ARTICLES)["kb-refund-status"]
    assert "Requested: we have registered your return." in body
    sentences = passage_sentences(body)
    assert sentences and not any(LABEL.search(s) or s.startswith("Requested") for s in sentences)


def test_a_question_replaces_the_answer() -> None:
    g = Grounding(intent="return_item", confidence=0.9, channel="chat", customer_name="Ana",
                  message="return the chocolate", facts=_facts("delivered", "requested"),
                  passages=PASSAGES[:2], question="Which order do you mean: O1 or O2?")
    chunks = GroundedComposer().compose(g)
    assert "".join(c.text for c in chunks) == "Hi Ana! Which order do you mean: O1 or O2?"


def test_passages_for_other_products_do_not_fit_the_linked_item() -> None:
    catalog = CatalogView({}, {"kb-return-electronics": ("AUD-0005", "Electronics",
                                                         "Computers"),
                               "pol-electronics": ("Electronics",)})
    chair = ("CHR-0001", "Office/Furniture")
    phone = ("PHN-0001", "Electronics/Phones")
    assert not passage_fits(catalog, "kb-return-electronics", chair)
    assert passage_fits(catalog, "kb-return-electronics", phone)
    assert passage_fits(catalog, "pol-electronics", phone)
    assert not passage_fits(catalog, "pol-electronics", chair)
    assert passage_fits(catalog, "kb-how-to-return", chair)  # written for everything
    assert passage_fits(catalog, "kb-return-electronics", ())  # nothing linked
