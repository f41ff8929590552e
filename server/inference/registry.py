"""Model registry: every loaded version of every model, and the served one of each role.

A request takes the model it will use with `async with registry.use(role)`; the
reference it holds stays valid for the whole request, even if an operator swaps the
role to another version meanwhile. Swapping is replacing one reference. A version
that stops serving stays `READY` for a fast rollback (up to `keep_ready` former
active versions per model); beyond that, or on unload, it is retired: it takes no new
requests, shows `DRAINING` while requests still hold it, and is closed (batcher
drained, session dropped) once its last holder leaves, then shows `UNLOADED`.

The load itself (files, checksums, warm-up) and the admin rules around it live in
`server/inference/lifecycle.py`; canary and shadow routing in `traffic.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from server.errors import Conflict, NotFound, Unavailable, short
from server.inference.encoder import EncoderModel

log = logging.getLogger(__name__)

CLASSIFIER = "classifier"
EMBEDDER = "embedder"

LOADING = "LOADING"
READY = "READY"
ACTIVE = "ACTIVE"
DRAINING = "DRAINING"
FAILED = "FAILED"
UNLOADED = "UNLOADED"


@dataclass(slots=True, eq=False)
class ModelEntry:
    """What the registry knows about one (name, version): its state and, when loaded,
    the servable model."""

    name: str
    version: int
    role: str
    state: str
    model: EncoderModel | None = None
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    was_active: bool = False

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}"


def manifest_metrics(manifest: dict[str, object]) -> dict[str, float]:
    raw = manifest.get("metrics")
    if not isinstance(raw, dict):
        return {}
    return {
        str(k): float(v) for k, v in raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


class ModelRegistry:
    def __init__(self, keep_ready: int = 1) -> None:
        self.keep_ready = max(0, keep_ready)
        self._active: dict[str, EncoderModel] = {}
        self._entries: dict[str, dict[int, ModelEntry]] = {}
        self._history: dict[str, list[int]] = {}  # versions of a name, in activation order
        self._retired: set[EncoderModel] = set()
        self._closing: set[asyncio.Task[None]] = set()
        # Runs after a version closed (the lifecycle trims the heap off the loop).
        self.after_close: Callable[[], Awaitable[None]] | None = None

    # -- states ------------------------------------------------------------------------
    def entry(self, name: str, version: int) -> ModelEntry | None:
        return self._entries.get(name, {}).get(version)

    def entries(self) -> list[ModelEntry]:
        return [e for name in sorted(self._entries) for _, e in
                sorted(self._entries[name].items())]

    def begin_load(self, name: str, version: int, role: str) -> ModelEntry:
        """Mark (name, version) LOADING; Conflict while it is loading or draining."""
        current = self.entry(name, version)
        if current is not None and current.state in (LOADING, DRAINING):
            raise Conflict(f"{current.key} is {current.state}; try again when it settles")
        entry = ModelEntry(name, version, role, LOADING,
                           was_active=current.was_active if current else False)
        self._entries.setdefault(name, {})[version] = entry
        return entry

    def loaded(self, model: EncoderModel, role: str) -> ModelEntry:
        """A loaded, warmed version becomes READY (its batcher starts)."""
        model.start()
        entry = self.entry(model.name, model.version) or self.begin_load(
            model.name, model.version, role)
        entry.state, entry.model, entry.error = READY, model, ""
        entry.metrics = manifest_metrics(model.manifest)
        entry.providers = list(model.providers)
        return entry

    def failed(self, name: str, version: int, role: str, error: str) -> ModelEntry:
        entry = self.entry(name, version) or self.begin_load(name, version, role)
        entry.state, entry.model, entry.error = FAILED, None, error
        return entry

    # -- the swap ----------------------------------------------------------------------
    def activate(self, role: str, model: EncoderModel) -> EncoderModel | None:
        """Make `model` the served version of `role`. The previous one stays READY for a
        rollback while within `keep_ready`; older former versions retire."""
        entry = self.entry(model.name, model.version)
        if entry is None or entry.model is not model:
            entry = self.loaded(model, role)
        previous = self._active.get(role)
        self._active[role] = model  # the swap: one reference assignment
        entry.state, entry.was_active = ACTIVE, True
        history = self._history.setdefault(model.name, [])
        if model.version in history:
            history.remove(model.version)
        history.append(model.version)
        if previous is not None and previous is not model:
            prev = self.entry(previous.name, previous.version)
            if prev is not None and prev.model is previous:
                prev.state = READY
            else:
                self._retire(previous)
            self._evict_former(previous.name)
        log.info("role %s now served by %s", role, model.model_version)
        return previous

    def _evict_former(self, name: str) -> None:
        """Retire former active versions of `name` beyond the newest `keep_ready`."""
        former = [v for v in reversed(self._history.get(name, []))
                  if (e := self.entry(name, v)) is not None and e.state == READY]
        for version in former[self.keep_ready:]:
            self.retire(name, version)

    def retire(self, name: str, version: int) -> ModelEntry:
        """Stop offering a loaded, non-active version; it closes once nobody holds it."""
        entry = self.entry(name, version)
        if entry is None or entry.model is None:
            raise NotFound(f"{name}/{version} is not loaded")
        if entry.state == ACTIVE:
            raise Conflict(f"{entry.key} is active; activate another version first")
        model = entry.model
        entry.state = DRAINING
        self._retire(model)
        return entry

    def previous_version(self, name: str) -> int:
        """The version that was active before the current one (0 if none)."""
        history = self._history.get(name, [])
        return history[-2] if len(history) >= 2 else 0

    # -- serving -----------------------------------------------------------------------
    def get(self, role: str) -> EncoderModel:
        try:
            return self._active[role]
        except KeyError:
            raise Unavailable(f"no model is serving {role} yet") from None

    def by_name(self, name: str, default_role: str) -> EncoderModel:
        """The active model of `default_role` when `name` is empty, else by model name
        (`"<name>"` = its active version, `"<name>/<version>"` = that loaded version)."""
        if not name:
            return self.get(default_role)
        for model in self._active.values():
            if name in (model.name, model.model_version):
                return model
        base, _, version = name.partition("/")
        if version.isdigit():
            servable = self.servable(base, int(version))
            if servable is not None:
                return servable
        raise NotFound(f"model {short(name)} is not loaded")

    def servable(self, name: str, version: int) -> EncoderModel | None:
        entry = self.entry(name, version)
        if entry is None or entry.state not in (READY, ACTIVE):
            return None
        return entry.model

    @contextlib.asynccontextmanager
    async def use(self, role: str, name: str = "", version: int = 0
                  ) -> AsyncIterator[EncoderModel]:
        """Hold a model for one request. `version` picks a loaded version of the role's
        active model (a canary); when it is no longer servable, the active one answers."""
        model = self.by_name(name, role)
        if version and version != model.version:
            model = self.servable(model.name, version) or model
        # No await between choosing and holding: a swap cannot close it in between.
        model.hold()
        try:
            yield model
        finally:
            if model.release() == 0 and model in self._retired:
                self._schedule_close(model)

    @contextlib.asynccontextmanager
    async def use_version(self, name: str, version: int) -> AsyncIterator[EncoderModel]:
        """Hold exactly (name, version), e.g. for a shadow run; NotFound if not servable."""
        model = self.servable(name, version)
        if model is None:
            raise NotFound(f"{name}/{version} is not loaded")
        model.hold()
        try:
            yield model
        finally:
            if model.release() == 0 and model in self._retired:
                self._schedule_close(model)

    def active(self) -> dict[str, EncoderModel]:
        return dict(self._active)

    # -- draining ------------------------------------------------------------------------
    def _retire(self, model: EncoderModel) -> None:
        self._retired.add(model)
        if model.holders == 0:
            self._schedule_close(model)

    def _schedule_close(self, model: EncoderModel) -> None:
        self._retired.discard(model)
        task = asyncio.get_running_loop().create_task(self._close_one(model))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_one(self, model: EncoderModel) -> None:
        await model.close()
        entry = self.entry(model.name, model.version)
        if entry is not None and entry.model is model:
            entry.state, entry.model = UNLOADED, None
        log.info("%s unloaded", model.model_version)
        if self.after_close is not None:
            await self.after_close()

    async def wait_closed(self) -> None:
        """Wait for every retired version that nobody holds to finish closing."""
        while self._closing:
            await asyncio.gather(*list(self._closing))

    async def close(self) -> None:
        """Drain every batcher (queued work still runs), then forget the sessions."""
        models = {e.model for e in self.entries() if e.model is not None}
        models |= set(self._active.values()) | self._retired
        self._active.clear()
        self._retired.clear()
        await asyncio.gather(*(m.close() for m in models), *self._closing)
        for entry in self.entries():
            entry.model = None
