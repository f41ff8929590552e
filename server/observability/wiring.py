"""Builds the server's observability from config: metrics (on when `[metrics] port` is
not 0), tracing (`[tracing] enabled`), drift monitoring (`[drift] window` > 0), and the
HTTP endpoint. `App` asks it for interceptors and observers and starts/stops it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import numpy as np
from grpc import aio
from opentelemetry.sdk.trace import TracerProvider

from server.config import Config
from server.errors import AftercareError
from server.inference.encoder import EncoderModel
from server.inference.registry import ModelRegistry
from server.knowledge.service import KnowledgeService
from server.observability.drift import DriftMonitor, DriftThresholds
from server.observability.http import ObservabilityHttp
from server.observability.inference import ModelObserver
from server.observability.metrics import LiveModel, LiveSources, Metrics
from server.observability.reports import Reports
from server.observability.respond import RespondObserver
from server.observability.tracing import build_tracer_provider
from server.records.kpis import KpiQuery
from server.records.store import RecordStore, utcnow

log = logging.getLogger(__name__)


class Observability:
    def __init__(self, config: Config, registry: ModelRegistry, records: RecordStore,
                 knowledge: KnowledgeService) -> None:
        self._config = config
        self.metrics: Metrics | None = None
        if config.metrics.port != 0:
            self.metrics = Metrics(LiveSources(
                models=lambda: _live_models(registry.active().values()),
                record_queue_depth=lambda: records.queue_depth,
                snapshot=lambda: _snapshot(knowledge)))
        self.tracer_provider: TracerProvider | None = None
        tracer = None
        if config.tracing.enabled:
            self.tracer_provider = build_tracer_provider(config.tracing.service_name,
                                                         config.tracing.exporter)
            tracer = self.tracer_provider.get_tracer("aftercare")
        self.tracer = tracer
        d = config.drift
        self.drift = DriftMonitor(
            d.window, DriftThresholds(psi=d.psi, top_probability_drop=d.top_probability_drop,
                                      oos_rate_increase=d.oos_rate_increase,
                                      centroid_cosine_min=d.centroid_cosine_min,
                                      min_samples=d.min_samples),
            self.metrics, d.evaluate_every) if d.window > 0 else None
        self.respond = RespondObserver(self.metrics, self.tracer)
        self.reports = Reports(records, knowledge, self.drift, config.kpis.attribution_days)
        self.http: ObservabilityHttp | None = None

    def interceptors(self) -> list[aio.ServerInterceptor]:
        """Outermost first: tracing, then metrics (the error interceptor goes after)."""
        out: list[aio.ServerInterceptor] = []
        if self.tracer_provider is not None:
            from opentelemetry.instrumentation.grpc import aio_server_interceptor

            out.append(aio_server_interceptor(tracer_provider=self.tracer_provider))
        if self.metrics is not None:
            from server.api.metrics import MetricsInterceptor

            out.append(MetricsInterceptor(self.metrics))
        return out

    def batch_observer(self, model: str, version: int) -> ModelObserver | None:
        if self.metrics is None and self.tracer is None:
            return None
        return ModelObserver(self.metrics, self.tracer, model, str(version))

    def on_classified(self, clf: EncoderModel, probabilities: np.ndarray, out_of_scope: bool,
                      embedding: np.ndarray | None) -> None:
        if self.drift is not None:
            self.drift.record(clf.name, clf.version, clf.manifest, probabilities,
                              out_of_scope, embedding)

    def start_http(self) -> None:
        """Serve the metrics port (call on the running loop)."""
        if self.metrics is None:
            return
        loop = asyncio.get_running_loop()

        async def kpis(params: Mapping[str, str]) -> Any:
            q = KpiQuery(since=params.get("since", ""), until=params.get("until", ""),
                         channel=params.get("channel", ""), intent=params.get("intent", ""))
            return msgspec.to_builtins(await self.reports.kpis(q))

        async def drift(params: Mapping[str, str]) -> Any:
            return {"generated_at": utcnow(), "models": msgspec.to_builtins(
                self.reports.drift(params.get("model", "")))}

        cfg = self._config.metrics
        self.http = ObservabilityHttp(cfg.host, cfg.port, self.metrics, loop,
                                      {"/api/kpis": kpis, "/api/drift": drift})
        self.http.start()
        log.info("metrics and dashboard on http://%s:%d/dashboard", cfg.host, self.http.port)

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def _live_models(models: Iterable[EncoderModel]) -> list[LiveModel]:
    return [LiveModel(m.name, str(m.version), m.providers, m.batcher.queue_depth)
            for m in models]


def _snapshot(knowledge: KnowledgeService) -> tuple[str, str] | None:
    try:
        shop = knowledge.current
    except AftercareError:
        return None
    return shop.snapshot_id, shop.retriever.version
