"""The conversation state machine: follow-ups carry the order, an answer to a clarifying
question resumes its intent, idle state expires; and its storage in the record store,
which survives a restart and counts repeat contacts per issue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from server.conversation.linker import Link
from server.conversation.state import ConversationState, Turn, after_turn, begin, expired
from server.conversation.turns import Conversations, TurnPlan, issue_key, plan_turn
from server.records.conversations import ConversationStore
from server.records.store import RecordStore
from tests.unit.test_linker import NOW, ORDERS, PRODUCTS


def _fresh(customer: str = "C1") -> ConversationState:
    return begin(None, "conv-1", customer, NOW, 1800)


def _answered(state: ConversationState, plan: TurnPlan, text: str) -> ConversationState:
    turn = Turn(NOW.isoformat(), text, plan.intent, plan.link.order_id, plan.link.product_id,
                "automated", bool(plan.question))
    return after_turn(state, turn, Link() if plan.question else plan.link, plan.open_question)


def _plan(state: ConversationState, text: str, intent: str) -> TurnPlan:
    return plan_turn(state, text, intent, ORDERS, PRODUCTS, NOW, known_customer=True)


def test_follow_up_keeps_the_order_of_the_turn_before() -> None:
    s = _fresh()
    first = _plan(s, "Where is my order O0000854?", "order_status")
    assert first.link.order_id == "O0000854" and not first.question
    s = _answered(s, first, "Where is my order O0000854?")
    follow = _plan(s, "and can I still return it?", "return_item")
    assert (follow.link.order_id, follow.link.how, follow.question) == ("O0000854", "state", "")
    # A new reference wins over the state.
    assert _plan(s, "and my shoes?", "return_item").link.product_id == "SHO-0001"


def test_ambiguous_request_asks_and_the_answer_resumes_its_intent() -> None:
    s = _fresh()
    ask = _plan(s, "I want to return the Dark Chocolate 85% 100 g x5", "return_item")
    assert ask.question.startswith("Which order do you mean: O0000855")
    assert "O0000854" in ask.question and "Dark Chocolate" in ask.question
    assert ask.open_question is not None and ask.open_question.intent == "return_item"
    s = _answered(s, ask, "I want to return the Dark Chocolate 85% 100 g x5")
    assert s.open_question is not None and "order_id" not in s.slots
    # The answer is classified as anything; the plan continues the question's intent.
    answer = _plan(s, "the second one", "product_question")
    assert (answer.intent, answer.link.order_id, answer.resumed) == ("return_item", "O0000854",
                                                                     True)
    s = _answered(s, answer, "the second one")
    assert s.open_question is None and s.slots["order_id"] == "O0000854"
    assert s.slots["product_id"] == "CHO-0001"


def test_no_question_when_the_facts_or_the_intent_need_no_order() -> None:
    s = _fresh()
    assert _plan(s, "do you ship to Canada?", "delivery_options").question == ""
    assert _plan(s, "how do returns work?", "return_item").question == ""
    refunds = plan_turn(s, "where is my refund?", "refund_status", ORDERS, PRODUCTS, NOW,
                        known_customer=True, facts_answer=True)
    assert refunds.question == ""
    latest = _plan(s, "where is my last order?", "order_status")
    assert latest.question == "" and latest.link.order_id == "O0000863"


def test_open_order_is_the_one_meant_else_ask() -> None:
    s = _fresh()
    # O0000863 was delivered 4 days before NOW: the one open order.
    plan = _plan(s, "where is my order?", "order_status")
    assert (plan.link.order_id, plan.link.how) == ("O0000863", "recent")
    old = plan_turn(s, "where is my order?", "order_status", ORDERS[1:], PRODUCTS, NOW,
                    known_customer=True)
    assert old.question.startswith("Which order do you mean: O0000858")


def test_visitor_is_asked_for_the_order_number_then_answered() -> None:
    s = begin(None, "conv-2", "", NOW, 1800)
    ask = plan_turn(s, "where is my parcel?", "order_status", [], PRODUCTS, NOW,
                    known_customer=False)
    assert ask.question == "Could you share your order number so I can look it up?"
    s = _answered(s, ask, "where is my parcel?")
    by_id = {o.order_id: o for o in ORDERS}
    answer = plan_turn(s, "it is O0000858", "product_question", [], PRODUCTS, NOW,
                       known_customer=False, lookup_order=by_id.get)
    assert (answer.intent, answer.link.order_id, answer.question) == ("order_status",
                                                                      "O0000858", "")


def test_state_expires_after_idle_time_and_is_per_customer() -> None:
    s = _fresh()
    s = _answered(s, _plan(s, "order 854", "order_status"), "order 854")
    later = NOW + timedelta(seconds=1801)
    assert expired(s, later, 1800) and not expired(s, NOW + timedelta(seconds=60), 1800)
    assert begin(s, "conv-1", "C1", later, 1800).slots == {}
    assert begin(s, "conv-1", "C1", NOW, 1800).slots["order_id"] == "O0000854"
    assert begin(s, "conv-1", "C2", NOW, 1800).slots == {}


def test_issue_key_is_family_and_item() -> None:
    s = _fresh()
    ret = _plan(s, "return order 854", "return_item")
    dmg = _plan(s, "order 854 arrived damaged", "damaged_item")
    assert issue_key(ret.intent, ret.link) == issue_key(dmg.intent, dmg.link) == "return|O0000854"
    status = _plan(s, "where is order 854", "order_status")
    assert issue_key(status.intent, status.link) == "delivery|O0000854"
    assert issue_key("delivery_options", _plan(s, "do you ship to Canada?",
                                               "delivery_options").link) == ""


async def test_state_survives_a_restart_and_holds_only_redacted_text(records_url: str) -> None:
    records = RecordStore(url=records_url)
    await records.start()
    convs = Conversations(ConversationStore(records), idle_s=1800)
    now = datetime.now(UTC)
    s = await convs.begin("conv-9", "C1", now)
    plan = _plan(s, "my email is [EMAIL], where is order 854?", "order_status")
    await convs.finish(s, plan, "dec-1", "conv-9", "my email is [EMAIL], where is order 854?",
                       "automated", now)
    await records.close()
    records = RecordStore(url=records_url)  # a new process on the same database
    await records.start()
    convs = Conversations(ConversationStore(records), idle_s=1800)
    again = await convs.begin("conv-9", "C1", now + timedelta(seconds=5))
    assert again.slots["order_id"] == "O0000854"
    assert again.turns[0].text.startswith("my email is [EMAIL]")
    raw = await convs.store.load("conv-9")
    assert raw is not None and msgspec.json.decode(raw)["customer_id"] == "C1"
    await records.close()


async def test_repeat_contacts_are_counted_per_issue_not_per_message(records_url: str) -> None:
    records = RecordStore(url=records_url)
    await records.start()
    convs = Conversations(ConversationStore(records))
    now = datetime.now(UTC)
    since = now - timedelta(days=14)
    s = begin(None, "", "C1", now, 1800)
    ret = _plan(s, "return order 854", "return_item")
    for i in range(3):  # three conversations about returning order 854
        await convs.finish(begin(None, f"c{i}", "C1", now, 1800), ret, f"d{i}", f"c{i}",
                           "return order 854", "automated", now)
    # A second turn in one of them is the same contact, not another one.
    await convs.finish(begin(None, "c0", "C1", now, 1800), ret, "d9", "c0", "again", "automated",
                       now)
    assert await convs.repeat_contacts("C1", ret, "c-new", since) == 3
    assert await convs.repeat_contacts("C1", ret, "c0", since) == 2  # not counting itself
    # Another topic, another order or another customer: not a repeat.
    other = _plan(s, "where is order 854", "order_status")
    assert await convs.repeat_contacts("C1", other, "c-new", since) == 0
    assert await convs.repeat_contacts("C1", _plan(s, "return order 855", "return_item"),
                                       "c-new", since) == 0
    assert await convs.repeat_contacts("C2", ret, "c-new", since) == 0
    assert await convs.repeat_contacts("C1", ret, "c-new", now + timedelta(seconds=1)) == 0
    general = _plan(s, "do you ship to Canada?", "delivery_options")
    assert await convs.repeat_contacts("C1", general, "c-new", since) == 0
    await records.close()


def test_an_item_word_that_matches_nothing_is_asked_about_not_guessed() -> None:
    s = _fresh()
    # O0000863 is the one open order, but "sneakers" names none of the customer's items.
    plan = _plan(s, "my sneakers are too small, can I return them?", "return_item")
    assert plan.link.order_id in ("", "O0000863") and plan.question.startswith("Which order")
    # Words about the request, not the item, still let the open order be the one meant.
    assert _plan(s, "where is my order? it's urgent", "order_status").link.order_id == (
        "O0000863")


def test_an_order_number_that_is_not_theirs_is_said_and_asked_about() -> None:
    plan = _plan(_fresh(), "where is order 999?", "order_status")
    assert plan.link.unknown_ids == ["999"] and plan.link.order_id == ""
    assert plan.question.startswith("I could not find that order number among your orders.")
    assert "999" not in plan.question and "O0000863" in plan.question


async def test_idle_conversations_are_purged_and_their_contacts_kept(records_url: str) -> None:
    records = RecordStore(url=records_url)
    await records.start()
    convs = Conversations(ConversationStore(records), idle_s=1800)
    now = datetime.now(UTC)
    ret = _plan(begin(None, "", "C1", now, 1800), "return order 854", "return_item")
    for conv, at in (("old", now - timedelta(hours=2)), ("fresh", now - timedelta(minutes=5))):
        await convs.finish(begin(None, conv, "C1", at, 1800), ret, f"d-{conv}", conv,
                           "return order 854", "automated", at)
    assert await convs.purge_idle(now) == 1
    assert await convs.store.load("old") is None
    assert await convs.store.load("fresh") is not None
    assert await convs.purge_idle(now) == 0
    # The purged conversation still counts as an earlier contact about the issue.
    assert await convs.repeat_contacts("C1", ret, "new", now - timedelta(days=1)) == 2
    await records.close()
