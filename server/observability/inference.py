"""A model's batcher observer: request/batch metrics, and one span per batch linked to
the spans of the requests that rode in it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link

from server.observability.metrics import Metrics
from server.observability.tracing import current_span_context, wall_ns


class ModelObserver:
    """Implements server.inference.batcher.BatchObserver for one model version."""

    def __init__(self, metrics: Metrics | None, tracer: trace.Tracer | None, model: str,
                 version: str, traffic: str = "live") -> None:
        self._tracer = tracer
        self._metrics = metrics
        self._model, self._version = model, version
        if metrics is not None:
            self._requests = metrics.inference_requests.labels(model, version, traffic)
            self._compute = metrics.inference_duration.labels(model, version)
            self._queue = metrics.queue_duration.labels(model)
            self._batch = metrics.batch_size.labels(model)

    def enqueued(self) -> Any:
        return current_span_context() if self._tracer is not None else None

    def ran(self, size: int, waits_s: Sequence[float], start: float, end: float,
            tokens: Sequence[Any]) -> None:
        if self._metrics is not None:
            self._requests.inc(size)
            self._compute.observe(end - start)
            self._batch.observe(size)
            for w in waits_s:
                self._queue.observe(w)
        if self._tracer is not None:
            span = self._tracer.start_span(
                "batch", context=trace.set_span_in_context(trace.INVALID_SPAN),
                start_time=wall_ns(start),
                links=[Link(t) for t in tokens if t is not None],
                attributes={"aftercare.model": self._model,
                            "aftercare.model_version": self._version,
                            "aftercare.batch_size": size})
            span.end(end_time=wall_ns(end))

    def rejected(self, reason: str, count: int = 1) -> None:
        if self._metrics is not None:
            self._metrics.rejected.labels(self._model, reason).inc(count)
