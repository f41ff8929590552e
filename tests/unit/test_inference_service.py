"""InferenceService paths over a real batcher with a fake model: the server's own bulk
work is not refused by the admission control meant for callers."""

from __future__ import annotations

import asyncio

import numpy as np

from server.config import ModelsConfig
from server.errors import Overloaded
from server.inference.batcher import Batcher
from server.inference.registry import CLASSIFIER, ModelRegistry
from server.inference.service import InferenceService


class SaturatedClassifier:
    """Admission by time sees a slow model: a second queued caller would wait 100 ms
    against a 10 ms budget. `infer` is EncoderModel.infer's contract."""

    def __init__(self) -> None:
        self.name, self.version, self.model_version = "clf", 1, "clf/1"
        self.manifest = {"labels": ["a", "b"]}
        self.providers = ["CPUExecutionProvider"]
        self.holders = 0
        self.batcher: Batcher[str, tuple[np.ndarray, ...]] = Batcher(
            "clf/1", lambda xs: [(np.array([0.9, 0.1], np.float32),) for _ in xs],
            max_batch_size=4, max_queue_time_s=0.01)
        self.batcher.rate.items_per_s = 10.0

    def start(self) -> None:
        self.batcher.start()

    async def close(self) -> None:
        await self.batcher.close()

    def hold(self) -> None:
        self.holders += 1

    def release(self) -> int:
        self.holders -= 1
        return self.holders

    async def infer(self, text: str, deadline: float | None = None, bulk: bool = False,
                    ) -> tuple[np.ndarray, ...]:
        return await self.batcher.submit(text, deadline, admit=not bulk)


def _served(model: SaturatedClassifier) -> InferenceService:
    model.start()
    registry = ModelRegistry(1)
    registry.loaded(model, CLASSIFIER)  # type: ignore[arg-type]
    registry.activate(CLASSIFIER, model)  # type: ignore[arg-type]
    return InferenceService(registry, ModelsConfig())


async def test_classify_documents_is_bulk_work_that_admission_does_not_refuse() -> None:
    model = SaturatedClassifier()
    service = _served(model)
    # Two callers at once: the second would wait past the budget and is refused ...
    one, two = await asyncio.gather(model.infer("one"), model.infer("two"),
                                    return_exceptions=True)
    assert isinstance(two, Overloaded) and not isinstance(one, BaseException)
    # ... while the server's own titles all queue, however long the expected wait.
    labels, probs, version = await service.classify_documents([f"title {i}" for i in range(6)])
    assert labels == ["a", "b"] and probs.shape == (6, 2) and version == "clf/1"
    await model.close()



class RecordingTraffic:
    """What InferenceService tells the traffic router about each call."""

    def __init__(self) -> None:
        self.observed: list[bool] = []

    def route(self, name: str, version: int, key: str) -> object:
        from server.inference.service import NO_ROUTE

        return NO_ROUTE

    def observe(self, name: str, version: int, ms: float, ok: bool) -> None:
        self.observed.append(ok)


async def test_refused_calls_are_no_errors_of_the_version() -> None:
    """Overload refusals must not count toward a canary's error rate (auto-rollback)."""
    model = SaturatedClassifier()
    service = _served(model)
    traffic = RecordingTraffic()
    service.traffic = traffic  # type: ignore[assignment]
    results = await asyncio.gather(*(service.classify(f"text {i}") for i in range(4)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert refused and len(refused) < 4
    assert traffic.observed == [True] * (4 - len(refused))
    await model.close()
