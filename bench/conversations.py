"""`aftercare eval respond --data DIR`: scripted conversations from the shop's own facts.

For a seeded sample of customers with several orders, the script asks about a
non-latest order by id and by a free-form number, about an item by its full title and
by a paraphrase (a word of the title no other item of theirs has), about an order by
the month it was placed, about "my last order"; follows up in the same conversation
("and can I still return it?"); makes ambiguous requests (an item bought in several
orders) and answers the question that should follow ("the second one"); writes as an
unknown visitor ("where is my parcel?", then the order number); and sends general
messages that need no order. Every message goes to a real server (in this process,
port 0, real channel) and the decision record says what the turn was linked to.

Reported (JSON on the last line):
- link_accuracy: turns that name an order or item: the linked order (and item, when
  one was named) is the one meant.
- clarify_precision / clarify_recall: a question was asked exactly on the turns that
  are ambiguous (or a visitor's order question).
- followup_accuracy: follow-ups and answers to questions are linked to the order meant.
- containment: messages that need no human (all but those the shop's own guided flow
  hands to a person, e.g. damage reported too late), answered without one;
  containment_all: every message.
- wrong_item_rate: answers that speak of an order or item of the customer's that is not
  the one meant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from server.conversation.linker import content_words
from server.knowledge.graph.facts import Facts, OrderFacts
from server.knowledge.shop.ingest import ingest_dir

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
GENERAL = ("do you ship to Canada?", "how do returns work?", "my discount code doesn't work",
           "what payment methods do you accept?", "how can I reset my password?")


@dataclass
class Step:
    text: str
    order: str = ""  # the order meant ("" = none)
    product: str = ""  # the item meant, when one is named
    ask: bool = False  # a clarifying question is the right answer
    kind: str = "link"  # link | followup | general
    answer_ordinal: int = 0  # reply "the n-th one" to the question: resolved from the record


@dataclass
class Script:
    name: str
    customer: str
    steps: list[Step]
    own_orders: dict[str, set[str]] = field(default_factory=dict)  # order -> item titles


def _unique_word(title: str, others: list[str]) -> str:
    """A word of the title that no other of the customer's item titles has."""
    other_words = {w for t in others for w in content_words(t)}
    for raw in reversed(title.split()):
        w = content_words(raw)
        if w and len(w[0]) > 3 and w[0].isalpha() and w[0] not in other_words:
            return raw.lower()
    return ""


