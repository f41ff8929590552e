"""One conversational turn: what it is about, whether to ask, and what to remember.

`plan_turn` is pure: from the stored state, the redacted text, the classified intent and
the customer's orders it decides the intent answered (a resumed question keeps its
intent), the link (server/conversation/linker.py, or the previous turn's order for a
follow-up) and the clarifying question, if one is needed (clarify.py). When nothing is
named and the intent needs an order: the customer's only order, else their one open
order (processing, shipped, or delivered in the last `recent_days`), else a question.

`Conversations` loads and stores the state through server/records/conversations.py
and counts repeat contacts per issue: same customer, same linked order or product,
same intent family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import msgspec

from server.conversation import clarify
from server.conversation.linker import Link, ProductInfo, candidate, content_words
from server.conversation.linker import link as link_text
from server.conversation.state import (
    ConversationState,
    FlowPosition,
    OpenQuestion,
    Turn,
    after_turn,
    begin,
    carry,
    resume,
)
from server.knowledge.graph.facts import OrderFacts
from server.records.conversations import ConversationStore

# Intents that are the same issue for the repeat-contact rule.
FAMILIES = {
    "order_status": "delivery", "missing_package": "delivery", "change_address": "delivery",
    "change_order": "order", "cancel_order": "order", "reorder": "order",
    "return_item": "return", "refund_status": "return", "damaged_item": "return",
    "wrong_item": "return", "complaint": "return",
    "warranty_claim": "warranty", "product_question": "product",
    "product_availability": "product", "payment_problem": "billing",
    "invoice_request": "billing",
}
OPEN_STATUSES = ("processing", "shipped")
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(ConversationState)


class TurnPlan(msgspec.Struct, frozen=True):
    intent: str  # the intent this turn answers
    link: Link
    question: str = ""  # "" = answer; else the clarifying question to ask
    open_question: OpenQuestion | None = None  # what the next turn may answer
    resumed: bool = False  # this turn answered the open question


# Words that name no item: what a message says about the item or the request.
_NOT_ITEMS = frozenset(content_words(
    "small big large too tight loose late early urgent quick quickly soon still already "
    "hasn't haven't never far long size colour color fit fits refund deadline canada germany "
    "address email phone account card iban bank payment paid pay charged invoice code "
    "discount promo help everything something anything anymore open opened unopened box "
    "label photo picture gov processed process credited show showing say says update "
    "updates news info information happened happening check know tell waiting wait "
    "delayed delay missing lost stuck done complete completed confirm confirmation "
    "today yesterday"))


def unmatched_words(text: str) -> list[str]:
    """Words that could name an item but are not what a message says about one."""
    return [w for w in content_words(text) if w not in _NOT_ITEMS and not w.isdigit()]


def family(intent: str) -> str:
    return FAMILIES.get(intent, intent)


def issue_key(intent: str, link: Link) -> str:
    """"<family>|<order or product id>", or "" when the turn is about no order or item."""
    ref = link.order_id or link.product_id
    return f"{family(intent)}|{ref}" if ref and not link.ambiguous else ""


def _fallback(orders: Sequence[OrderFacts], now: datetime, recent_days: int) -> Link | None:
    """The order meant when none is named: the only one, or the one still open."""
    if len(orders) == 1:
        o = orders[0]
        pid = o.items[0].product_id if len(o.items) == 1 else ""
        return Link(o.order_id, pid, 0.8, "only", [candidate(o, pid, 0.8)])
    since = now - timedelta(days=recent_days)
    open_ = [o for o in orders if o.status in OPEN_STATUSES
             or (o.status == "delivered" and o.delivered_at is not None
                 and o.delivered_at >= since)]
    if len(open_) == 1:
        o = open_[0]
        pid = o.items[0].product_id if len(o.items) == 1 else ""
        return Link(o.order_id, pid, 0.7, "recent", [candidate(o, pid, 0.7)])
    if open_:
        return Link(candidates=[candidate(o) for o in open_[:clarify.MAX_CANDIDATES]])
    return None


def plan_turn(state: ConversationState, text: str, intent: str, orders: Sequence[OrderFacts],
              products: Mapping[str, ProductInfo], now: datetime, *, known_customer: bool,
              facts_answer: bool = False, similarity: Mapping[str, float] | None = None,
              lookup_order: Callable[[str], OrderFacts | None] | None = None,
              recent_days: int = 14) -> TurnPlan:
    """Decide what this turn is about. `facts_answer`: the facts answer the intent without
    an order (open refunds for refund_status), so no question is asked for one."""
    resumed = resume(state, text, products, now)
    if resumed is not None and state.open_question is not None:
        return TurnPlan(state.open_question.intent, resumed, resumed=True)
    pool = list(orders)
    if not known_customer and lookup_order is not None:
        # A visitor who gives a full order number: that order alone (status questions).
        pool = [o for o in (lookup_order(w) for w in text.replace("#", " ").split())
                if o is not None][:1]
    q = state.open_question
    answered = q is not None and q.kind == "order_id" and bool(pool) and not known_customer
    if answered and q is not None:
        intent = q.intent  # the visitor answered the question for their order number
    link = link_text(text, pool, products, now, similarity)
    if link.how == "none" and not link.unknown_ids:
        owned = {o.order_id for o in pool}
        carried = carry(state)
        if carried is not None and carried.order_id in owned:
            link = msgspec.structs.replace(carried, candidates=link.candidates)
        elif (clarify.needs_order(intent) and not facts_answer and clarify.personal(text)
              and not unmatched_words(text)):
            # Nothing named: the only or the one open order. A word that may name an item
            # but matched none of theirs ("my sneakers") gets a question, not a guess.
            link = _fallback(pool, now, recent_days) or link
    question = ""
    if not facts_answer or link.order_id:
        question = clarify.question_for(intent, link, known_customer, bool(pool), text)
    if not question:
        return TurnPlan(intent, link, resumed=answered)
    listed = link.candidates[:clarify.MAX_CANDIDATES] if known_customer else []
    kind = "which_order" if listed else "order_id"
    return TurnPlan(intent, link, question, OpenQuestion(kind, intent, listed, now.isoformat()))


class Conversations:
    """State per conversation_id in the record store, expiring after `idle_s`."""

    def __init__(self, store: ConversationStore, idle_s: float = 1800.0) -> None:
        self.store = store
        self.idle_s = idle_s

    async def begin(self, conversation_id: str, customer_id: str,
                    now: datetime) -> ConversationState:
        raw = await self.store.load(conversation_id) if conversation_id else None
        stored = _dec.decode(raw) if raw is not None else None
        return begin(stored, conversation_id, customer_id, now, self.idle_s)

    async def purge_idle(self, now: datetime) -> int:
        """Delete the state of conversations idle past the timeout; how many."""
        return await self.store.purge_idle((now - timedelta(seconds=self.idle_s)).isoformat())

    async def repeat_contacts(self, customer_id: str, plan: TurnPlan, conversation_id: str,
                              since: datetime) -> int:
        key = issue_key(plan.intent, plan.link)
        if not key:
            return 0
        return await self.store.issue_contacts(customer_id, key, since.isoformat(),
                                               conversation_id)

    async def finish(self, state: ConversationState, plan: TurnPlan, decision_id: str,
                     contact_id: str, text: str, route: str, now: datetime,
                     flow: FlowPosition | None = None, flow_slots: Mapping[str, str] | None = None,
                     drop_flow: bool = False) -> ConversationState:
        """Remember the turn (when the conversation has an id) and count its issue under
        `contact_id` (the conversation, or the decision for a single message)."""
        turn = Turn(now.isoformat(), text, plan.intent, plan.link.order_id,
                    plan.link.product_id, route, bool(plan.question))
        link = plan.link if not plan.question else Link()
        new = after_turn(state, turn, link, plan.open_question, flow, flow_slots, drop_flow)
        issue = "" if plan.question or not state.customer_id else issue_key(plan.intent,
                                                                             plan.link)
        if state.conversation_id or issue:
            await self.store.save(contact_id, new.customer_id, new.updated_at,
                                  _enc.encode(new) if state.conversation_id else None,
                                  decision_id, issue)
        return new
