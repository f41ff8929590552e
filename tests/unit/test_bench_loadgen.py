"""The load generator's logic: outcomes by code, merging runs of several processes, the
open-loop schedule split, the benches' ratios. No timings are asserted."""

from __future__ import annotations

import asyncio
import enum

import pytest

from bench.burst import SHED, split_cpus, summary
from bench.classify import parse_targets, ratios
from bench.loadgen import (
    Outcomes,
    Run,
    UnexpectedFailures,
    merge,
    poisson_arrivals,
    scheduled_run,
    unexpected_count,
)
from bench.replicas import scaling
from bench.workers import closed_jobs, open_jobs, split_arrivals, split_concurrency


class Code(enum.Enum):
    RESOURCE_EXHAUSTED = 8
    DEADLINE_EXCEEDED = 4
    CANCELLED = 1


class FakeRpcError(Exception):
    def __init__(self, code: Code, trailing: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(code.name)
        self._code, self._trailing = code, trailing

    def code(self) -> Code:
        return self._code

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailing


def _run(lat: list[float], codes: dict[str, int], start: float, end: float,
         hinted: int = 0, lags: list[float] | None = None) -> Run:
    return Run(lat, codes, hinted, start, end, lags or [])


def test_outcomes_count_every_code_and_the_retry_hints() -> None:
    out = Outcomes()
    out.ok()
    out.ok()
    out.failed(FakeRpcError(Code.RESOURCE_EXHAUSTED, (("retry-after-ms", "40"),)))
    out.failed(FakeRpcError(Code.RESOURCE_EXHAUSTED))  # shed, but without a hint
    out.failed(FakeRpcError(Code.CANCELLED))
    out.failed(ValueError("not an rpc error"))
    assert out.codes == {"OK": 2, "RESOURCE_EXHAUSTED": 2, "CANCELLED": 1, "ValueError": 1}
    assert out.hinted == 1


def test_unexpected_counts_failures_outside_the_allowed_codes() -> None:
    codes = {"OK": 10, "RESOURCE_EXHAUSTED": 5, "CANCELLED": 2, "DEADLINE_EXCEEDED": 1}
    assert unexpected_count(codes, SHED) == 3
    assert unexpected_count(codes, SHED | {"CANCELLED", "DEADLINE_EXCEEDED"}) == 0
    assert unexpected_count({"OK": 3}, ()) == 0


def test_merge_pools_latencies_sums_codes_and_spans_all_workers() -> None:
    # Worker a: fast calls; worker b: one slow call. Pooled percentiles must see the slow
    # one as 1 of 100, not as the p99 of half the workers.
    a = _run([0.001] * 99, {"OK": 99, "RESOURCE_EXHAUSTED": 4}, 10.0, 12.0, hinted=4,
             lags=[0.0] * 99)
    b = _run([0.5], {"OK": 1, "CANCELLED": 1}, 10.5, 13.0, lags=[0.002])
    r = merge("open", 200.0, [a, b], allowed=SHED, strict=False)
    assert r.requests == 100
    assert r.codes == {"CANCELLED": 1, "OK": 100, "RESOURCE_EXHAUSTED": 4}
    assert r.errors == 5 and r.unexpected == 1 and r.hinted == 4
    assert r.seconds == pytest.approx(3.0)  # first start to last end
    assert r.throughput == pytest.approx(100 / 3.0)
    assert r.p50_ms == pytest.approx(1.0)
    assert r.p99_ms < 10.0  # averaging the workers' p99s (1 and 500 ms) would give ~250
    assert r.workers == 2
    assert 0.0 <= r.lag_p99_ms <= 2.0


def test_merge_fails_the_run_on_unexpected_codes_when_strict() -> None:
    bad = _run([0.001], {"OK": 1, "DEADLINE_EXCEEDED": 1}, 0.0, 1.0)
    with pytest.raises(UnexpectedFailures, match="DEADLINE_EXCEEDED"):
        merge("closed", 8, [bad], allowed=SHED)
    ok = _run([0.001], {"OK": 1, "RESOURCE_EXHAUSTED": 3}, 0.0, 1.0)
    assert merge("closed", 8, [ok], allowed=SHED).unexpected == 0


def test_poisson_arrivals_are_seeded_sorted_and_near_the_rate() -> None:
    a = poisson_arrivals(1000.0, 2.0, seed=3)
    assert a == poisson_arrivals(1000.0, 2.0, seed=3)
    assert a != poisson_arrivals(1000.0, 2.0, seed=4)
    assert a == sorted(a) and a[0] == 0.0 and a[-1] < 2.0
    assert 1800 < len(a) < 2200
    assert poisson_arrivals(0.0, 2.0) == []


def test_open_schedule_split_sends_exactly_the_original_schedule() -> None:
    arrivals = poisson_arrivals(500.0, 1.0, seed=1)
    parts = split_arrivals(arrivals, 3)
    assert len(parts) == 3
    merged = sorted((i, t) for times, idx in parts for t, i in zip(times, idx, strict=True))
    assert merged == list(enumerate(arrivals))
    assert max(len(p[0]) for p in parts) - min(len(p[0]) for p in parts) <= 1
    jobs = open_jobs("classify", 500.0, 1.0, 3, timeout_s=2.0, seed=1)
    assert sum(len(j.arrivals) for j in jobs) == len(arrivals)
    assert all(j.timeout_s == 2.0 and j.mode == "open" for j in jobs)


def test_closed_concurrency_split_keeps_the_total() -> None:
    assert split_concurrency(64, 3) == [22, 21, 21]
    assert split_concurrency(1, 2) == [1, 0]
    jobs = closed_jobs("health", 5, 1.0, 2, timeout_s=30.0)
    assert [j.concurrency for j in jobs] == [3, 2]
    assert len({j.first_index for j in jobs}) == 2  # the workers' request numbers differ


async def test_scheduled_run_counts_outcomes_and_lag() -> None:
    async def call(i: int) -> object:
        await asyncio.sleep(0)
        if i % 3 == 0:
            raise FakeRpcError(Code.RESOURCE_EXHAUSTED, (("retry-after-ms", "5"),))
        return i

    run = await scheduled_run(call, [0.0, 0.001, 0.002, 0.003, 0.004, 0.005], range(6))
    assert run.codes == {"RESOURCE_EXHAUSTED": 2, "OK": 4}
    assert run.hinted == 2 and len(run.latencies_s) == 4 and len(run.lags_s) == 6


def test_classify_ratios_use_the_better_raw_limit_and_the_grpc_floor() -> None:
    raw = {"best_throughput": 1000.0, "bs1_p50_ms": 1.0,
           "concurrent": {"best_throughput": 1600.0}}
    srv = {"saturation_throughput": 1200.0, "low_p50_ms": 1.5, "grpc_floor_ms": 0.5,
           "half_p99_ms": 10.0}
    r = ratios(raw, srv)
    assert r["sat_ratio"] == pytest.approx(0.75)  # against the concurrent limit
    assert r["sat_ratio_sequential"] == pytest.approx(1.2)
    assert r["sat_ratio_concurrent"] == pytest.approx(0.75)
    assert r["low_p50_ratio"] == pytest.approx(1.5)
    assert r["low_p50_floor_ratio"] == pytest.approx(1.0)
    assert r["p99_half_ratio"] == pytest.approx(10.0)


def test_targets_flag_parses_host_port_lists() -> None:
    assert parse_targets("a:1, 127.0.0.1:50051") == ["a:1", "127.0.0.1:50051"]
    with pytest.raises(Exception, match="host:port"):
        parse_targets("nohost")


def test_burst_summary_and_cpu_split() -> None:
    steady = merge("open", 100.0, [_run([0.01] * 10, {"OK": 10}, 0.0, 1.0)])
    burst = merge("open", 1000.0, [_run([0.02] * 10, {"OK": 10, "RESOURCE_EXHAUSTED": 90},
                                        0.0, 2.0, hinted=90)], allowed=SHED)
    s = summary(200.0, steady, burst, 2000.0, 1.0, SHED)
    assert s["admitted"] == 10 and s["shed"] == 90 and s["shed_with_retry_hint"] == 90
    assert s["unexpected"] == 0 and s["burst_achieved_rate"] == pytest.approx(100.0)
    assert s["p99_ratio"] == pytest.approx(2.0)
    assert split_cpus({0, 1, 2}) == ({0}, {1, 2})
    assert split_cpus({3}) == (None, None)


def test_replica_scaling_is_the_ratio_of_medians() -> None:
    s = scaling([1000.0, 900.0, 1100.0], [1500.0, 1400.0])
    assert s["one_median"] == 1000.0 and s["two_median"] == 1450.0
    assert s["two_vs_one"] == pytest.approx(1.45)
