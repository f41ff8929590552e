"""Histogram quantiles for the dashboard, the tracer provider factory, and the Respond
observer's metrics."""

from __future__ import annotations

import math

import pytest

from server.errors import InvalidInput
from server.observability.metrics import Metrics
from server.observability.respond import RespondObserver
from server.observability.tracing import build_tracer_provider
from server.observability.traffic import bucket_quantile, traffic_summary
from server.records.types import DecisionRecord, ViolationRecord


def test_bucket_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 10.0), (0.2, 30.0), (0.5, 40.0), (math.inf, 40.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.1 + 0.1 * (20 - 10) / 20)
    assert bucket_quantile(0.25, buckets) == pytest.approx(0.1)  # rank 10: top of bucket 1
    assert bucket_quantile(0.9, buckets) == pytest.approx(0.2 + 0.3 * (36 - 30) / 10)
    assert bucket_quantile(0.5, []) == 0.0
    assert bucket_quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1


def test_traffic_summary_reads_the_registry() -> None:
    m = Metrics()
    for s in (0.001, 0.002, 0.2):
        m.rpc_duration.labels("aftercare.v1.Support", "Classify").observe(s)
    m.rpc_requests.labels("aftercare.v1.Support", "Classify", "OK").inc(2)
    m.rpc_requests.labels("aftercare.v1.Support", "Classify", "INTERNAL").inc()
    m.handoffs.labels("asked_for_human").inc()
    t = traffic_summary(m.registry)
    (rpc,) = t["rpcs"]
    assert rpc["count"] == 3 and rpc["errors"] == 1 and t["requests_total"] == 3
    assert 1.0 <= rpc["p50_ms"] <= 2.5 and rpc["p99_ms"] > 100
    assert t["handoffs_by_reason"] == {"asked_for_human": 1}


def test_respond_observer_counts_a_decision() -> None:
    m = Metrics()
    obs = RespondObserver(m)
    obs.stage("pii", 1.0, 1.002)
    obs.stage("ttft", 1.0, 1.05)  # not a stage: its own histogram, from the record
    obs.stage("guard", 1.0, 2.0, busy_s=0.001)
    rec = DecisionRecord(decision_id="d", conversation_id="d", customer_id="", channel="email",
                         started_at="", route="human", outcome="handed_off",
                         latencies_ms={"ttft": 50.0},
                         violations=[ViolationRecord("no_promises", "block")])
    obs.decided(rec, "asked_for_human")
    text = m.exposition().decode()
    assert 'aftercare_respond_stage_duration_seconds_count{stage="redact"} 1.0' in text
    assert 'aftercare_respond_stage_duration_seconds_sum{stage="guard"} 0.001' in text
    assert 'stage="ttft"' not in text
    assert 'aftercare_respond_ttft_seconds_count{channel="email"} 1.0' in text
    assert ('aftercare_decisions_total{channel="email",outcome="handed_off",route="human"} '
            '1.0') in text
    assert 'aftercare_handoffs_total{reason="asked_for_human"} 1.0' in text
    assert 'aftercare_policy_violations_total{action="block",rule="no_promises"} 1.0' in text
    assert obs.trace_id() == ""  # tracing off


def test_tracer_provider_exporters() -> None:
    for exporter in ("none", "console", "otlp"):
        build_tracer_provider("aftercare-test", exporter).shutdown()
    with pytest.raises(InvalidInput, match=r"tracing\.exporter"):
        build_tracer_provider("aftercare-test", "jaeger")


def test_a_taken_metrics_port_is_a_clear_startup_error() -> None:
    import asyncio
    import socket

    from server.observability.http import ObservabilityHttp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        loop = asyncio.new_event_loop()
        try:
            with pytest.raises(InvalidInput, match="--metrics-port"):
                ObservabilityHttp("127.0.0.1", port, Metrics(), loop, {})
        finally:
            loop.close()
