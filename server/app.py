"""The one startup function: read config, build every component, wire, start, stop.

Order on start: bind the port with health NOT_SERVING, load and warm the models (and
compile the kernels) off the event loop, then report SERVING. Order on stop: health
NOT_SERVING, `server.stop(grace)` lets in-flight calls finish, drain the batchers,
close sessions and stores, stop the executor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from aftercare.inference.v2 import grpc_service_pb2, grpc_service_pb2_grpc
from aftercare.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    support_pb2,
    support_pb2_grpc,
)
from kernels import warmup as warm_kernels
from server.access.credentials import Authenticator
from server.api.admin import AdminServicer
from server.api.agent import AgentServicer
from server.api.audit import AuditInterceptor
from server.api.auth import AuthInterceptor
from server.api.errors import ErrorInterceptor
from server.api.inference_v2 import InferenceV2Servicer
from server.api.support import SupportServicer
from server.api.tls import ServerTls
from server.concurrency import run_blocking
from server.config import Config, ServerConfig
from server.conversation.flow_sources import configured_flows
from server.conversation.turns import Conversations
from server.errors import Unavailable
from server.generation.base import Generator
from server.governance.pii import PiiDetector
from server.inference.encoder import EncoderModel
from server.inference.lifecycle import ModelLifecycle, index_identity
from server.inference.registry import CLASSIFIER, EMBEDDER, ModelRegistry
from server.inference.service import InferenceService
from server.inference.traffic import TrafficRouter
from server.knowledge.retrieval.affinity import learn_from_documents
from server.knowledge.service import KnowledgeService, ShopKnowledge, load_shop
from server.observability.drift import DriftEvent
from server.observability.wiring import Observability
from server.pipeline.feedback import FeedbackService
from server.pipeline.policies import PolicyState
from server.pipeline.respond import RespondPipeline
from server.records.audit import AuditLog
from server.records.citations import confirmed_citations
from server.records.conversations import ConversationStore
from server.records.drafts import DraftStore
from server.records.retention import RetentionLog
from server.records.store import RecordStore
from server.retention.service import RetentionService

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    support_pb2.DESCRIPTOR.services_by_name["Support"].full_name,
    agent_pb2.DESCRIPTOR.services_by_name["Agent"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
)
REPO_ROOT = Path(__file__).resolve().parents[1]


def grpc_server_options(cfg: ServerConfig) -> list[tuple[str, int]]:
    """The grpc server's channel arguments for `[server]`."""
    options = [
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    if cfg.max_connection_age_ms > 0:
        # A GOAWAY after the age makes clients reconnect (re-resolving DNS names), so
        # connections spread over replicas that joined since; calls in flight finish.
        options += [("grpc.max_connection_age_ms", cfg.max_connection_age_ms),
                    ("grpc.max_connection_age_grace_ms", cfg.max_connection_age_grace_ms)]
    return options


class App:
    """A built server: call `start()`, then `stop()`; `port` is the bound port."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.executor = ThreadPoolExecutor(
            max_workers=config.executor_threads, thread_name_prefix="aftercare-cpu"
        )
        self.registry = ModelRegistry(config.models.keep_ready)
        self.inference = InferenceService(self.registry, config.models)
        self.knowledge = KnowledgeService(
            self.executor, config.retrieval.default_top_k, self._load_shop
        )
        self.records = RecordStore(Path(config.records.path), config.records.queue_size,
                                   config.records.synchronous, url=config.records.url,
                                   pool_size=config.records.pool_size,
                                   prepared_statements=config.records.prepared_statements)
        # Guided flows (docs/flows.md); the Respond pipeline walks them per conversation.
        self.flows = configured_flows(config.flows, config.data, REPO_ROOT)
        detector = PiiDetector()
        self.drafts = DraftStore(self.records, lambda text: detector.redact(text).text)
        self.observe = Observability(config, self.registry, self.records, self.knowledge)
        self.inference.on_classified.append(self.observe.on_classified)
        self.audit = AuditLog(self.records)
        self.lifecycle = ModelLifecycle(
            self.registry, config.models,
            {CLASSIFIER: config.classifier_batcher, EMBEDDER: config.embedder_batcher},
            self.executor, self.audit, observers=self.observe.batch_observer,
        )
        self.traffic = TrafficRouter(
            self.registry, self.inference.run_shadow, self.audit,
            config.traffic.shadow_queue_size, config.traffic.shadow_workers,
        )
        self.inference.traffic = self.traffic
        if self.observe.metrics is not None:
            gauge = self.observe.metrics.shadow_agreement
            self.traffic.on_agreement.append(
                lambda model, version, value: gauge.labels(model, str(version)).set(value))
        self.lifecycle.on_activated.append(self.traffic.on_activated)
        self.lifecycle.unload_guards.append(self.traffic.unload_guard)
        self.lifecycle.set_swap_hook(EMBEDDER, self._embedder_swap)
        self.policies = PolicyState(config.policy.path, detector)
        self.conversations = ConversationStore(self.records)
        self.conversation_turns = Conversations(self.conversations,
                                                config.conversation.idle_timeout_s)
        self._purger: asyncio.Task[None] | None = None
        self.respond = RespondPipeline(
            self.inference, self.knowledge, self.records, self.policies, detector,
            self.executor, self._generator(), config.models.max_text_bytes, config.retrieval,
            conversations=self.conversation_turns,
            conversation=config.conversation,
            channels=config.channels, drafts=self.drafts, flows=self.flows,
            first_chunk_s=config.generation.first_chunk_timeout_s,
            observer=self.observe.respond,
        )
        self.retention = RetentionService(self.knowledge, RetentionLog(self.records),
                                          self.policies, self.executor)
        self.health = HealthServicer()
        self.tls = ServerTls(config.server.tls)
        self.server = aio.server(
            interceptors=self._interceptors(),
            options=grpc_server_options(config.server),
            # Past this many calls in flight grpc itself answers RESOURCE_EXHAUSTED, before
            # any Python runs: the cheapest shedding there is under a burst.
            maximum_concurrent_rpcs=config.server.max_concurrent_rpcs or None,
        )
        support_pb2_grpc.add_SupportServicer_to_server(
            SupportServicer(self.inference, self.knowledge, self.respond,
                            FeedbackService(self.records, detector), self.retention),
            self.server,
        )
        agent_pb2_grpc.add_AgentServicer_to_server(
            AgentServicer(self.records, self.drafts, self.audit), self.server)
        admin_pb2_grpc.add_AdminServicer_to_server(
            AdminServicer(self.records, self.policies, self.registry, self.knowledge,
                          self.executor, retention=self.retention, reports=self.observe.reports,
                          lifecycle=self.lifecycle, traffic=self.traffic, audit=self.audit),
            self.server,
        )
        grpc_service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceV2Servicer(self.inference, self.registry, self.lifecycle), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if config.server.reflection:
            reflection.enable_server_reflection(
                (*SERVICE_NAMES, reflection.SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name[
                    "Health"].full_name),
                self.server,
            )
        address = f"{config.server.host}:{config.server.port}"
        self.port = (self.server.add_secure_port(address, self.tls.credentials())
                     if self.tls.enabled else self.server.add_insecure_port(address))
        self._stopped = asyncio.Event()
        self._closed = asyncio.Event()  # stop() finished: records flushed, all closed

    def _interceptors(self) -> list[aio.ServerInterceptor]:
        """Outermost first: tracing, metrics, access control, the error -> status mapping
        (so rejected calls are traced and counted too), then the admin audit trail."""
        chain: list[aio.ServerInterceptor] = [*self.observe.interceptors()]
        if self.config.auth.enabled:
            chain.append(AuthInterceptor(Authenticator(self.config.auth)))
        chain.append(ErrorInterceptor())
        chain.append(AuditInterceptor(self.audit))
        return chain

    def reload_tls(self) -> None:
        """SIGHUP: re-read the TLS files before the next handshake."""
        if self.tls.enabled:
            self.tls.request_reload()

    def _generator(self) -> Generator | None:
        """None = the grounded composer (built per call under the policy in force)."""
        gen = self.config.generation
        if gen.generator == "composer":
            return None
        if gen.generator != "onnx-lm" or not gen.lm_model:
            from server.errors import InvalidInput

            raise InvalidInput("generation.generator must be 'composer', or 'onnx-lm' with "
                               "generation.lm_model set to a model directory")
        from server.generation.decoding import SamplingConfig
        from server.generation.onnx_lm import OnnxLM

        sampling = SamplingConfig(max_new_tokens=gen.max_new_tokens,
                                  temperature=gen.temperature, top_p=gen.top_p)
        return OnnxLM(Path(gen.lm_model), sampling=sampling,
                      providers=self.config.models.providers or None)

    async def _set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def start(self) -> None:
        await self._set_serving(False)
        await self.records.start()
        self.traffic.start()
        await self.server.start()
        self.observe.start_http()
        log.info("aftercare listening on %s:%d (warming up)", self.config.server.host, self.port)
        cfg = self.config.models
        for role, name, version in ((CLASSIFIER, cfg.classifier, cfg.classifier_version),
                                    (EMBEDDER, cfg.embedder, cfg.embedder_version)):
            model = await self.lifecycle.activate_initial(role, name, version)
            log.info("%s: %s on %s", role, model.model_version, model.providers)
        await self._load_knowledge()
        await self.retention.shop()  # the retention index of the loaded snapshot
        took = await run_blocking(self.executor, warm_kernels)
        log.info("kernels compiled in %.2fs", took)
        # Everything loaded so far (the shop, graph, index maps) lives as long as the
        # process: move it out of the collector's view, so that full collections stay
        # short and do not show up as tail latency.
        gc.collect()
        gc.freeze()
        self._drift_alerts_to_audit(asyncio.get_running_loop())
        await self._set_serving(True)
        if self.config.conversation.purge_interval_s > 0:
            self._purger = asyncio.get_running_loop().create_task(self._purge_idle())
        log.info("aftercare serving on port %d", self.port)

    def _drift_alerts_to_audit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drift alerts become lifecycle events of their model (GetTrafficReport shows
        them next to activations and rollbacks), not only a log line."""
        drift = self.observe.drift
        if drift is None:
            return
        pending: set[asyncio.Task[None]] = set()

        def store(ev: DriftEvent) -> None:
            task = loop.create_task(self.audit.lifecycle_event(
                ev.model, "drift_alert",
                f"v{ev.version} {ev.figure}={ev.live:.4f} (threshold {ev.threshold:.4f})",
                "drift-monitor"))
            pending.add(task)
            task.add_done_callback(pending.discard)

        def from_any_thread(ev: DriftEvent) -> None:
            loop.call_soon_threadsafe(store, ev)

        drift.on_event.append(from_any_thread)

    async def _purge_idle(self) -> None:
        """Now and then, delete the state of conversations idle past the timeout."""
        while True:
            try:
                n = await self.conversation_turns.purge_idle(datetime.now(UTC))
                if n:
                    log.info("deleted the state of %d idle conversations", n)
            except Exception:  # a database hiccup: try again next round
                log.warning("purging idle conversations failed", exc_info=True)
            await asyncio.sleep(self.config.conversation.purge_interval_s)

    async def _load_shop(self, data_dir: str = "", embedder: EncoderModel | None = None
                         ) -> ShopKnowledge:
        """Build the shop with an index from `embedder` (default: the served one).

        The index is pinned to that encoder: its chunks are embedded by exactly that
        version, it is saved in that version's own folder (so a rollback finds it
        again), and its manifest names the encoder hash."""
        target = embedder or self.registry.get(EMBEDDER)
        data = self.config.data
        if data_dir:
            data = msgspec.structs.replace(data, dir=data_dir)
        identity = index_identity(target)

        async def embed(texts: list[str]) -> np.ndarray:
            return (await self.inference.embed_documents(
                texts, target.model_version, bulk=True)).vectors

        folder = Path(self.config.retrieval.index_dir) / f"{target.name}-{target.version}"
        retrieval = msgspec.structs.replace(self.config.retrieval, index_dir=str(folder))
        shop = await load_shop(
            data, retrieval, embed, identity,
            int(target.manifest.get("embedding_dim", 384)), self.executor, REPO_ROOT,
        )
        if embedder is None and index_identity(self.registry.get(EMBEDDER)) != identity:
            # The embedder was swapped while this reload built: never serve a mismatch.
            raise Unavailable("the embedder changed during the reload; run it again")
        return await self._with_affinity(shop)

    async def _with_affinity(self, shop: ShopKnowledge) -> ShopKnowledge:
        """Learn which of the shop's documents fit each intent (the classifier in force
        reads their titles and tags; answers people confirmed add evidence); Respond
        ranks those up."""
        cfg = self.config.retrieval
        if not cfg.intent_affinity:
            return shop
        cited = await confirmed_citations(self.records)
        learned = await learn_from_documents(
            shop.retriever.documents(), self.inference.classify_documents, cfg.respond_kinds,
            per_intent=cfg.affinity_per_intent, min_weight=cfg.affinity_min_weight,
            citations=cited)
        log.info("intent affinity: %d intents over %d documents (%s), %d confirmed citations",
                 len(learned.by_intent), learned.documents, learned.classifier_version,
                 sum(cited.values()))
        return dataclasses.replace(shop, affinity=learned)
    async def _embedder_swap(self, model: EncoderModel) -> Callable[[], None]:
        """Lifecycle hook: build (or load) the new embedder's index aside; the returned
        function swaps it in, and the lifecycle swaps the embedder in the same step."""
        shop = await self._load_shop("", model)
        return lambda: self.knowledge.activate(shop)

    async def _load_knowledge(self) -> None:
        shop, _ = await self.knowledge.reload()
        log.info("shop snapshot %s loaded", shop.snapshot_id)

    async def stop(self, grace: float | None = None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            await self._set_serving(False)
            if self._purger is not None:
                self._purger.cancel()
            await self.server.stop(self.config.server.grace_s if grace is None else grace)
            await self.traffic.close()
            await self.registry.close()
            await self.records.close()
            self.observe.stop()
            self.executor.shutdown(wait=True)
            log.info("aftercare stopped")
        finally:
            self._closed.set()

    @property
    def metrics_port(self) -> int:
        """The bound metrics/dashboard port; 0 when metrics are off."""
        return self.observe.http.port if self.observe.http is not None else 0

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
        await self.server.wait_for_termination()
        # The server terminates before stop() has flushed the records and closed the
        # rest: returning here would let the loop cancel that.
        await self._closed.wait()


def build_app(config: Config) -> App:
    return App(config)
