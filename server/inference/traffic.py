"""Traffic policies over the registry: canary and shadow versions, agreement, auto-rollback.

Per model name one policy may name a canary version (a sticky share of requests is
answered by it, split by a routing key's hash; the active version runs beside each
canary request in the shadow lane) and a shadow version (a random share of requests
also runs on it after the answer is sent, never changing or delaying that answer).

The shadow lane is bounded: one small queue and a few workers. A job that does not
fit is dropped and counted, so a slow candidate cannot hurt live latency. Each shadow
run is compared with the answer it shadows: agreement is the share of equal labels
(top intent or out of scope) for classifiers, the mean cosine for embedders. Once the
candidate has `min_requests` comparisons, crossing a rollback rule clears the policy
and records an `auto_rollback` event with the figures.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import msgspec
import numpy as np

from server.errors import Conflict, InvalidInput
from server.inference.lifecycle import EventSink
from server.inference.registry import CLASSIFIER, ModelEntry, ModelRegistry

log = logging.getLogger(__name__)

Summary = str | np.ndarray  # a label (classifier) or a unit vector (embedder)
ShadowFn = Callable[[str, int, str], Awaitable[Summary]]
_LATENCY_WINDOW = 4096
_BUCKETS = 10_000


class RollbackRule(msgspec.Struct, frozen=True, kw_only=True):
    max_error_rate: float = 0.0
    max_p99_ratio: float = 0.0
    min_agreement: float = 0.0
    min_requests: int = 0


class TrafficPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Zero fields mean none; percents are 0-100."""

    name: str
    canary_version: int = 0
    canary_percent: float = 0.0
    shadow_version: int = 0
    shadow_percent: float = 0.0
    rollback: RollbackRule = msgspec.field(default_factory=RollbackRule)

    def candidates(self) -> set[int]:
        out = set()
        if self.canary_version and self.canary_percent > 0:
            out.add(self.canary_version)
        if self.shadow_version and self.shadow_percent > 0:
            out.add(self.shadow_version)
        return out


class Route(NamedTuple):
    serve: int  # version that answers; 0 = the active one
    shadow: int  # version that runs in the shadow lane; 0 = none
    candidate: int  # the version the comparison is about (canary or shadow); 0 = none


@dataclass(slots=True)
class VersionStats:
    requests: int = 0
    errors: int = 0
    compared: int = 0
    agreement_sum: float = 0.0
    shadow_dropped: int = 0
    latencies_ms: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=_LATENCY_WINDOW))

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self.latencies_ms, float), q)) \
            if self.latencies_ms else 0.0

    @property
    def agreement(self) -> float:
        return self.agreement_sum / self.compared if self.compared else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class VersionReport(msgspec.Struct, frozen=True):
    version: int
    traffic: str
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    compared: int
    agreement: float
    shadow_dropped: int


@dataclass(slots=True)
class _ShadowJob:
    name: str
    run_version: int
    text: str
    reference: Summary
    candidate: int


def in_share(key: str, percent: float) -> bool:
    """Sticky split: the same key always falls on the same side of `percent`."""
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    if not key:
        return random.random() * 100 < percent
    bucket = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    return bucket % _BUCKETS < percent * (_BUCKETS / 100)


def agreement_of(a: Summary, b: Summary) -> float:
    if isinstance(a, str) or isinstance(b, str):
        return 1.0 if a == b else 0.0
    return float(np.dot(a.ravel(), b.ravel()))


