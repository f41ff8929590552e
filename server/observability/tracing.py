"""OpenTelemetry tracing: off by default; `[tracing] enabled = true` turns it on.

The exporter is OTLP over gRPC, configured by the standard `OTEL_EXPORTER_OTLP_*`
environment (endpoint, headers, timeout...), or `console` / `none` (spans are made,
e.g. for trace ids in decision records, and only processors added in code see them).
Each App gets its own `TracerProvider` (not the global one), so tests can run several.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from server.errors import InvalidInput

EXPORTERS = ("otlp", "console", "none")
_EPOCH_OFFSET_NS = time.time_ns() - time.perf_counter_ns()


def wall_ns(perf_s: float) -> int:
    """A time.perf_counter() reading as epoch nanoseconds (what span times are in)."""
    return int(perf_s * 1e9) + _EPOCH_OFFSET_NS


def build_tracer_provider(service_name: str, exporter: str) -> TracerProvider:
    if exporter not in EXPORTERS:
        raise InvalidInput(f"tracing.exporter must be one of {', '.join(EXPORTERS)}")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


def current_trace_id() -> str:
    """The current span's trace id (32 hex digits), "" outside a recorded trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def current_span_context() -> Any:
    ctx = trace.get_current_span().get_span_context()
    return ctx if ctx.is_valid else None
