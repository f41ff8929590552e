"""The Prometheus metrics of one server: names and labels are a contract (README).

Each `App` owns its own `CollectorRegistry`, so several servers in one process (tests)
never share counters. Counters and histograms are updated where things happen (the
RPC interceptor, the batchers' observer, the Respond observer); gauges that mirror
state (queue depths, loaded models, the shop snapshot) are read at scrape time from
`LiveSources`, so nothing has to keep them up to date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. RPCs span a ping (~0.2 ms) to a long Respond stream; queue waits are short.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
               5.0, 10.0, 30.0)
INFER_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
STAGE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True, slots=True)
class LiveModel:
    name: str
    version: str
    providers: Sequence[str]
    queue_depth: int


@dataclass(slots=True)
class LiveSources:
    """Read at scrape time (from the HTTP thread: each must be cheap and lock-free)."""

    models: Callable[[], Iterable[LiveModel]] = lambda: ()
    record_queue_depth: Callable[[], int] = lambda: 0
    snapshot: Callable[[], tuple[str, str] | None] = lambda: None  # (snapshot, index)


class _LiveCollector(Collector):
    def __init__(self, sources: LiveSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("aftercare_queue_depth", "Requests waiting in a model's "
                                  "batcher queue", labels=["model"])
        info = GaugeMetricFamily("aftercare_model_info", "A loaded model version (value 1)",
                                 labels=["model", "version", "providers"])
        for m in self._sources.models():
            depth.add_metric([m.name], m.queue_depth)
            info.add_metric([m.name, m.version, ",".join(m.providers)], 1)
        yield depth
        yield info
        records = GaugeMetricFamily("aftercare_record_queue_depth",
                                    "Decision records queued for the database writer")
        records.add_metric([], self._sources.record_queue_depth())
        yield records
        snap = GaugeMetricFamily("aftercare_snapshot_info", "The shop snapshot in service "
                                 "(value 1)", labels=["snapshot_id", "index_version"])
        current = self._sources.snapshot()
        if current is not None:
            snap.add_metric(list(current), 1)
        yield snap


class Metrics:
    def __init__(self, sources: LiveSources | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sources = sources or LiveSources()
        self.rpc_requests = Counter(
            "aftercare_rpc_requests_total", "RPCs finished, by status code",
            ["service", "method", "code"], registry=r)
        self.rpc_duration = Histogram(
            "aftercare_rpc_duration_seconds", "RPC handling time (a stream: until its last "
            "message)", ["service", "method"], buckets=RPC_BUCKETS, registry=r)
        self.inference_requests = Counter(
            "aftercare_inference_requests_total", "Texts a model ran on",
            ["model", "version", "traffic"], registry=r)
        self.inference_duration = Histogram(
            "aftercare_inference_duration_seconds", "Compute time of one batch (tokenize + "
            "run)", ["model", "version"], buckets=INFER_BUCKETS, registry=r)
        self.queue_duration = Histogram(
            "aftercare_queue_duration_seconds", "Time a request waited in the batcher queue",
            ["model"], buckets=INFER_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "aftercare_batch_size", "Requests per batch", ["model"], buckets=BATCH_BUCKETS,
            registry=r)
        self.rejected = Counter(
            "aftercare_rejected_total", "Requests a batcher refused or dropped",
            ["model", "reason"], registry=r)
        self.stage_duration = Histogram(
            "aftercare_respond_stage_duration_seconds", "Time in one Respond stage",
            ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.ttft = Histogram(
            "aftercare_respond_ttft_seconds", "Respond: time to the first streamed text",
            ["channel"], buckets=RPC_BUCKETS, registry=r)
        self.handoffs = Counter(
            "aftercare_handoffs_total", "Handoffs to a human, by reason", ["reason"],
            registry=r)
        self.policy_violations = Counter(
            "aftercare_policy_violations_total", "Stream guard findings", ["rule", "action"],
            registry=r)
        self.decisions = Counter(
            "aftercare_decisions_total", "Respond decisions recorded",
            ["route", "outcome", "channel"], registry=r)
        # Set by model lifecycle (shadow/canary) once it runs a second version.
        self.shadow_agreement = Gauge(
            "aftercare_shadow_agreement", "Share of shadow predictions that agree with the "
            "served version", ["model", "version"], registry=r)
        self.drift_value = Gauge(
            "aftercare_drift_value", "Latest drift figure of a model version",
            ["model", "version", "metric"], registry=r)
        self.drift_alert = Gauge(
            "aftercare_drift_alert", "1 while a drift figure is past its threshold",
            ["model", "version", "metric"], registry=r)
        r.register(_LiveCollector(self.sources))

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in this registry."""
        return generate_latest(self.registry)
