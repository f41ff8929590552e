"""Model lifecycle: load a version aside, check it, swap it in, roll back, unload.

A load runs off the event loop: read the manifest, verify every file's sha256, open
the ONNX session, check that the outputs have the shapes the manifest promises, and
warm it up. Only a version that passed all of that can be activated, so a corrupt or
wrong candidate never touches the serving version: it shows `FAILED` with the reason.
Every operation is serialised per model name and reported as a lifecycle event
(`loaded`, `load_failed`, `activated`, `rolled_back`, `unloaded`) to the event sink.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.repository import ModelRepository, ModelVersion
from server.config import BatcherConfig, ModelsConfig
from server.errors import AftercareError, Conflict, InvalidInput, NotFound
from server.inference.batcher import BatchObserver
from server.inference.encoder import OOS_SCORE, EncoderModel, has_oos_score
from server.inference.registry import ACTIVE, CLASSIFIER, EMBEDDER, ModelEntry, ModelRegistry
from server.inference.rss import trim_heap

log = logging.getLogger(__name__)

_PROBE_TEXTS = ["where is my order", "I want my money back for the broken lamp"]


class EventSink(Protocol):
    async def lifecycle_event(self, model: str, kind: str, detail: str, actor: str) -> None: ...


class MemoryEvents:
    """An EventSink that keeps events in memory (tests, tools without a record store)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    async def lifecycle_event(self, model: str, kind: str, detail: str, actor: str) -> None:
        self.events.append((model, kind, detail, actor))


@dataclass(frozen=True, slots=True)
class Swap:
    previous: str  # "<name>/<version>" or ""
    active: str
    load_ms: float  # 0 when the version was loaded already
    swap_ms: float


# Called on activation before the swap; an embedder's hook builds its index aside and
# returns the function that swaps the index in together with the embedder.
SwapHook = Callable[[EncoderModel], Awaitable[Callable[[], None] | None]]


def index_identity(model: EncoderModel) -> str:
    """What an index built from `model`'s vectors records: version and encoder hash.
    Vectors from two encoders with different identities are never compared."""
    digest = str(model.manifest.get("encoder_sha256", ""))[:16] or "unknown"
    return f"{model.model_version}@{digest}"


def role_of(version: ModelVersion) -> str:
    """A version with class labels is a classifier; one without is an embedder."""
    return CLASSIFIER if version.labels else EMBEDDER


def outputs_for(role: str, manifest: Mapping[str, Any] | None = None) -> list[str]:
    # The classifier's embedding output comes along for free (one encoder pass):
    # Respond searches with it when the encoder is the embedder's. `oos_score` only
    # where the version has it (older versions fall back to max(probabilities)).
    if role != CLASSIFIER:
        return ["embedding"]
    if manifest is not None and has_oos_score(manifest):
        return ["probabilities", OOS_SCORE, "embedding"]
    return ["probabilities", "embedding"]


def check_outputs(model: EncoderModel, role: str) -> None:
    """Run probe texts; raise Conflict when the outputs do not match the manifest."""
    rows = model.run_batch(list(_PROBE_TEXTS))
    dim = int(model.manifest.get("embedding_dim", 0))
    for row in rows:
        if isinstance(row, BaseException):
            raise Conflict(f"{model.model_version}: probe failed: {row}")
        embedding = row[-1]
        if dim and embedding.shape != (dim,):
            raise Conflict(f"{model.model_version}: embedding has shape {embedding.shape}, "
                           f"manifest says ({dim},)")
        if not np.all(np.isfinite(embedding)):
            raise Conflict(f"{model.model_version}: embedding is not finite")
        if role == CLASSIFIER:
            probabilities = row[0]
            labels = model.manifest.get("labels", [])
            if probabilities.shape != (len(labels),):
                raise Conflict(f"{model.model_version}: probabilities have shape "
                               f"{probabilities.shape} for {len(labels)} labels")
            if not np.isfinite(probabilities).all() or abs(float(probabilities.sum()) - 1) > 1e-3:
                raise Conflict(f"{model.model_version}: probabilities do not sum to 1")
            if len(row) > 2:
                _check_oos_score(model, row[1], probabilities)


def _check_oos_score(model: EncoderModel, score: np.ndarray, probabilities: np.ndarray
                     ) -> None:
    """`oos_score` is one finite value in its kind's range (the top probability itself
    for max_prob), or the threshold in the manifest means nothing."""
    kind = (model.manifest.get("oos") or {}).get("score", "")
    value = float(score) if score.shape == () else float("nan")
    low, high = (-1.0, 1.0) if kind == "centroid_cosine" else (0.0, 1.0)
    if not low - 1e-4 <= value <= high + 1e-4:
        raise Conflict(f"{model.model_version}: oos_score {value} (shape {score.shape}) is "
                       f"not a {kind or 'score'} in [{low:g}, {high:g}]")
    if kind == "max_prob" and abs(value - float(probabilities.max())) > 1e-5:
        raise Conflict(f"{model.model_version}: oos_score {value} is not max(probabilities)")


