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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import numpy as np
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from aftercare.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    support_pb2,
    support_pb2_grpc,
)
from kernels import warmup as warm_kernels
from models.repository import ModelRepository
from server.api.admin import AdminServicer
from server.api.agent import AgentServicer
from server.api.errors import ErrorInterceptor
from server.api.support import SupportServicer
from server.config import Config
from server.conversation.flow_sources import configured_flows
from server.conversation.turns import Conversations
from server.generation.base import Generator
from server.governance.pii import PiiDetector
from server.inference.encoder import EncoderModel
from server.inference.registry import CLASSIFIER, EMBEDDER, ModelRegistry
from server.inference.service import InferenceService
from server.knowledge.retrieval.affinity import learn_from_documents
from server.knowledge.service import KnowledgeService, ShopKnowledge, load_shop
from server.pipeline.feedback import FeedbackService
from server.pipeline.policies import PolicyState
from server.pipeline.respond import RespondPipeline
from server.records.citations import confirmed_citations
from server.records.conversations import ConversationStore
from server.records.drafts import DraftStore
from server.records.store import RecordStore

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    support_pb2.DESCRIPTOR.services_by_name["Support"].full_name,
    agent_pb2.DESCRIPTOR.services_by_name["Agent"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)
REPO_ROOT = Path(__file__).resolve().parents[1]


class App:
    """A built server: call `start()`, then `stop()`; `port` is the bound port."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.executor = ThreadPoolExecutor(
            max_workers=config.executor_threads, thread_name_prefix="aftercare-cpu"
        )
        self.registry = ModelRegistry()
        self.inference = InferenceService(self.registry, config.models)
        self.knowledge = KnowledgeService(
            self.executor, config.retrieval.default_top_k, self._load_shop
        )
        self.records = RecordStore(Path(config.records.path), config.records.queue_size)
        # Guided flows (docs/flows.md); the Respond pipeline walks them per conversation.
        self.flows = configured_flows(config.flows, config.data, REPO_ROOT)
        self.drafts = DraftStore(self.records)
        detector = PiiDetector()
        self.policies = PolicyState(config.policy.path, detector)
        self.conversations = ConversationStore(self.records)
        self.respond = RespondPipeline(
            self.inference, self.knowledge, self.records, self.policies, detector,
            self.executor, self._generator(), config.models.max_text_bytes, config.retrieval,
            conversations=Conversations(self.conversations, config.conversation.idle_timeout_s),
            conversation=config.conversation,
            channels=config.channels, drafts=self.drafts, flows=self.flows,
        )
        self.health = HealthServicer()
        self.server = aio.server(
            interceptors=[ErrorInterceptor()],
            options=[
                ("grpc.max_receive_message_length", config.server.max_message_bytes),
                ("grpc.max_send_message_length", config.server.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        support_pb2_grpc.add_SupportServicer_to_server(
            SupportServicer(self.inference, self.knowledge, self.respond,
                            FeedbackService(self.records, detector)),
            self.server,
        )
        agent_pb2_grpc.add_AgentServicer_to_server(AgentServicer(self.records, self.drafts),
                                                   self.server)
        admin_pb2_grpc.add_AdminServicer_to_server(
            AdminServicer(self.records, self.policies, self.registry, self.knowledge,
                          self.executor),
            self.server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if config.server.reflection:
            reflection.enable_server_reflection(
                (*SERVICE_NAMES, reflection.SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name[
                    "Health"].full_name),
                self.server,
            )
        self.port = self.server.add_insecure_port(f"{config.server.host}:{config.server.port}")
        self._stopped = asyncio.Event()

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

    def _load_encoder(self, role: str) -> EncoderModel:
        cfg = self.config.models
        repo = ModelRepository(Path(cfg.repository))
        name, version = (
            (cfg.classifier, cfg.classifier_version)
            if role == CLASSIFIER
            else (cfg.embedder, cfg.embedder_version)
        )
        mv = repo.get(name, version) if version else repo.latest(name)
        if cfg.verify_checksums:
            mv.verify()
        batcher = (
            self.config.classifier_batcher if role == CLASSIFIER else self.config.embedder_batcher
        )
        # The classifier's embedding output comes along for free (one encoder pass):
        # Respond searches with it when the encoder is the embedder's.
        outputs = ["probabilities", "embedding"] if role == CLASSIFIER else ["embedding"]
        model = EncoderModel(mv, cfg, batcher, self.executor, outputs)
        model.warm_up()
        return model

    async def start(self) -> None:
        await self._set_serving(False)
        await self.records.start()
        await self.conversations.start()
        await self.drafts.start()
        await self.server.start()
        log.info("aftercare listening on %s:%d (warming up)", self.config.server.host, self.port)
        loop = asyncio.get_running_loop()
        for role in (CLASSIFIER, EMBEDDER):
            model = await loop.run_in_executor(self.executor, self._load_encoder, role)
            self.registry.activate(role, model)
            log.info("%s: %s on %s", role, model.model_version, model.providers)
        await self._load_knowledge()
        took = await loop.run_in_executor(self.executor, warm_kernels)
        log.info("kernels compiled in %.2fs", took)
        # Everything loaded so far (the shop, graph, index maps) lives as long as the
        # process: move it out of the collector's view, so that full collections stay
        # short and do not show up as tail latency.
        gc.collect()
        gc.freeze()
        await self._set_serving(True)
        log.info("aftercare serving on port %d", self.port)

    async def _embed_for_index(self, texts: list[str]) -> np.ndarray:
        return (await self.inference.embed_documents(texts)).vectors

    async def _load_shop(self, data_dir: str = "") -> ShopKnowledge:
        embedder = self.registry.get(EMBEDDER)
        data = self.config.data
        if data_dir:
            data = msgspec.structs.replace(data, dir=data_dir)
        shop = await load_shop(
            data, self.config.retrieval, self._embed_for_index,
            embedder.model_version, int(embedder.manifest.get("embedding_dim", 384)),
            self.executor, REPO_ROOT,
        )
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

    async def _load_knowledge(self) -> None:
        shop, _ = await self.knowledge.reload()
        log.info("shop snapshot %s loaded", shop.snapshot_id)

    async def stop(self, grace: float | None = None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        await self._set_serving(False)
        await self.server.stop(self.config.server.grace_s if grace is None else grace)
        await self.registry.close()
        await self.records.close()
        self.executor.shutdown(wait=True)
        log.info("aftercare stopped")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
        await self.server.wait_for_termination()


def build_app(config: Config) -> App:
    return App(config)
