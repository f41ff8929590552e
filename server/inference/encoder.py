"""One loaded encoder model version: ONNX session + tokenizer + its own batcher.

`EncoderModel.run_batch` is the batch function the batcher calls in an executor:
tokenize, sort members by length and cut them into groups so that short messages are
not padded to a long one's width, run each group, and put rows back in caller order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np
import onnxruntime as ort

from models.repository import ModelVersion
from server.config import BatcherConfig, ModelsConfig
from server.errors import InvalidInput
from server.inference.batcher import Batcher, BatchObserver
from server.inference.session import create_session, providers_in_use
from server.inference.tokenizer import Encoded, TextTokenizer

# A group stops growing when padding would waste more than this share of its tokens.
_MAX_PAD_WASTE = 0.25

Row = tuple[np.ndarray, ...]  # one row of each requested output, for one text
# A classifier row is (probabilities, [oos_score,] embedding): embedding always last.
OOS_SCORE = "oos_score"


def row_oos_score(row: Row) -> float:
    """The served out-of-scope score of a classifier row, higher = more in scope: the
    graph's `oos_score` when the version has one, else max(probabilities) (versions
    built before the output existed)."""
    return float(row[1]) if len(row) > 2 else float(np.max(row[0]))


def has_oos_score(manifest: Mapping[str, Any]) -> bool:
    """Whether the version's manifest declares the `oos_score` graph output."""
    return any(o.get("name") == OOS_SCORE for o in manifest.get("outputs", []) or [])


def length_groups(lengths: Sequence[int], max_waste: float = _MAX_PAD_WASTE) -> list[list[int]]:
    """Indices grouped by similar length (ascending) so padding stays under `max_waste`."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        n = lengths[i]
        if current:
            padded = n * (len(current) + 1)  # n is the new max: members are sorted
            if (padded - (total + n)) / padded > max_waste:
                groups.append(current)
                current, total = [], 0
        current.append(i)
        total += n
    if current:
        groups.append(current)
    return groups


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a cpuset or `taskset`), not
    the machine's count: one concurrent batch per core only pays off on cores we get."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class EncoderModel:
    """A servable version: `await model.infer(text)` -> one row per output in `outputs`."""

    def __init__(
        self,
        version: ModelVersion,
        models: ModelsConfig,
        batcher: BatcherConfig,
        executor: Executor | None,
        outputs: Sequence[str],
        observer: BatchObserver | None = None,
    ) -> None:
        self.name = version.name
        self.version = version.version
        self.manifest = version.manifest
        self.model_version = f"{version.name}/{version.version}"
        self.session: ort.InferenceSession = create_session(
            version.model_path,
            models.providers,
            models.intra_op_threads,
            models.inter_op_threads,
            models.allow_spinning,
        )
        self.providers = providers_in_use(self.session)
        self.tokenizer = TextTokenizer(
            version.tokenizer_path, models.max_length, models.max_input_tokens
        )
        declared = {o.name for o in self.session.get_outputs()}
        missing = [o for o in outputs if o not in declared]
        if missing:
            raise InvalidInput(f"model {self.model_version} has no outputs {missing}")
        self.outputs = list(outputs)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._lock = threading.Lock()  # refcount of requests holding this version
        self._holders = 0
        self.batcher: Batcher[str, Row] = Batcher(
            self.model_version,
            self.run_batch,
            max_batch_size=batcher.max_batch_size,
            max_queue_delay_s=batcher.max_queue_delay_ms / 1000.0,
            max_queue_size=batcher.max_queue_size,
            idle_dispatch=batcher.idle_dispatch,
            concurrency=batcher.concurrency or usable_cpus(),
            executor=executor,
            max_queue_time_s=batcher.max_queue_time_ms / 1000.0,
            observer=observer,
        )

    # -- batch function (runs in the executor) -------------------------------------------
    def run_batch(self, texts: list[str]) -> list[Row | BaseException]:
        encoded = self.tokenizer.encode(texts)
        results: list[Row | BaseException] = list(encoded)  # type: ignore[arg-type]
        good = [i for i, e in enumerate(encoded) if not isinstance(e, BaseException)]
        good_enc: list[Encoded] = [encoded[i] for i in good]  # type: ignore[misc]
        for group in length_groups([len(e[0]) for e in good_enc]):
            batch = self.tokenizer.pad([good_enc[g] for g in group])
            arrays = self.session.run(self.outputs, batch.feeds(self.input_names))
            for row, g in enumerate(group):
                results[good[g]] = tuple(np.asarray(a[row]) for a in arrays)
        return results

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self.batcher.start()

    def warm_up(self) -> None:
        """Run a few shapes once so the first real request pays no allocation cost."""
        self.run_batch(["hello"])
        self.run_batch(["where is my order " * n for n in (1, 4, 16)])

    async def close(self) -> None:
        await self.batcher.close()
        # Drop the session now, not when the collector finds the model<->batcher cycle,
        # so an unload frees its memory at once.
        self.session = None

    async def infer(self, text: str, deadline: float | None = None, bulk: bool = False) -> Row:
        """`bulk`: the server's own work (index builds), queued whatever the wait."""
        return await self.batcher.submit(text, deadline, admit=not bulk)

    def hold(self) -> None:
        with self._lock:
            self._holders += 1

    def release(self) -> int:
        with self._lock:
            self._holders -= 1
            return self._holders

    @property
    def holders(self) -> int:
        return self._holders
