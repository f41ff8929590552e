"""What Respond tells observability: each stage's timing, and the decision at the end.

The pipeline calls `stage()` at its timing points and `decided()` once per decision;
this turns them into the stage/TTFT/decision/handoff/violation metrics and, with
tracing on, one child span per stage under the RPC's server span (made after the fact
from the same timings, so the pipeline needs no `with` blocks).
"""

from __future__ import annotations

from opentelemetry import trace

from server.observability.metrics import Metrics
from server.observability.tracing import current_trace_id, wall_ns
from server.records.types import DecisionRecord

# The pipeline's timing points -> the stage names of metrics and spans.
STAGE_NAMES = {"pii": "redact", "ground": "retrieve", "generate": "compose"}
_NOT_STAGES = {"ttft", "total"}


class RespondObserver:
    def __init__(self, metrics: Metrics | None = None,
                 tracer: trace.Tracer | None = None) -> None:
        self._metrics = metrics
        self._tracer = tracer

    def trace_id(self) -> str:
        return current_trace_id() if self._tracer is not None else ""

    def stage(self, mark: str, start: float, end: float, busy_s: float | None = None) -> None:
        """A stage ran from `start` to `end` (perf_counter seconds). `busy_s`: time it
        really worked, for a stage interleaved with another (the guard over the stream)."""
        if mark in _NOT_STAGES:
            return
        name = STAGE_NAMES.get(mark, mark)
        if self._metrics is not None:
            self._metrics.stage_duration.labels(name).observe(
                end - start if busy_s is None else busy_s)
        if self._tracer is not None:
            span = self._tracer.start_span(name, start_time=wall_ns(start))
            if busy_s is not None:
                span.set_attribute("aftercare.busy_ms", round(busy_s * 1000.0, 3))
            span.end(end_time=wall_ns(end))

    def decided(self, rec: DecisionRecord, handoff_reason: str = "") -> None:
        m = self._metrics
        if m is None:
            return
        m.decisions.labels(rec.route or "none", rec.outcome or "error", rec.channel).inc()
        ttft_ms = rec.latencies_ms.get("ttft")
        if ttft_ms is not None:
            m.ttft.labels(rec.channel).observe(ttft_ms / 1000.0)
        if handoff_reason:
            m.handoffs.labels(handoff_reason).inc()
        for v in rec.violations:
            m.policy_violations.labels(v.rule, v.action).inc()