class TrafficRouter:
    def __init__(self, registry: ModelRegistry, run_shadow: ShadowFn, events: EventSink,
                 queue_size: int = 64, workers: int = 1) -> None:
        self._registry = registry
        self._run_shadow = run_shadow
        self._events = events
        self._policies: dict[str, TrafficPolicy] = {}
        self._stats: dict[str, dict[int, VersionStats]] = {}
        self._queue: asyncio.Queue[_ShadowJob] = asyncio.Queue(max(1, queue_size))
        self._workers_n = max(1, workers)
        self._workers: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Told (model, version, agreement) after each comparison: the metrics gauge.
        self.on_agreement: list[Callable[[str, int, float], None]] = []
        self.rollbacks = 0

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if not self._workers:
            loop = asyncio.get_running_loop()
            self._workers = [loop.create_task(self._work(), name=f"shadow:{i}")
                             for i in range(self._workers_n)]

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every queued shadow job ran (tests, reports)."""
        await self._queue.join()

    # -- policies ----------------------------------------------------------------------
    def policy(self, name: str) -> TrafficPolicy:
        return self._policies.get(name) or TrafficPolicy(name=name)

    async def set_policy(self, policy: TrafficPolicy, actor: str = "") -> TrafficPolicy:
        active = self._active_entry(policy.name)
        for what, version, percent in (("canary", policy.canary_version, policy.canary_percent),
                                       ("shadow", policy.shadow_version, policy.shadow_percent)):
            if not 0 <= percent <= 100:
                raise InvalidInput(f"{what}_percent must be within 0-100")
            if version < 0:
                raise InvalidInput(f"{what}_version must be >= 0")
            if version and percent > 0:
                if version == active.version:
                    raise InvalidInput(f"{policy.name}/{version} is the active version")
                if self._registry.servable(policy.name, version) is None:
                    raise Conflict(f"{policy.name}/{version} is not loaded; LoadModel first")
        if policy.canary_version and policy.canary_percent > 0 and active.role != CLASSIFIER:
            raise InvalidInput("canary traffic is for classifiers: an embedder canary would "
                               "search the index with another encoder's vectors; use shadow")
        rule = policy.rollback
        if rule.min_requests < 0 or rule.max_error_rate < 0 or rule.max_p99_ratio < 0:
            raise InvalidInput("rollback thresholds must be >= 0")
        self._policies[policy.name] = policy
        self._stats[policy.name] = {}  # a new experiment starts counting from zero
        await self._events.lifecycle_event(policy.name, "policy_set", _describe(policy), actor)
        return policy

    def _active_entry(self, name: str) -> ModelEntry:
        for model in self._registry.active().values():
            entry = self._registry.entry(name, model.version) if model.name == name else None
            if entry is not None:
                return entry
        raise Conflict(f"model {name!r} has no active version")

    def clear(self, name: str) -> None:
        if name in self._policies:
            self._policies[name] = TrafficPolicy(name=name)

    def on_activated(self, name: str, version: int) -> None:
        """A promoted candidate ends the experiment it was part of."""
        if version in self.policy(name).candidates():
            self.clear(name)

    def unload_guard(self, name: str, version: int) -> None:
        if version in self.policy(name).candidates():
            raise Conflict(f"{name}/{version} is in the traffic policy; clear it first")

    def traffic_of(self, name: str, version: int, active_version: int) -> str:
        if version == active_version:
            return "active"
        policy = self.policy(name)
        if version == policy.canary_version and policy.canary_percent > 0:
            return "canary"
        if version == policy.shadow_version and policy.shadow_percent > 0:
            return "shadow"
        return ""

    # -- routing -----------------------------------------------------------------------
    def route(self, name: str, active_version: int, key: str = "") -> Route:
        policy = self._policies.get(name)
        if policy is None:
            return Route(0, 0, 0)
        if policy.canary_version and in_share(key, policy.canary_percent):
            return Route(policy.canary_version, active_version, policy.canary_version)
        if policy.shadow_version and policy.shadow_percent > 0 and (
                random.random() * 100 < policy.shadow_percent):
            return Route(0, policy.shadow_version, policy.shadow_version)
        return Route(0, 0, 0)

    def _stat(self, name: str, version: int) -> VersionStats:
        return self._stats.setdefault(name, {}).setdefault(version, VersionStats())

    def observe(self, name: str, version: int, ms: float, ok: bool) -> None:
        stats = self._stat(name, version)
        stats.requests += 1
        if ok:
            stats.latencies_ms.append(ms)
        else:
            stats.errors += 1
            self._check(name, version)

    def shadow(self, name: str, route: Route, text: str, reference: Summary,
               served_version: int) -> None:
        """Queue a shadow run of `text` (never waits); dropped and counted when full."""
        if not route.shadow or route.shadow == served_version:
            return
        job = _ShadowJob(name, route.shadow, text, reference, route.candidate)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self._stat(name, route.candidate).shadow_dropped += 1

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._run(job)
            except Exception:
                log.exception("shadow run of %s/%d failed", job.name, job.run_version)
            finally:
                self._queue.task_done()

    async def _run(self, job: _ShadowJob) -> None:
        started = time.perf_counter()
        try:
            summary = await self._run_shadow(job.name, job.run_version, job.text)
        except Exception as exc:
            log.debug("shadow %s/%d: %s", job.name, job.run_version, exc)
            self.observe(job.name, job.run_version, 0.0, ok=False)
            return
        self.observe(job.name, job.run_version, (time.perf_counter() - started) * 1000, True)
        if job.candidate not in self.policy(job.name).candidates():
            return  # the experiment ended while this job waited
        stats = self._stat(job.name, job.candidate)
        stats.compared += 1
        stats.agreement_sum += agreement_of(summary, job.reference)
        for hook in self.on_agreement:
            hook(job.name, job.candidate, stats.agreement)
        self._check(job.name, job.candidate)

    # -- automatic rollback ------------------------------------------------------------
    def _check(self, name: str, candidate: int) -> None:
        policy = self._policies.get(name)
        if policy is None or candidate not in policy.candidates():
            return
        rule = policy.rollback
        stats = self._stat(name, candidate)
        if stats.compared + stats.errors < max(1, rule.min_requests):
            return
        reasons = []
        if rule.max_error_rate > 0 and stats.error_rate > rule.max_error_rate:
            reasons.append(f"error rate {stats.error_rate:.3f} > {rule.max_error_rate:g}")
        if rule.max_p99_ratio > 0:
            active = self._active_p99(name, candidate)
            ratio = stats.percentile(99) / active if active > 0 else 0.0
            if ratio > rule.max_p99_ratio:
                reasons.append(f"p99 ratio {ratio:.2f} > {rule.max_p99_ratio:g}")
        if rule.min_agreement > 0 and stats.compared and stats.agreement < rule.min_agreement:
            reasons.append(f"agreement {stats.agreement:.3f} < {rule.min_agreement:g}")
        if not reasons:
            return
        self.clear(name)
        self.rollbacks += 1
        detail = (f"{name}/{candidate}: {'; '.join(reasons)} after {stats.compared} compared, "
                  f"{stats.requests} requests, {stats.errors} errors")
        log.warning("auto rollback of %s", detail)
        task = asyncio.get_running_loop().create_task(
            self._events.lifecycle_event(name, "auto_rollback", detail, "traffic-policy"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _active_p99(self, name: str, candidate: int) -> float:
        others = [s for v, s in self._stats.get(name, {}).items() if v != candidate]
        return max((s.percentile(99) for s in others), default=0.0)

    # -- report ------------------------------------------------------------------------
    def report(self, name: str) -> list[VersionReport]:
        active = next((m.version for m in self._registry.active().values() if m.name == name), 0)
        versions = set(self._stats.get(name, {})) | {
            e.version for e in self._registry.entries()
            if e.name == name and e.model is not None}
        out = []
        for version in sorted(versions):
            s = self._stat(name, version)
            out.append(VersionReport(
                version=version, traffic=self.traffic_of(name, version, active),
                requests=s.requests, errors=s.errors, p50_ms=s.percentile(50),
                p99_ms=s.percentile(99), compared=s.compared, agreement=s.agreement,
                shadow_dropped=s.shadow_dropped,
            ))
        return out


def _describe(policy: TrafficPolicy) -> str:
    r = policy.rollback
    return (f"canary v{policy.canary_version} {policy.canary_percent:g}%, "
            f"shadow v{policy.shadow_version} {policy.shadow_percent:g}%, rollback "
            f"(max_error_rate {r.max_error_rate:g}, max_p99_ratio {r.max_p99_ratio:g}, "
            f"min_agreement {r.min_agreement:g}, min_requests {r.min_requests})")