def scripts(facts: Facts, customers: int, seed: int) -> list[Script]:
    """Conversations for a seeded sample of customers with at least three orders."""
    rng = random.Random(seed)
    pool = [c.customer_id for c in facts.snapshot.customers
            if len(facts.customer_orders(c.customer_id, limit=3)) >= 3]
    rng.shuffle(pool)
    out: list[Script] = []
    for cid in pool[:customers]:
        orders = facts.customer_orders(cid, limit=10_000)
        own = {o.order_id: {i.title for i in o.items} for o in orders}
        by_product: dict[str, list[OrderFacts]] = {}
        for o in orders:
            for i in o.items:
                by_product.setdefault(i.product_id, []).append(o)
        titles = {i.product_id: i.title for o in orders for i in o.items}
        earlier = orders[1:]
        o = rng.choice(earlier)
        out.append(Script("by_id", cid, [
            Step(f"Where is my order {o.order_id}?", o.order_id),
            Step("and can I still return it?", o.order_id, kind="followup")], own))
        o2 = rng.choice(earlier)
        number = int(re.sub(r"\D", "", o2.order_id))
        out.append(Script("by_number", cid, [
            Step(rng.choice([f"any news on order #{number}?", f"status of order {number}",
                             f"has order no. {number} shipped?"]), o2.order_id)], own))
        once = [(p, os[0]) for p, os in by_product.items()
                if len(os) == 1 and os[0].order_id != orders[0].order_id]
        if once:
            pid, o3 = rng.choice(once)
            out.append(Script("by_title", cid, [
                Step(f"I want to return the {titles[pid]}", o3.order_id, pid),
                Step("is it still under warranty?", o3.order_id, pid, kind="followup")], own))
            words = [(p, oo, _unique_word(titles[p], [t for q, t in titles.items() if q != p]))
                     for p, oo in once]
            words = [w for w in words if w[2]]
            if words:
                pid, o4, word = rng.choice(words)
                out.append(Script("by_paraphrase", cid, [
                    Step(f"my {word} arrived damaged", o4.order_id, pid)], own))
        twice = [(p, os) for p, os in by_product.items() if len(os) >= 2]
        if twice:
            pid, os = rng.choice(twice)
            n = rng.choice([1, 2])
            listed = os[:3]  # the question lists the newest three, newest first
            out.append(Script("ambiguous", cid, [
                Step(f"I want to return the {titles[pid]}", ask=True),
                Step("the second one" if n == 2 else "the first one", listed[n - 1].order_id,
                     pid, kind="followup", answer_ordinal=n)], own))
        months = Counter((x.ordered_at.year, x.ordered_at.month) for x in orders
                         if (facts.now - x.ordered_at).days < 330)
        single = [x for x in orders if months[(x.ordered_at.year, x.ordered_at.month)] == 1
                  and (facts.now - x.ordered_at).days < 330 and x is not orders[0]]
        if single:
            o5 = rng.choice(single)
            out.append(Script("by_date", cid, [Step(
                f"where is the order I placed in {_MONTHS[o5.ordered_at.month - 1]}?",
                o5.order_id)], own))
        out.append(Script("latest", cid, [Step("where is my last order?", orders[0].order_id)],
                          own))
        out.append(Script("general", cid, [Step(rng.choice(GENERAL), kind="general")], own))
    for cid in pool[customers:customers + max(5, customers // 4)]:
        o = facts.customer_orders(cid, limit=1)[0]
        out.append(Script("visitor", "", [
            Step("where is my parcel?", ask=True),
            Step(f"it is {o.order_id}", o.order_id, kind="followup")],
            {o.order_id: {it.title for it in o.items}}))
    return out


@dataclass
class Tally:
    link: list[bool] = field(default_factory=list)
    followup: list[bool] = field(default_factory=list)
    asked_when: list[tuple[bool, bool]] = field(default_factory=list)  # (asked, should)
    contained: list[bool] = field(default_factory=list)
    wrong_item: list[bool] = field(default_factory=list)
    by_script: Counter[str] = field(default_factory=Counter)
    handoffs: Counter[str] = field(default_factory=Counter)  # "<script>:<rules fired>"
    flow_handoff: list[bool] = field(default_factory=list)
    misses: list[dict[str, Any]] = field(default_factory=list)


_OFFER = re.compile(r"You might also like the [^()]*?(?:\([^)]*\))?\.(?=\s|$)")


def _wrong_item(text: str, step: Step, own: dict[str, set[str]]) -> bool:
    """The answer names another of the customer's orders, or an item not in the one meant.
    Cross-sell offers ("You might also like ...") suggest a product; they are not about
    the order in question and are left out."""
    text = _OFFER.sub("", text)
    meant = own.get(step.order, set())
    for order_id, titles in own.items():
        if order_id != step.order and order_id in text:
            return True
        if any(t in text and t not in meant for t in titles):
            return True
    return False


async def _run(port: int, all_scripts: list[Script], tally: Tally) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        support, admin = support_pb2_grpc.SupportStub(ch), admin_pb2_grpc.AdminStub(ch)
        for s in all_scripts:
            conv = f"eval-{uuid.uuid4().hex[:12]}"
            tally.by_script[s.name] += 1
            for step in s.steps:
                deltas, final = [], None
                async for ev in support.Respond(support_pb2.RespondRequest(
                        text=step.text, customer_id=s.customer, conversation_id=conv),
                        timeout=60):
                    if ev.HasField("delta"):
                        deltas.append(ev.delta.text)
                    else:
                        final = ev.final
                assert final is not None
                rec = await admin.GetDecision(
                    admin_pb2.GetDecisionRequest(decision_id=final.decision_id))
                link = json.loads(rec.link) if rec.link else {}
                text = "".join(deltas)
                asked = bool(link.get("question")) and final.route == "automated"
                tally.asked_when.append((asked, step.ask))
                tally.contained.append(final.route == "automated")
                tally.flow_handoff.append("flow_handoff" in final.rules_fired)
                if final.route == "human":
                    tally.handoffs[f"{s.name}:{','.join(final.rules_fired)}"] += 1
                if asked != step.ask and len(tally.misses) < 60:
                    tally.misses.append({"script": s.name, "text": step.text, "asked": asked,
                                         "should": step.ask, "intent": final.intent,
                                         "route": final.route, "answer": text[:160]})
                if step.order:
                    right = link.get("order_id") == step.order and not asked and (
                        not step.product or link.get("product_id") == step.product)
                    (tally.followup if step.kind == "followup" else tally.link).append(right)
                    if final.route == "automated" and not asked:
                        wrong = _wrong_item(text, step, s.own_orders)
                        tally.wrong_item.append(wrong)
                        if wrong and len(tally.misses) < 60:
                            tally.misses.append({"script": s.name, "text": step.text,
                                                 "wrong_item": text[:300]})
                    if not right and len(tally.misses) < 25:
                        tally.misses.append({"script": s.name, "text": step.text,
                                             "meant": [step.order, step.product],
                                             "linked": [link.get("order_id"),
                                                        link.get("product_id")],
                                             "how": link.get("how"), "intent": final.intent,
                                             "route": final.route, "asked": asked})


def _rate(xs: list[bool]) -> float:
    return round(sum(xs) / len(xs), 4) if xs else float("nan")


def evaluate(data: Path, customers: int = 100, seed: int = 7,
             models: str = "models/repository") -> dict[str, Any]:
    from server.app import build_app
    from server.config import load_config

    snap = ingest_dir(data, None, None).snapshot
    all_scripts = scripts(Facts(snap), customers, seed)
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(None, {
            "server": {"host": "127.0.0.1", "port": 0},
            "models": {"repository": models},
            "data": {"dir": str(data), "quarantine_dir": f"{tmp}/q", "use_shared": False},
            "retrieval": {"index_dir": f"{tmp}/index"},
            "records": {"path": f"{tmp}/records.sqlite"},
        })

        async def main() -> float:
            app = build_app(config)
            await app.start()
            try:
                t0 = time.perf_counter()
                await _run(app.port, all_scripts, tally)
                return time.perf_counter() - t0
            finally:
                await app.stop(0)

        took = asyncio.run(main())
    asked = [a for a, _ in tally.asked_when]
    should = [s for _, s in tally.asked_when]
    both = sum(a and s for a, s in tally.asked_when)
    return {
        "eval": "respond", "data": str(data), "customers": customers, "seed": seed,
        "conversations": sum(tally.by_script.values()), "scripts": dict(tally.by_script),
        "turns": len(tally.asked_when), "seconds": round(took, 2),
        "link_accuracy": _rate(tally.link),
        "clarify_precision": round(both / sum(asked), 4) if any(asked) else float("nan"),
        "clarify_recall": round(both / sum(should), 4) if any(should) else float("nan"),
        "followup_accuracy": _rate(tally.followup),
        # Turns a shop's guided flow hands to a person by its procedure need a human;
        # containment counts the others, containment_all every turn.
        "containment": _rate([c for c, f in zip(tally.contained, tally.flow_handoff,
                                                strict=True) if not f]),
        "containment_all": _rate(tally.contained),
        "wrong_item_rate": _rate(tally.wrong_item),
        "handoffs": dict(tally.handoffs.most_common()),
        "misses": tally.misses,
    }


def _cmd(args: argparse.Namespace) -> int:
    result = evaluate(Path(args.data), args.customers, args.seed, args.models)
    for miss in result.pop("misses"):
        print("miss:", json.dumps(miss))
    print(json.dumps(result))
    return 0


def register_eval(subparsers: Any) -> None:
    """Add `respond` to the `aftercare eval` subcommands."""
    p = subparsers.add_parser("respond", help="linking, questions, follow-ups on scripted "
                              "conversations from the shop's facts")
    p.add_argument("--data", required=True, help="shop data directory")
    p.add_argument("--customers", type=int, default=100, help="customers to script")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--models", default="models/repository", help="model repository")
    p.set_defaults(func=_cmd)