class ModelLifecycle:
    def __init__(
        self,
        registry: ModelRegistry,
        models: ModelsConfig,
        batchers: Mapping[str, BatcherConfig],
        executor: Executor | None,
        events: EventSink | None = None,
        observers: Callable[[str, int], BatchObserver | None] | None = None,
    ) -> None:
        self.registry = registry
        self._observers = observers  # metrics/trace hooks per (model, version) batcher
        self._models = models
        self._batchers = dict(batchers)
        self._executor = executor
        self._events: EventSink = events or MemoryEvents()
        self._locks: dict[str, asyncio.Lock] = {}
        self._swap_hooks: dict[str, SwapHook] = {}
        # Called after a swap (e.g. to end a traffic experiment on the promoted version).
        self.on_activated: list[Callable[[str, int], None]] = []
        # Called before an unload; raise Conflict to refuse (e.g. a canary in use).
        self.unload_guards: list[Callable[[str, int], None]] = []
        registry.after_close = self._release_memory

    @property
    def repository(self) -> ModelRepository:
        return ModelRepository(Path(self._models.repository))

    def set_swap_hook(self, role: str, hook: SwapHook) -> None:
        self._swap_hooks[role] = hook

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def _event(self, name: str, kind: str, detail: str, actor: str) -> None:
        try:
            await self._events.lifecycle_event(name, kind, detail, actor)
        except Exception:  # an event that cannot be written must not undo a swap
            log.exception("recording lifecycle event %s of %s failed", kind, name)

    async def _release_memory(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, trim_heap)

    # -- load --------------------------------------------------------------------------
    def _build(self, version: ModelVersion, role: str) -> EncoderModel:
        """Runs in the executor: verify, open, check, warm. Raises on any problem."""
        if self._models.verify_checksums:
            version.verify()
        observer = self._observers(version.name, version.version) if self._observers else None
        model = EncoderModel(version, self._models, self._batchers[role], self._executor,
                             outputs_for(role, version.manifest), observer)
        check_outputs(model, role)
        model.warm_up()
        return model

    def _resolve(self, name: str, version: int) -> ModelVersion:
        repo = self.repository
        return repo.get(name, version) if version else repo.latest(name)

    async def load(self, name: str, version: int = 0, actor: str = "") -> ModelEntry:
        async with self._lock(name):
            entry, _ = await self._load_locked(name, version, actor)
            return entry

    async def _load_locked(self, name: str, version: int, actor: str
                           ) -> tuple[ModelEntry, float]:
        if version < 0:
            raise InvalidInput("version must be >= 0")
        mv = self._resolve(name, version)  # NotFound for an unknown name or version
        existing = self.registry.entry(name, mv.version)
        if existing is not None and existing.model is not None and existing.state in (
                "READY", ACTIVE):
            return existing, 0.0
        role = role_of(mv)
        self.registry.begin_load(name, mv.version, role)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(self._executor, self._build, mv, role)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, AftercareError) else (
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300])
            self.registry.failed(name, mv.version, role, reason)
            await self._event(name, "load_failed", f"{name}/{mv.version}: {reason}", actor)
            raise Conflict(f"loading {name}/{mv.version} failed: {reason}") from exc
        load_ms = (time.perf_counter() - started) * 1000
        entry = self.registry.loaded(model, role)
        await self._event(name, "loaded", f"{entry.key} in {load_ms:.0f} ms on "
                          f"{','.join(model.providers)}", actor)
        return entry, load_ms

    # -- activate / rollback -----------------------------------------------------------
    async def activate(self, name: str, version: int, actor: str = "",
                       kind: str = "activated") -> Swap:
        async with self._lock(name):
            return await self._activate_locked(name, version, actor, kind)

    async def _activate_locked(self, name: str, version: int, actor: str, kind: str) -> Swap:
        entry, load_ms = await self._load_locked(name, version, actor)
        model = entry.model
        assert model is not None
        current = self.registry.active().get(entry.role)
        if current is model:
            return Swap(model.model_version, model.model_version, load_ms, 0.0)
        hook = self._swap_hooks.get(entry.role)
        swap_index = await hook(model) if hook is not None else None
        started = time.perf_counter()
        if swap_index is not None:
            swap_index()  # the embedder and its index move together: no await between
        previous = self.registry.activate(entry.role, model)
        swap_ms = (time.perf_counter() - started) * 1000
        for callback in self.on_activated:
            callback(name, entry.version)
        prev = previous.model_version if previous else ""
        await self._event(name, kind, f"{prev or '-'} -> {model.model_version} "
                          f"(swap {swap_ms:.3f} ms, load {load_ms:.0f} ms)", actor)
        return Swap(prev, model.model_version, load_ms, swap_ms)

    async def rollback(self, name: str, actor: str = "") -> Swap:
        async with self._lock(name):
            target = self.registry.previous_version(name)
            if not target:
                raise Conflict(f"{name} has no previously active version to roll back to")
            return await self._activate_locked(name, target, actor, "rolled_back")

    async def activate_initial(self, role: str, name: str, version: int) -> EncoderModel:
        """Startup: load and serve the configured version (any failure stops startup)."""
        swap = await self.activate(name, version, actor="startup")
        model = self.registry.get(role)
        if model.model_version != swap.active:
            raise InvalidInput(f"{swap.active} is not a {role}")
        return model

    # -- unload ------------------------------------------------------------------------
    async def unload(self, name: str, version: int, actor: str = "") -> ModelEntry:
        async with self._lock(name):
            entry = self.registry.entry(name, version)
            if entry is None or entry.model is None:
                raise NotFound(f"{name}/{version} is not loaded")
            if entry.state == ACTIVE:
                raise Conflict(f"{entry.key} is the active version; activate another first")
            for guard in self.unload_guards:
                guard(name, version)
            self.registry.retire(name, version)
            await self._event(name, "unloaded", entry.key, actor)
            return entry
