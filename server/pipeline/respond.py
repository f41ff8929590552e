"""Respond: the order of stages for one customer message, their timings, cancellation.

PII in -> classify -> ground (graph facts) -> route -> passages + offers -> generate,
every chunk through the stream guard -> final event -> decision record. Stage
internals live in their own layers; this module only sequences them. The record is
queued before the final event leaves, so a client can look it up at once; a call
that is cancelled or runs out of time is recorded too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from server.concurrency import run_blocking
from server.config import ChannelsConfig, RetrievalConfig
from server.errors import InvalidInput
from server.generation.base import Chunk, Generator, Grounding, Offer, PassageRef
from server.generation.composer import GroundedComposer
from server.generation.fallback import FallbackGenerator
from server.governance.guard import StreamGuard
from server.governance.pii import PiiDetector, Redaction
from server.governance.routing import RouteDecision, RoutingInput, extract_amounts
from server.inference.service import InferenceService
from server.knowledge.retrieval import affinity
from server.knowledge.retrieval.retriever import Passage
from server.knowledge.service import KnowledgeService, ShopKnowledge
from server.observability.respond import RespondObserver
from server.pipeline import assist, grounding
from server.pipeline.policies import PolicyState
from server.records.drafts import DraftStore
from server.records.store import RecordStore, utcnow
from server.records.types import (
    DecisionRecord,
    Handoff,
    PassageUse,
    PendingAction,
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


class ActionOut(msgspec.Struct, frozen=True):
    kind: str
    product_ids: list[str] = []
    action_id: str = ""
    status: str = ""
    detail: str = ""


class Final(msgspec.Struct, frozen=True):
    decision_id: str
    route: str
    intent: str
    confidence: float
    citations: list[Citation]
    actions: list[ActionOut]
    outcome: str
    rules_fired: list[str]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


class RespondPipeline:
    def __init__(self, inference: InferenceService, knowledge: KnowledgeService,
                 records: RecordStore, policies: PolicyState, detector: PiiDetector,
                 executor: Executor, generator: Generator | None = None,
                 max_text_bytes: int = 8192, retrieval: RetrievalConfig | None = None,
                 offers: int = 2, channels: ChannelsConfig | None = None,
                 drafts: DraftStore | None = None,
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
        self._retrieval = retrieval or RetrievalConfig()
        self._offers = offers
        self._channels = channels or ChannelsConfig()
        self._drafts = drafts  # assist mode stores its drafts here
        self._first_chunk_s = first_chunk_s
        self._observer = observer or RespondObserver()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_blocking(self._executor, fn, *args)

    def _redact_for(self, shop: ShopKnowledge, req: RespondInput,
                    ) -> tuple[grounding.CustomerView | None, Redaction]:
        """The customer (NotFound for an unknown id) and their message without PII; their
        own order and product ids stay, since they are not PII to this shop."""
        view = grounding.customer_view(shop, req.customer_id)
        return view, self._detector.redact(req.text, view.own_ids if view else frozenset())

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
            view, red = await self._run(self._redact_for, shop, req)
            own = view.own_ids if view else frozenset()
            rec.redacted_input, rec.pii_kinds = red.text, red.kinds
            t = mark("pii", t0)

            cls = await self._inference.classify(red.text, top_k=3, deadline=deadline,
                                                 routing_key=rec.conversation_id)
            rec.intent, rec.confidence, rec.out_of_scope = cls.intent, cls.confidence, \
                cls.out_of_scope
            rec.model_versions["classifier"] = cls.model_version
            if cls.shadow_version:  # the version that also ran on this text (canary/shadow)
                rec.model_versions["classifier_shadow"] = cls.shadow_version
            rec.model_versions["embedder"] = self._inference.embedder_version()
            t = mark("classify", t)

            grounded = await self._run(grounding.ground, shop, view, cls.intent, red.text)
            rec.order_refs = grounded.order_refs
            rec.facts = [msgspec.to_builtins(f) for f in grounded.facts]
            t = mark("facts", t)
            decision = await self._route(bundle, req, red.text, cls, view, grounded)
            rec.route, rec.rules_fired, rec.sentiment = (decision.route, decision.rules_fired,
                                                        decision.sentiment)
            t = mark("route", t)

            passages: list[PassageRef] = []
            offers: list[Offer] = []
            if decision.route == "automated":
                # Retrieval reuses the classifier's embedding when it has one; offers are
                # computed alongside (graph kernels in the executor).
                offers_aw: Awaitable[list[Any]] = (
                    self._knowledge.recommend(view.customer_id, [], self._offers)
                    if decision.cross_sell_allowed and view is not None else _nothing())
                gathered: list[Any] = await asyncio.gather(
                    self._passages_for(red.text, cls.embedding, cls.intent), offers_aw,
                    return_exceptions=True)
                got_passages, got_offers = gathered
                # A failing index or recommender degrades the answer, never fails it.
                found: list[tuple[float, Passage]] = (
                    self._degraded(rec, "index_unavailable", got_passages)
                    if isinstance(got_passages, BaseException) else got_passages)
                recs: list[Any] = (
                    self._degraded(rec, "recommender_unavailable", got_offers)
                    if isinstance(got_offers, BaseException) else got_offers)
                # The generator sees the pipeline's ranking; the record keeps the
                # retrieval (cosine) scores.
                passages = [PassageRef(p.id, p.source_id, p.kind, p.title, p.text, rank)
                            for rank, p in found]
                rec.passages = [PassageUse(p.id, p.source_id, p.score) for _, p in found]
                offers = [Offer(r.product_id, r.title, r.reason, r.score) for r in recs]
            t = mark("ground", t)

            g = Grounding(
                intent="out_of_scope" if cls.out_of_scope else cls.intent,
                confidence=cls.confidence, channel=req.channel,
                customer_name=view.name if view else "", message=red.text,
                facts=grounded.facts, passages=passages, offers=offers,
                route=decision.route, handoff_message=decision.handoff_message,
            )
            composer = GroundedComposer(
                max_refund_statement=bundle.policy.promises.max_refund_statement)
            generator: Generator = composer if self.generator is None else FallbackGenerator(
                self.generator, composer, self._first_chunk_s)
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
            actions, handoff, pending = self._actions(rec, decision, cited, req, view)
            rec.actions = [msgspec.to_builtins(a) for a in actions]
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

    async def _passages_for(self, text: str, vector: Any, intent: str,
                            ) -> list[tuple[float, Passage]]:
        """The best customer-facing passages: one filtered search per allowed kind, plus
        the documents that fit this intent (retrieval/affinity.py), merged and ranked;
        matches under `respond_min_score` are not quoted."""
        cfg = self._retrieval
        k = cfg.respond_passages
        shop = self._knowledge.current
        searches = affinity.plan(cfg.respond_kinds, k, intent, shop.affinity, cfg.intent_tags)
        if vector is None:  # the classifier's encoder is not the index's: embed the text
            vector = (await self._inference.embed_documents([text])).vectors[0]
        hits = await self._knowledge.search_filtered(vector, [(n, f) for n, f, _ in searches])
        return affinity.merge(searches, hits, kinds=cfg.respond_kinds,
                              boost=cfg.intent_tag_boost, min_score=cfg.respond_min_score,
                              top_k=k)  # (ranking score, passage with its retrieval score)

    async def _route(self, bundle: Any, req: RespondInput, text: str, cls: Any,
                     view: grounding.CustomerView | None,
                     grounded: grounding.Grounded) -> RouteDecision:
        esc = bundle.policy.escalation
        repeat = 0
        if view is not None and grounded.order_refs:
            since = (datetime.now(UTC) - timedelta(days=esc.repeat_contact_window_days))
            repeat = await self._records.recent_contacts(
                view.customer_id, grounded.order_refs, since.isoformat(timespec="milliseconds"))
        amounts = [m.amount for m in extract_amounts(text)]
        if not amounts and cls.intent in _REFUND_BY_ORDER_INTENTS and grounded.order_refs:
            amounts = [grounded.order_totals.get(o, 0.0) for o in grounded.order_refs]
        decision: RouteDecision = bundle.router.route(RoutingInput(
            intent=cls.intent, confidence=cls.confidence, out_of_scope=cls.out_of_scope,
            text=text, segment=view.segment if view else "standard", repeat_contacts=repeat,
            requested_refund_amount=max(amounts) if amounts else None, channel=req.channel,
            refund_in_progress=view.refund_in_progress if view else False,
        ))
        return decision

    def _actions(self, rec: DecisionRecord, decision: RouteDecision, cited: list[Chunk],
                 req: RespondInput, view: grounding.CustomerView | None,
                 ) -> tuple[list[ActionOut], Handoff | None, list[PendingAction]]:
        now = utcnow()
        actions: list[ActionOut] = []
        pending: list[PendingAction] = []
        handoff = None
        offered = [sid for c in cited if c.role == "offer" for sid in c.source_ids]
        if offered:
            actions.append(ActionOut("cross_sell_offer", list(dict.fromkeys(offered)),
                                     status="offered"))
        for p in decision.pending_approval:
            action_id = new_id("act")
            order = rec.order_refs[0] if rec.order_refs else ""
            pending.append(PendingAction(
                action_id=action_id, decision_id=rec.decision_id,
                kind=f"{p.action}_pending_approval", state="pending",
                customer_id=rec.customer_id, order_id=order, amount=p.amount or 0.0,
                detail=f"{p.reason}: {p.amount} above the automatic limit {p.limit}",
                created_at=now, updated_at=now))
            actions.append(ActionOut(f"{p.action}_pending_approval", action_id=action_id,
                                     status="pending", detail=p.reason))
        if decision.route == "human":
            handoff = Handoff(
                handoff_id=new_id("ho"), decision_id=rec.decision_id,
                conversation_id=rec.conversation_id, customer_id=req.customer_id,
                state="pending", reason=decision.reason, rules_fired=decision.rules_fired,
                redacted_text=rec.redacted_input, intent=rec.intent, created_at=now,
                updated_at=now)
            actions.append(ActionOut("handoff", action_id=handoff.handoff_id, status="pending",
                                     detail=decision.reason))
        return actions, handoff, pending


async def _nothing() -> list[Any]:
    return []


def _citations(chunks: list[Chunk]) -> list[Citation]:
    seen: dict[tuple[str, str], None] = {}
    for c in chunks:
        kinds = c.source_kinds or ("",) * len(c.source_ids)
        for sid, kind in zip(c.source_ids, kinds, strict=False):
            seen[(sid, kind)] = None
    return [Citation(sid, kind) for sid, kind in seen]
