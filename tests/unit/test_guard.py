"""Stream guard: holdback at every split point, redact rules, block rules with fallback."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from server.governance.guard import GuardStep, OrderFact, OutputChecks, StreamGuard
from server.governance.policy import Policy, load_policy

FACTS = {
    "A1001": OrderFact("shipped"),
    "A1002": OrderFact("delivered", date(2026, 11, 12)),
    "B20001": OrderFact("processing"),
}
FILLER = "Thanks for waiting while I looked into this for you today. "


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def rules(policy: Policy) -> OutputChecks:
    return OutputChecks(policy)


def run(
    rules: OutputChecks, pieces: list[str], facts=FACTS, allow=()
) -> tuple[str, list[GuardStep]]:
    guard = StreamGuard(rules.policy, facts, allow, rules=rules)
    steps = []
    for piece in pieces:
        steps.append(guard.feed(piece))
        if steps[-1].stop:
            return "".join(s.emit for s in steps), steps
    steps.append(guard.finish())
    return "".join(s.emit for s in steps), steps


def splits(text: str):
    yield [text]
    for k in range(1, len(text)):
        yield [text[:k], text[k:]]


def prefixes_emitted(rules: OutputChecks, text: str, k: int, facts=FACTS) -> list[str]:
    """Cumulative emitted text after each feed, for a two-piece split at k."""
    guard = StreamGuard(rules.policy, facts, (), rules=rules)
    seen, acc = [], ""
    for piece in (text[:k], text[k:]):
        acc += guard.feed(piece).emit
        seen.append(acc)
    return seen


@pytest.mark.parametrize(
    ("secret", "placeholder"),
    [
        ("+44 20 7946 0958", "[PHONE]"),
        ("help.desk@shop.example.com", "[EMAIL]"),
        (  # longer than the holdback: only token stickiness keeps it whole
            "customer.service.returns.and.refunds.team@warehouse-logistics-"
            "north.fulfilment.example-shop-group.co.uk",
            "[EMAIL]",
        ),
        ("4111 1111 1111 1111", "[CARD]"),
        ("DE89 3704 0044 0532 0130 00", "[IBAN]"),
        ("221B Baker St.", "[ADDRESS]"),
    ],
)
def test_split_pii_is_redacted_at_every_split_point(
    rules: OutputChecks, secret: str, placeholder: str
) -> None:
    text = FILLER * 2 + f"Reach us at {secret} any time. " + FILLER * 2
    expected = text.replace(secret, placeholder)
    for pieces in splits(text):
        out, steps = run(rules, pieces)
        assert out == expected
        assert not any(s.stop for s in steps)
        assert [v.rule for s in steps for v in s.violations] == ["pii"]
        assert all(secret not in s.emit for s in steps)


def test_partial_emission_is_always_a_prefix_of_the_final_text(rules: OutputChecks) -> None:
    secret = "0049 30 1234567"
    text = FILLER * 3 + f"call {secret} " + FILLER * 3
    expected = text.replace(secret, "[PHONE]")
    for k in range(1, len(text)):
        for emitted in prefixes_emitted(rules, text, k):
            assert expected.startswith(emitted)
            # Not even a leading fragment of the number leaves before it is judged.
            assert "0049 30" not in emitted
    # Holdback is real: the first feed of a long text emits, but keeps a tail back.
    first = prefixes_emitted(rules, text, len(text) - 1)[0]
    assert 0 < len(first) <= len(text) - rules.holdback


@pytest.mark.parametrize("phrase", ["calm down", "Calm  Down"])
def test_banned_phrase_redacted_at_every_split(rules: OutputChecks, phrase: str) -> None:
    text = FILLER + f"Please {phrase}, we are on it. " + FILLER
    expected = text.replace(phrase, rules.policy.output.banned_phrase_placeholder)
    for pieces in splits(text):
        out, steps = run(rules, pieces)
        assert out == expected
        assert any(
            v.rule == "banned_phrase" and v.action == "redact" for s in steps for v in s.violations
        )


def test_competitor_blocks_at_every_split(rules: OutputChecks) -> None:
    text = FILLER * 3 + "You may find it cheaper at Zalando right now. " + FILLER
    for pieces in splits(text):
        out, steps = run(rules, pieces)
        assert steps[-1].stop and steps[-1].fallback == rules.policy.output.fallback_message
        assert "Zalando" not in out
        assert [v.rule for v in steps[-1].violations] == ["competitor"]


def test_competitor_redact_mode(policy: Policy) -> None:
    redacting = msgspec.structs.replace(
        policy, output=msgspec.structs.replace(policy.output, competitor_action="redact")
    )
    r = OutputChecks(redacting)
    out, steps = run(r, ["Unlike eB", "ay we ship free."])
    assert out == "Unlike [REMOVED] we ship free."
    assert not steps[-1].stop


def test_competitor_needs_word_boundaries(rules: OutputChecks) -> None:
    out, steps = run(rules, ["The Ottoman footstool is back in stock."])
    assert out == "The Ottoman footstool is back in stock." and not steps[-1].stop


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Good news: we will refund €250.00 to your card.", "refund_amount"),
        ("Good news: a refund of 1.299,00 € is on its way.", "refund_amount"),
        ("As a goodwill gesture we added a coupon.", "compensation_offer"),
        ("I'll give you a voucher for the trouble.", "compensation_offer"),
        ("Your parcel is guaranteed to arrive by tomorrow.", "delivery_guarantee"),
        ("It will definitely arrive on Friday.", "delivery_guarantee"),
        ("Your order A9999 is on its way.", "unknown_order"),
        ("Order A1001 has been delivered.", "order_status"),
        ("Order B20001 was dispatched this morning.", "order_status"),
        ("Order A1002 is out for delivery.", "order_status"),
        ("Order A1002 was delivered on 2026-11-14.", "order_date"),
    ],
)
def test_blocks_with_fallback_at_every_split(rules: OutputChecks, text: str, rule: str) -> None:
    full = FILLER + text + " " + FILLER
    for pieces in splits(full):
        out, steps = run(rules, pieces)
        last = steps[-1]
        assert last.stop, (pieces, out)
        assert last.fallback == rules.policy.output.fallback_message
        assert [v.rule for v in last.violations] == [rule]
        assert all(v.action == "block" for v in last.violations)
        assert text not in out
        assert FILLER.startswith(out) or out.startswith(FILLER)


@pytest.mark.parametrize(
    "text",
    [
        "We will refund €120.00 to your card.",
        "Your order total was €250.00.",
        "Your order total was €250.00. We refund €40.00 of shipping.",
        "Order A1001 has shipped and is in transit.",
        "Order A1002 was delivered on 2026-11-12.",
        "Order A1001 has not been delivered yet.",
        "Order A1002 was delivered. Order A1001 is on its way.",
        "Order B20001 is being prepared.",
        "SKU-PH-0012 and #458812 are not order ids of this shop.",
        "Delivery usually takes 2-3 days, but we cannot guarantee a date.",
    ],
)
def test_true_or_harmless_statements_pass(rules: OutputChecks, text: str) -> None:
    full = FILLER + text + " " + FILLER
    for pieces in splits(full):
        out, steps = run(rules, pieces)
        assert out == full and not any(s.stop for s in steps), pieces


def test_order_checks_need_a_facts_view(rules: OutputChecks) -> None:
    text = "Order A9999 has been delivered."
    out, steps = run(rules, [text], facts=None)
    assert out == text and not steps[-1].stop


def test_allowed_ids_are_not_redacted(rules: OutputChecks) -> None:
    text = FILLER + "Your reference 4929731275936284 is noted. " + FILLER
    out, _ = run(rules, [text[:70], text[70:]], allow={"4929731275936284"})
    assert out == text
    out, _ = run(rules, [text[:70], text[70:]])
    assert "[CARD]" in out


def test_after_a_block_nothing_more_is_emitted(rules: OutputChecks) -> None:
    guard = StreamGuard(rules.policy, FACTS, (), rules=rules)
    step = guard.feed(FILLER + "Buy it at Amazon instead. " + FILLER)
    assert step.stop and step.emit == ""
    later = guard.feed("more text " * 50)
    assert later.stop and later.emit == "" and later.fallback
    assert guard.finish().stop


def test_a_huge_token_is_released_eventually(rules: OutputChecks) -> None:
    blob = "x" * 6000
    guard = StreamGuard(rules.policy, None, (), rules=rules)
    emitted = guard.feed(blob).emit
    assert 0 < len(emitted) <= len(blob) - rules.holdback
    assert emitted + guard.finish().emit == blob
