"""Model registry: the served version of each role behind one swappable reference.

A request takes the model it will use with `async with registry.use(role)`; the
reference it holds stays valid for the whole request, even if an operator swaps the
role to another version meanwhile. A replaced version is retired: it takes no new
requests and is closed (batcher drained, session dropped) once its last holder
leaves. Admin load/swap/rollback, canary and shadow traffic are policies over this
one object (later issue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from server.errors import NotFound, Unavailable, short
from server.inference.encoder import EncoderModel

log = logging.getLogger(__name__)

CLASSIFIER = "classifier"
EMBEDDER = "embedder"


class ModelRegistry:
    def __init__(self) -> None:
        self._active: dict[str, EncoderModel] = {}
        self._history: dict[str, list[EncoderModel]] = {}
        self._retired: set[EncoderModel] = set()
        self._closing: set[asyncio.Task[None]] = set()

    def activate(self, role: str, model: EncoderModel) -> EncoderModel | None:
        """Make `model` the served version of `role`; the old one drains and closes."""
        model.start()
        previous = self._active.get(role)
        self._active[role] = model  # the swap: one reference assignment
        self._history.setdefault(role, []).append(model)
        if previous is not None and previous is not model:
            self._retire(previous)
        log.info("role %s now served by %s", role, model.model_version)
        return previous

    def get(self, role: str) -> EncoderModel:
        try:
            return self._active[role]
        except KeyError:
            raise Unavailable(f"no model is serving {role} yet") from None

    def by_name(self, name: str, default_role: str) -> EncoderModel:
        """The active model of `default_role` when `name` is empty, else by model name."""
        if not name:
            return self.get(default_role)
        for model in self._active.values():
            if name in (model.name, model.model_version):
                return model
        raise NotFound(f"model {short(name)} is not loaded")

    @contextlib.asynccontextmanager
    async def use(self, role: str, name: str = "") -> AsyncIterator[EncoderModel]:
        model = self.by_name(name, role)
        model.hold()
        try:
            yield model
        finally:
            if model.release() == 0 and model in self._retired:
                self._schedule_close(model)

    def active(self) -> dict[str, EncoderModel]:
        return dict(self._active)

    def _retire(self, model: EncoderModel) -> None:
        self._retired.add(model)
        if model.holders == 0:
            self._schedule_close(model)

    def _schedule_close(self, model: EncoderModel) -> None:
        self._retired.discard(model)
        task = asyncio.get_running_loop().create_task(model.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Drain every batcher (queued work still runs), then forget the sessions."""
        models = list(self._active.values()) + list(self._retired)
        self._active.clear()
        self._retired.clear()
        await asyncio.gather(*(m.close() for m in models), *self._closing)
