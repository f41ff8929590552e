"""Request counts and latency percentiles per RPC, read from the metrics registry
(for the dashboard; Prometheus computes the same with histogram_quantile)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets:
    linear within the bucket the rank falls in; the +Inf bucket answers its lower bound."""
    if not buckets or buckets[-1][1] <= 0:
        return 0.0
    buckets = sorted(buckets)
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def traffic_summary(registry: CollectorRegistry) -> dict[str, Any]:
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    counts: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    handoffs: dict[str, float] = {}
    decisions: dict[str, float] = defaultdict(float)
    for family in registry.collect():
        for s in family.samples:
            if s.name == "aftercare_rpc_duration_seconds_bucket":
                key = (s.labels["service"], s.labels["method"])
                buckets[key].append((float(s.labels["le"]), s.value))
            elif s.name == "aftercare_rpc_requests_total":
                key = (s.labels["service"], s.labels["method"])
                counts[key][s.labels["code"]] = s.value
            elif s.name == "aftercare_handoffs_total":
                handoffs[s.labels["reason"]] = s.value
            elif s.name == "aftercare_decisions_total":
                decisions[s.labels["route"]] += s.value
    rpcs = []
    for key in sorted(set(buckets) | set(counts)):
        by_code = counts.get(key, {})
        b = buckets.get(key, [])
        rpcs.append({
            "service": key[0], "method": key[1], "count": sum(by_code.values()),
            "errors": sum(v for c, v in by_code.items() if c != "OK"),
            "p50_ms": 1000.0 * bucket_quantile(0.5, b),
            "p90_ms": 1000.0 * bucket_quantile(0.9, b),
            "p99_ms": 1000.0 * bucket_quantile(0.99, b),
        })
    return {"requests_total": sum(r["count"] for r in rpcs), "rpcs": rpcs,
            "handoffs_by_reason": handoffs, "decisions_by_route": dict(decisions)}
