"""Traffic policies without models: sticky split, agreement, bounded shadow lane,
automatic rollback, and the registry's swap/keep-ready/drain rules on fake models."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from server.errors import Conflict, InvalidInput
from server.inference.lifecycle import MemoryEvents
from server.inference.registry import CLASSIFIER, EMBEDDER, ModelRegistry
from server.inference.traffic import (
    RollbackRule,
    TrafficPolicy,
    TrafficRouter,
    agreement_of,
    in_share,
)


class FakeModel:
    def __init__(self, name: str, version: int, labels: bool = True) -> None:
        self.name, self.version = name, version
        self.model_version = f"{name}/{version}"
        self.manifest = {"labels": ["a", "b"]} if labels else {}
        self.providers = ["CPUExecutionProvider"]
        self.holders = 0
        self.closed = False

    def start(self) -> None:
        pass

    def hold(self) -> None:
        self.holders += 1

    def release(self) -> int:
        self.holders -= 1
        return self.holders

    async def close(self) -> None:
        self.closed = True


def _registry(*versions: int, keep_ready: int = 1) -> tuple[ModelRegistry, dict[int, FakeModel]]:
    registry = ModelRegistry(keep_ready)
    models = {v: FakeModel("clf", v) for v in versions}
    for model in models.values():
        registry.loaded(model, CLASSIFIER)  # type: ignore[arg-type]
    registry.activate(CLASSIFIER, models[versions[0]])  # type: ignore[arg-type]
    return registry, models


def test_in_share_is_sticky_and_proportional() -> None:
    keys = [f"conv-{i}" for i in range(4000)]
    first = [in_share(k, 30) for k in keys]
    assert first == [in_share(k, 30) for k in keys]  # the same key, the same side
    assert 0.27 < sum(first) / len(keys) < 0.33
    assert not any(in_share(k, 0) for k in keys[:50])
    assert all(in_share(k, 100) for k in keys[:50])


def test_agreement_of_labels_and_vectors() -> None:
    assert agreement_of("order_status", "order_status") == 1.0
    assert agreement_of("order_status", "<out_of_scope>") == 0.0
    v = np.array([0.6, 0.8], dtype=np.float32)
    w = np.array([0.8, 0.6], dtype=np.float32)
    assert agreement_of(v, v) == pytest.approx(1.0)
    assert agreement_of(v, w) == pytest.approx(0.96)


async def test_swap_keeps_former_ready_and_retires_beyond_keep_ready() -> None:
    registry, models = _registry(1, 2, 3, keep_ready=1)
    registry.activate(CLASSIFIER, models[2])  # type: ignore[arg-type]
    assert registry.entry("clf", 1).state == "READY"  # type: ignore[union-attr]
    async with registry.use(CLASSIFIER) as held:
        assert held is models[2]
        registry.activate(CLASSIFIER, models[3])  # type: ignore[arg-type]
        # v2 is kept READY (the one rollback target), v1 is beyond keep_ready: retired.
        assert registry.entry("clf", 2).state == "READY"  # type: ignore[union-attr]
        await registry.wait_closed()
        assert models[1].closed and not models[2].closed
    assert registry.previous_version("clf") == 2
    with pytest.raises(Conflict):
        registry.retire("clf", 3)  # the active version


async def test_a_held_version_drains_before_it_closes() -> None:
    registry, models = _registry(1, 2, keep_ready=0)
    async with registry.use(CLASSIFIER) as held:
        registry.activate(CLASSIFIER, models[2])  # type: ignore[arg-type]
        assert registry.entry("clf", 1).state == "DRAINING"  # type: ignore[union-attr]
        await asyncio.sleep(0)
        assert not models[1].closed and held is models[1]
    await registry.wait_closed()
    assert models[1].closed
    assert registry.entry("clf", 1).state == "UNLOADED"  # type: ignore[union-attr]


def _router(registry: ModelRegistry, answers: dict[int, str], queue_size: int = 64
            ) -> tuple[TrafficRouter, MemoryEvents]:
    async def run_shadow(name: str, version: int, text: str) -> str:
        if answers[version] == "error":
            raise RuntimeError("boom")
        return answers[version]

    events = MemoryEvents()
    return TrafficRouter(registry, run_shadow, events, queue_size=queue_size), events


async def test_shadow_disagreement_rolls_back_after_min_requests() -> None:
    registry, _ = _registry(1, 2)
    router, events = _router(registry, {1: "a", 2: "b"})
    seen: list[tuple[str, int, float]] = []  # what the aftercare_shadow_agreement gauge gets
    router.on_agreement.append(lambda m, v, a: seen.append((m, v, a)))
    router.start()
    await router.set_policy(TrafficPolicy(name="clf", shadow_version=2, shadow_percent=100,
                                          rollback=RollbackRule(min_agreement=0.9,
                                                                min_requests=5)))
    for i in range(4):
        route = router.route("clf", 1, f"k{i}")
        assert route.serve == 0 and route.shadow == 2
        router.shadow("clf", route, "text", "a", served_version=1)
        await router.drain()
    assert router.policy("clf").shadow_percent == 100  # 4 < min_requests: no verdict yet
    route = router.route("clf", 1)
    router.shadow("clf", route, "text", "a", served_version=1)
    await router.drain()
    await asyncio.sleep(0)  # let the event task run
    assert router.policy("clf").candidates() == set()
    assert router.route("clf", 1) == (0, 0, 0)
    kinds = [e[1] for e in events.events]
    assert kinds == ["policy_set", "auto_rollback"]
    assert "agreement 0.000 < 0.9" in events.events[-1][2]
    v2 = next(r for r in router.report("clf") if r.version == 2)
    assert (v2.compared, v2.agreement) == (5, 0.0)
    assert seen == [("clf", 2, 0.0)] * 5
    await router.close()


async def test_canary_error_rate_rolls_back_and_agreement_stays_high_when_equal() -> None:
    registry, _ = _registry(1, 2)
    router, _ = _router(registry, {1: "a", 2: "a"})
    router.start()
    await router.set_policy(TrafficPolicy(name="clf", canary_version=2, canary_percent=100,
                                          rollback=RollbackRule(max_error_rate=0.2,
                                                                min_requests=4)))
    for _ in range(4):
        route = router.route("clf", 1, "conv")
        assert route == (2, 1, 2)  # canary answers; the active runs in the shadow
        router.observe("clf", 2, 5.0, ok=True)
        router.shadow("clf", route, "text", "a", served_version=2)
    await router.drain()
    assert next(r for r in router.report("clf") if r.version == 2).agreement == 1.0
    router.observe("clf", 2, 0.0, ok=False)
    router.observe("clf", 2, 0.0, ok=False)
    assert router.route("clf", 1, "conv") == (0, 0, 0)  # 2 errors of 6 > 0.2
    await router.close()


async def test_full_shadow_lane_drops_and_counts() -> None:
    registry, _ = _registry(1, 2)
    router, _ = _router(registry, {1: "a", 2: "a"}, queue_size=2)  # workers not started
    await router.set_policy(TrafficPolicy(name="clf", shadow_version=2, shadow_percent=100))
    for _ in range(5):
        router.shadow("clf", router.route("clf", 1), "t", "a", served_version=1)
    assert next(r for r in router.report("clf") if r.version == 2).shadow_dropped == 3


async def test_policy_validation() -> None:
    registry, _ = _registry(1, 2)
    router, _ = _router(registry, {1: "a", 2: "a"})
    with pytest.raises(InvalidInput):
        await router.set_policy(TrafficPolicy(name="clf", canary_version=2, canary_percent=101))
    with pytest.raises(InvalidInput):
        await router.set_policy(TrafficPolicy(name="clf", canary_version=1, canary_percent=5))
    with pytest.raises(Conflict):
        await router.set_policy(TrafficPolicy(name="clf", shadow_version=7, shadow_percent=5))
    emb = FakeModel("emb", 1, labels=False)
    emb2 = FakeModel("emb", 2, labels=False)
    registry.loaded(emb2, EMBEDDER)  # type: ignore[arg-type]
    registry.activate(EMBEDDER, emb)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="embedder canary"):
        await router.set_policy(TrafficPolicy(name="emb", canary_version=2, canary_percent=5))
    await router.set_policy(TrafficPolicy(name="emb", shadow_version=2, shadow_percent=5))
    with pytest.raises(Conflict):
        router.unload_guard("emb", 2)
    router.on_activated("emb", 2)  # promoting the candidate ends the experiment
    assert router.policy("emb").candidates() == set()
