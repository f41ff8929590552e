"""Inference core: Classify and Embed as protocol-neutral calls with input validation.

The servicers (our gRPC API, later the Open Inference Protocol) and the Respond
pipeline all call this, so limits and errors are the same on every path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import msgspec
import numpy as np

from server.config import ModelsConfig
from server.errors import AftercareError, InvalidInput
from server.inference.encoder import EncoderModel
from server.inference.registry import CLASSIFIER, EMBEDDER, ModelRegistry

DEFAULT_TOP_K = 5


class IntentScore(msgspec.Struct, frozen=True):
    name: str
    probability: float


class Classification(msgspec.Struct, frozen=True):
    intents: list[IntentScore]  # best first, top_k of them
    out_of_scope: bool
    model_version: str
    threshold: float
    # The text's sentence embedding, when the classifier's encoder is the served
    # embedder's (same encoder_sha256): callers can search with it, no second pass.
    embedding: np.ndarray | None = None

    @property
    def intent(self) -> str:
        return self.intents[0].name

    @property
    def confidence(self) -> float:
        return self.intents[0].probability


class Embeddings(msgspec.Struct, frozen=True):
    vectors: np.ndarray  # float32 [n, dim], L2-normalized
    model_version: str


class InferenceService:
    def __init__(self, registry: ModelRegistry, limits: ModelsConfig) -> None:
        self.registry = registry
        self._limits = limits

    def _check_text(self, text: str, what: str = "text") -> None:
        if not text or not text.strip():
            raise InvalidInput(f"{what} is empty")
        size = len(text.encode("utf-8"))
        if size > self._limits.max_text_bytes:
            raise InvalidInput(
                f"{what} is {size} bytes; the limit is {self._limits.max_text_bytes}"
            )

    async def classify(
        self, text: str, top_k: int = 0, model: str = "", deadline: float | None = None
    ) -> Classification:
        self._check_text(text)
        if top_k < 0:
            raise InvalidInput("top_k must be >= 0")
        async with self.registry.use(CLASSIFIER, model) as clf:
            row = await clf.infer(text, deadline)
            probabilities = row[0]
            labels: list[str] = clf.manifest["labels"]
            threshold = float(clf.manifest.get("oos_threshold", 0.0))
            k = min(top_k or DEFAULT_TOP_K, len(labels))
            order = np.argsort(-probabilities)[:k]
            intents = [IntentScore(labels[i], float(probabilities[i])) for i in order]
            return Classification(
                intents=intents,
                out_of_scope=float(probabilities[order[0]]) < threshold,
                model_version=clf.model_version,
                threshold=threshold,
                embedding=row[1] if len(row) > 1 and self._same_encoder(clf) else None,
            )

    def _same_encoder(self, clf: EncoderModel) -> bool:
        try:
            emb = self.registry.get(EMBEDDER)
        except AftercareError:
            return False
        digest = clf.manifest.get("encoder_sha256")
        return bool(digest) and digest == emb.manifest.get("encoder_sha256")

    async def embed(
        self, texts: Sequence[str], model: str = "", deadline: float | None = None
    ) -> Embeddings:
        if not texts:
            raise InvalidInput("texts is empty")
        if len(texts) > self._limits.max_texts:
            raise InvalidInput(f"{len(texts)} texts; the limit is {self._limits.max_texts}")
        for i, text in enumerate(texts):
            self._check_text(text, f"texts[{i}]")
        return await self.embed_documents(texts, model, deadline)

    async def embed_documents(
        self, texts: Sequence[str], model: str = "", deadline: float | None = None
    ) -> Embeddings:
        """Embed server-side text (index chunks): no per-call count or byte limits."""
        async with self.registry.use(EMBEDDER, model) as emb:
            # Each text is its own batcher item, so a large call shares batches fairly.
            rows = await asyncio.gather(*(emb.infer(t, deadline) for t in texts))
            vectors = np.stack([r[0] for r in rows]).astype(np.float32, copy=False)
            return Embeddings(vectors=vectors, model_version=emb.model_version)

    async def classify_documents(self, texts: Sequence[str], model: str = "",
                                 ) -> tuple[list[str], np.ndarray, str]:
        """Intent probabilities of server-side texts (e.g. article titles): the labels,
        float32 [n, labels] and the classifier version, with no per-call limits."""
        async with self.registry.use(CLASSIFIER, model) as clf:
            labels: list[str] = list(clf.manifest["labels"])
            rows = await asyncio.gather(*(clf.infer(t) for t in texts))
            probs = (np.stack([r[0] for r in rows]).astype(np.float32, copy=False) if rows
                     else np.zeros((0, len(labels)), dtype=np.float32))
            return labels, probs, clf.model_version

    def embedder_version(self) -> str:
        return self.registry.get(EMBEDDER).model_version

    def classifier_version(self) -> str:
        return self.registry.get(CLASSIFIER).model_version


def deadline_from_timeout(remaining_s: float | None) -> float | None:
    """gRPC's time_remaining() (seconds or None) as a time.monotonic() deadline."""
    return None if remaining_s is None else time.monotonic() + remaining_s
