"""Respond: the order of stages for one customer message, their timings, cancellation.

PII in (and the conversation's state) -> classify -> link the turn to the customer's
order/item and ground it (graph facts) -> route -> passages + offers -> generate, every
chunk through the stream guard -> conversation state -> final event -> decision record.
A turn whose reference is ambiguous is answered with a clarifying question. Stage
internals live in their own layers; this module only sequences them. The record is
queued before the final event leaves, so a client can look it up at once; a call
that is cancelled or runs out of time is recorded too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from server.concurrency import run_blocking
from server.config import ChannelsConfig, ConversationConfig, RetrievalConfig
from server.conversation.flows import FlowEngine
from server.conversation.guide import FlowTurn, slots_to_keep
from server.conversation.state import ConversationState
from server.conversation.turns import Conversations, TurnPlan
from server.errors import InvalidInput
from server.generation.base import Chunk, Generator, Grounding, Offer, PassageRef
from server.generation.composer import GroundedComposer
from server.generation.fallback import FallbackGenerator
from server.governance.guard import StreamGuard
from server.governance.pii import PiiDetector, Redaction
from server.governance.routing import RouteDecision, RoutingInput, extract_amounts
from server.inference.service import InferenceService
from server.knowledge.retrieval.retriever import Passage
from server.knowledge.service import KnowledgeService, ShopKnowledge
from server.observability.respond import RespondObserver
from server.pipeline import assist, grounding
from server.pipeline.actions import ActionOut, decision_actions
from server.pipeline.passages import PassageFinder
from server.pipeline.policies import PolicyState
from server.pipeline.shop_views import ShopViews
from server.records.base import Records
from server.records.drafts import DraftStore
from server.records.store import utcnow
from server.records.types import (
    DecisionRecord,
    PassageUse,
    ViolationRecord,
)

log = logging.getLogger(__name__)
CHANNELS = ("chat", "email", "social")
# gRPC's deadline timer can fire a little before our reading of the same deadline
# (taken when the handler started): a cancellation this close to it is the deadline.
_DEADLINE_SLACK_S = 0.1
_REFUND_BY_ORDER_INTENTS = {"return_item", "damaged_item", "wrong_item"}


class RespondInput(msgspec.Struct, frozen=True):
    text: str
    customer_id: str = ""
    conversation_id: str = ""
    channel: str = "chat"


class Delta(msgspec.Struct, frozen=True):
    text: str


class Citation(msgspec.Struct, frozen=True):
    source_id: str
    kind: str


class Final(msgspec.Struct, frozen=True):
    decision_id: str
    route: str
    intent: str
    confidence: float
    citations: list[Citation]
    actions: list[ActionOut]
    outcome: str
    rules_fired: list[str]


class RespondPipeline:
    def __init__(self, inference: InferenceService, knowledge: KnowledgeService,
                 records: Records, policies: PolicyState, detector: PiiDetector,
                 executor: Executor, generator: Generator | None = None,
                 max_text_bytes: int = 8192, retrieval: RetrievalConfig | None = None,
                 offers: int = 2, conversations: Conversations | None = None,
                 conversation: ConversationConfig | None = None,
                 channels: ChannelsConfig | None = None,
                 drafts: DraftStore | None = None, flows: FlowEngine | None = None,
                 first_chunk_s: float = 2.0,
                 observer: RespondObserver | None = None) -> None:
        self._inference = inference
        self._knowledge = knowledge
        self._records = records
        self._policies = policies
        self._detector = detector
        self._executor = executor
        self.generator = generator  # None = the grounded composer under the policy in force
        self._max_bytes = max_text_bytes
        self._passages = PassageFinder(inference, knowledge, retrieval or RetrievalConfig())
        self._offers = offers
        self._conversations = conversations
        self._flows = flows  # guided flows (server/conversation/flows.py)
        self._shop_views = ShopViews(inference, (conversation or ConversationConfig())
                                     .title_similarity)
        self._channels = channels or ChannelsConfig()
        self._drafts = drafts  # assist mode stores its drafts here
        self._first_chunk_s = first_chunk_s
        self._observer = observer or RespondObserver()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_blocking(self._executor, fn, *args)

    def _redact_for(self, shop: ShopKnowledge, req: RespondInput,
                    ) -> tuple[grounding.CustomerView | None, Redaction, str]:
        """The customer (NotFound for an unknown id), their message without PII (their
        own order and product ids stay, since they are not PII to this shop), and the
        text the classifier reads: with the titles of their items masked."""
        view = grounding.customer_view(shop, req.customer_id)
        red = self._detector.redact(req.text, view.own_ids if view else frozenset())
        catalog = self._shop_views.catalog(shop)
        return view, red, grounding.classifier_text(red.text, view, catalog)

    async def _state(self, req: RespondInput, customer_id: str) -> ConversationState:
        if self._conversations is None:
            return ConversationState(req.conversation_id, customer_id, utcnow())
        return await self._conversations.begin(req.conversation_id, customer_id,
                                               datetime.now(UTC))

    def _validate(self, req: RespondInput) -> RespondInput:
        if not req.text.strip():
            raise InvalidInput("text is empty")
        if len(req.text.encode()) > self._max_bytes:
            raise InvalidInput(f"text is over {self._max_bytes} bytes")
        channel = req.channel or "chat"
        if channel not in CHANNELS:
            raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}")
        return msgspec.structs.replace(req, channel=channel)

    async def run(self, req: RespondInput, decision_id: str,
                  deadline: float | None = None) -> AsyncGenerator[Delta | Final, None]:
        req = self._validate(req)
        bundle = self._policies.current  # this call's policy, whatever reloads meanwhile
        shop = self._knowledge.current
        t0 = time.perf_counter()
        lat: dict[str, float] = {}
        observer = self._observer

        def mark(stage: str, since: float) -> float:
            now = time.perf_counter()
            lat[stage] = round((now - since) * 1000.0, 3)
            observer.stage(stage, since, now)
            return now

        rec = DecisionRecord(
            decision_id=decision_id, conversation_id=req.conversation_id or decision_id,
            customer_id=req.customer_id, channel=req.channel, started_at=utcnow(),
            policy_version=bundle.version, snapshot_id=shop.snapshot_id,
            index_version=shop.retriever.version, latencies_ms=lat,
            trace_id=observer.trace_id(),
        )
        submitted = False
        try:
            view, red, cls_text = await self._run(self._redact_for, shop, req)
            own = view.own_ids if view else frozenset()
            rec.redacted_input, rec.pii_kinds = red.text, red.kinds
            t = mark("pii", t0)

            state_aw = self._state(req, view.customer_id if view else "")
            cls, state = await asyncio.gather(
                self._inference.classify(cls_text, top_k=3, deadline=deadline,
                                         routing_key=rec.conversation_id), state_aw)
            rec.intent, rec.confidence, rec.out_of_scope = cls.intent, cls.confidence, \
                cls.out_of_scope
            rec.model_versions["classifier"] = cls.model_version
            if cls.shadow_version:  # the version that also ran on this text (canary/shadow)
                rec.model_versions["classifier_shadow"] = cls.shadow_version
            rec.model_versions["embedder"] = self._inference.embedder_version()
            t = mark("classify", t)

            catalog = self._shop_views.catalog(shop)
            sims = await self._shop_views.title_similarity(shop, view, cls.embedding)
            ctx = await self._run(grounding.plan_and_ground, shop, catalog, view, state,
                                  cls.intent, red.text, sims, self._flows, cls.confidence)
            plan, grounded, flow = ctx.plan, ctx.grounded, ctx.flow
            rec.intent = plan.intent
            rec.flow = flow.record() if flow is not None else {}
            rec.link = _link_record(plan)
            rec.order_refs = grounded.order_refs
            rec.facts = [msgspec.to_builtins(f) for f in grounded.facts]
            t = mark("link", t)
            decision = await self._route(bundle, req, red.text, cls, view, grounded, plan,
                                         rec.conversation_id, flow)
            rec.route, rec.rules_fired, rec.sentiment = (decision.route, decision.rules_fired,
                                                        decision.sentiment)
            t = mark("route", t)

            passages: list[PassageRef] = []
            offers: list[Offer] = []
            if decision.route == "automated" and not plan.question:
                # Retrieval reuses the classifier's embedding when it has one; offers are
                # computed alongside (graph kernels in the executor).
                offers_aw: Awaitable[list[Any]] = (
                    self._knowledge.recommend(view.customer_id, [], self._offers)
                    if decision.cross_sell_allowed and view is not None else _nothing())
                gathered: list[Any] = await asyncio.gather(
                    self._passages.find(red.text, cls.embedding, plan.intent), offers_aw,
                    return_exceptions=True)
                got_passages, got_offers = gathered
                # A failing index or recommender degrades the answer, never fails it.
                found: list[tuple[float, Passage]] = (
                    self._degraded(rec, "index_unavailable", got_passages)
                    if isinstance(got_passages, BaseException) else got_passages)
                recs: list[Any] = (
                    self._degraded(rec, "recommender_unavailable", got_offers)
                    if isinstance(got_offers, BaseException) else got_offers)
                tuning = shop.recommender_tuning
                if recs and tuning is not None:  # which per-shop mix chose the offers
                    rec.model_versions["recommender"] = f"{tuning.leans_on}:{tuning.choice}"
                found = [(r, p) for r, p in found
                         if grounding.passage_fits(catalog, p.source_id, grounded.scope)]
                # The generator sees the pipeline's ranking; the record keeps the
                # retrieval (cosine) scores.
                passages = [PassageRef(p.id, p.source_id, p.kind, p.title, p.text, rank)
                            for rank, p in found]
                rec.passages = [PassageUse(p.id, p.source_id, p.score) for _, p in found]
                offers = [Offer(r.product_id, r.title, r.reason, r.score) for r in recs]
            t = mark("ground", t)

            g = Grounding(
                intent="out_of_scope" if cls.out_of_scope and not plan.resumed else plan.intent,
                confidence=cls.confidence, channel=req.channel,
                customer_name=view.name if view else "", message=red.text,
                facts=grounded.facts, passages=passages, offers=offers,
                route=decision.route, handoff_message=decision.handoff_message,
                question=plan.question if decision.route == "automated" else "",
                linked_order_id=plan.link.order_id if not plan.link.ambiguous else "",
                flow_text=flow.step.text if flow is not None else "",
                flow_id=flow.step.flow_id if flow is not None else "",
                flow_asks=bool(flow is not None and flow.step.needs_slot),
            )
            composer = GroundedComposer(
                max_refund_statement=bundle.policy.promises.max_refund_statement)
            # A clarifying question and a flow step are the composer's: they are said as
            # written (the candidates as they are, the step's reviewed words). An LM gets
            # the composer as its fallback (slow first chunk, or an error before it).
            scripted = bool(g.question or g.flow_text)
            generator: Generator = (
                composer if scripted or self.generator is None
                else FallbackGenerator(self.generator, composer, self._first_chunk_s))
            guard = StreamGuard(bundle.policy, view.order_view if view else None, own,
                                rules=bundle.checks)
            cancel = threading.Event()
            stream = generator.stream(g, cancel)
            chunks: list[tuple[int, Chunk]] = []  # (start offset, chunk)
            fed, guarded = 0, 0
            guard_s = 0.0  # the guard's own share of the stream's time
            sent: list[str] = []
            outcome = "handed_off" if decision.route == "human" else "completed"
            try:
                async for chunk in stream:
                    chunks.append((fed, chunk))
                    fed += len(chunk.text)
                    g0 = time.perf_counter()
                    step = guard.feed(chunk.text)
                    guard_s += time.perf_counter() - g0
                    rec.violations += [ViolationRecord(v.rule, v.action, v.detail)
                                       for v in step.violations]
                    if step.emit:
                        if not sent:
                            mark("ttft", t0)
                        sent.append(step.emit)
                        guarded += len(step.emit)
                        yield Delta(step.emit)
                    if step.stop:
                        outcome = "fallback"
                        fallback = ("\n\n" if sent else "") + step.fallback
                        sent.append(fallback)
                        yield Delta(fallback)
                        break
                else:
                    step = guard.finish()
                    rec.violations += [ViolationRecord(v.rule, v.action, v.detail)
                                       for v in step.violations]
                    if step.emit:
                        if not sent:
                            mark("ttft", t0)
                        sent.append(step.emit)
                        yield Delta(step.emit)
            finally:
                cancel.set()  # stops an LM's decode thread at once
                closer = getattr(stream, "aclose", None)
                if closer is not None:
                    await closer()
            observer.stage("guard", t, time.perf_counter(), busy_s=guard_s)
            lat["guard"] = round(guard_s * 1000.0, 3)
            mark("generate", t)
            source = getattr(stream, "source", generator)
            rec.model_versions["generator"] = f"{source.name}/{source.version}"
            if getattr(stream, "fell_back", ""):
                rec.fallbacks.append(stream.fell_back)  # type: ignore[attr-defined]
            rec.final_text = "".join(sent)
            rec.outcome = outcome
            # A chunk is cited when the client saw (some of) it: all of them unless the
            # guard stopped the stream (redaction shifts offsets by a few characters).
            cited = [c for start, c in chunks if outcome != "fallback" or start < guarded]
            actions, handoff, pending = decision_actions(rec, decision, cited,
                                                         req.customer_id, flow)
            rec.actions = [msgspec.to_builtins(a) for a in actions]
            if self._conversations is not None:
                await self._conversations.finish(
                    state, plan, decision_id, rec.conversation_id, red.text, decision.route,
                    datetime.now(UTC), flow.position if flow is not None else None,
                    slots_to_keep(flow), ctx.drop_flow)
            rec.finished_at = utcnow()
            rec.route = assist.route_for(decision.route, req.channel, self._channels)
            mark("total", t0)
            # Durable before the client hears "done": the Final event names a decision
            # that GetDecision will return, even if the process dies right after.
            submitted = True
            await self._records.commit_decision(rec, handoff, pending)
            if rec.route == assist.DRAFT_ROUTE and self._drafts is not None:
                await self._drafts.submit(assist.draft_of(rec))
            observer.decided(rec, handoff.reason if handoff is not None else "")
            yield Final(decision_id, rec.route, rec.intent, rec.confidence,
                        _citations(cited), actions, outcome, decision.rules_fired)
        except (asyncio.CancelledError, GeneratorExit):
            rec.outcome = ("deadline_exceeded" if deadline is not None
                           and time.monotonic() >= deadline - _DEADLINE_SLACK_S
                           else "cancelled")
            raise
        except Exception:
            rec.outcome = rec.outcome or "error"
            raise
        finally:
            if not submitted:
                rec.finished_at = utcnow()
                lat.setdefault("total", round((time.perf_counter() - t0) * 1000.0, 3))
                await self._records.submit_decision(rec)
                observer.decided(rec)

    @staticmethod
    def _degraded(rec: DecisionRecord, what: str, exc: BaseException) -> list[Any]:
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            raise exc
        log.error("%s for decision %s: answering without it", what, rec.decision_id,
                  exc_info=exc)
        rec.fallbacks.append(what)
        return []

    async def _route(self, bundle: Any, req: RespondInput, text: str, cls: Any,
                     view: grounding.CustomerView | None, grounded: grounding.Grounded,
                     plan: TurnPlan, conversation_id: str,
                     flow: FlowTurn | None) -> RouteDecision:
        esc = bundle.policy.escalation
        repeat = 0
        if view is not None and self._conversations is not None:
            # Earlier conversations about the same issue: customer, linked order or item,
            # intent family (a new topic is not a repeat).
            since = datetime.now(UTC) - timedelta(days=esc.repeat_contact_window_days)
            repeat = await self._conversations.repeat_contacts(
                view.customer_id, plan, conversation_id, since)
        # Amounts keep their currency: the router converts by the policy's rates or flags.
        amounts = [(m.amount, m.currency) for m in extract_amounts(text)]
        if not amounts and plan.intent in _REFUND_BY_ORDER_INTENTS and grounded.order_refs:
            amounts = [(grounded.order_totals.get(o, 0.0), grounded.order_currency.get(o, ""))
                       for o in grounded.order_refs]
        refund = max(amounts, key=lambda a: _comparable(esc, *a), default=None)
        resumed = plan.resumed  # an answer to our question: its intent, not the classifier's
        decision: RouteDecision = bundle.router.route(RoutingInput(
            intent=plan.intent, confidence=1.0 if resumed else cls.confidence,
            out_of_scope=cls.out_of_scope and not resumed,
            text=text, segment=view.segment if view else "standard", repeat_contacts=repeat,
            requested_refund_amount=refund[0] if refund else None,
            requested_refund_currency=refund[1] if refund else "", channel=req.channel,
            refund_in_progress=view.refund_in_progress if view else False,
            flow_action=flow.step.action if flow is not None and flow.step.done else "",
        ))
        if decision.reason == "flow_handoff" and flow is not None:
            # The flow's own words say why a colleague takes over.
            decision = msgspec.structs.replace(decision, handoff_message=flow.step.text)
        return decision


async def _nothing() -> list[Any]:
    return []


def _comparable(esc: Any, amount: float, currency: str) -> float:
    """An amount in the policy's refund currency; one without a rate ranks first, so
    that the router flags it rather than comparing it as if it were converted."""
    converted = esc.in_refund_currency(amount, currency)
    return float("inf") if converted is None else float(converted)


def _link_record(plan: TurnPlan) -> dict[str, Any]:
    """The link for the decision record: the choice, how it was made, every candidate,
    and the question when one was asked."""
    out: dict[str, Any] = msgspec.to_builtins(plan.link)
    out["resumed"] = plan.resumed
    if plan.question:
        out["question"] = plan.question
    return out


def _citations(chunks: list[Chunk]) -> list[Citation]:
    seen: dict[tuple[str, str], None] = {}
    for c in chunks:
        kinds = c.source_kinds or ("",) * len(c.source_ids)
        for sid, kind in zip(c.source_ids, kinds, strict=False):
            seen[(sid, kind)] = None
    return [Citation(sid, kind) for sid, kind in seen]
