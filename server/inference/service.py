"""Inference core: Classify and Embed as protocol-neutral calls with input validation.

The servicers (our gRPC API, later the Open Inference Protocol) and the Respond
pipeline all call this, so limits and errors are the same on every path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import msgspec
import numpy as np

from server.config import ModelsConfig
from server.errors import AftercareError, DeadlineExceeded, InvalidInput, Overloaded, short
from server.inference.encoder import EncoderModel, Row, row_oos_score
from server.inference.registry import CLASSIFIER, EMBEDDER, ModelRegistry
from server.inference.traffic import Route, TrafficRouter

DEFAULT_TOP_K = 5
OUT_OF_SCOPE = "<out_of_scope>"
NO_ROUTE = Route(0, 0, 0)
# Admission refusals (counted in aftercare_rejected_total) are no errors of a version.
REFUSALS = (Overloaded, DeadlineExceeded)


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
    shadow_version: str = ""  # "<name>/<version>" that also ran on this text, if any
    # What out_of_scope compares with threshold (higher = more in scope): the version's
    # `oos_score` output, or max(probabilities) for versions without one.
    oos_score: float = 0.0

    @property
    def intent(self) -> str:
        return self.intents[0].name

    @property
    def confidence(self) -> float:
        return self.intents[0].probability


def label_of(result: Classification) -> str:
    """What agreement compares: the top intent, or out of scope."""
    return OUT_OF_SCOPE if result.out_of_scope else result.intent


class TextOutputs(msgspec.Struct, frozen=True):
    name: str
    version: int
    labels: list[str]  # [] for an embedder
    probabilities: np.ndarray | None  # float32 [n, len(labels)], classifiers only
    embeddings: np.ndarray  # float32 [n, dim]
    oos_scores: np.ndarray | None = None  # float32 [n], classifiers with `oos_score` only


class Embeddings(msgspec.Struct, frozen=True):
    vectors: np.ndarray  # float32 [n, dim], L2-normalized
    model_version: str


ClassifiedHook = Callable[[EncoderModel, np.ndarray, bool, "np.ndarray | None"], None]


class InferenceService:
    def __init__(self, registry: ModelRegistry, limits: ModelsConfig) -> None:
        self.registry = registry
        self._limits = limits
        # Told about every live classification (drift monitoring): (model, probabilities,
        # out_of_scope, embedding or None). Called on the event loop: must be cheap.
        self.on_classified: list[ClassifiedHook] = []
        self.traffic: TrafficRouter | None = None  # canary/shadow policies, when wired

    def _check_text(self, text: str, what: str = "text") -> None:
        if not text or not text.strip():
            raise InvalidInput(f"{what} is empty")
        size = len(text.encode("utf-8"))
        if size > self._limits.max_text_bytes:
            raise InvalidInput(
                f"{what} is {size} bytes; the limit is {self._limits.max_text_bytes}"
            )

    async def classify(
        self, text: str, top_k: int = 0, model: str = "", deadline: float | None = None,
        routing_key: str = "",
    ) -> Classification:
        """`routing_key` keeps a caller (a conversation) on one side of a canary split.
        Naming a `model` bypasses traffic policies."""
        self._check_text(text)
        if top_k < 0:
            raise InvalidInput("top_k must be >= 0")
        route = NO_ROUTE
        if not model and self.traffic is not None:
            active = self.registry.get(CLASSIFIER)
            route = self.traffic.route(active.name, active.version, routing_key)
        started = time.perf_counter()
        async with self.registry.use(CLASSIFIER, model, route.serve) as clf:
            if "labels" not in clf.manifest:  # e.g. model="minilm-embedder"
                raise InvalidInput(f"model {short(clf.model_version)} is not a classifier")
            try:
                row = await clf.infer(text, deadline)
            except REFUSALS:
                raise  # the server's load, not the version's fault: no canary rollback
            except Exception:
                self._observe(clf, started, ok=False)
                raise
            self._observe(clf, started, ok=True)
            result = self._classification(clf, row, top_k)
            for hook in self.on_classified:  # drift monitoring
                hook(clf, row[0], result.out_of_scope, row[-1] if len(row) > 1 else None)
        if route.shadow and self.traffic is not None:
            self.traffic.shadow(clf.name, route, text, label_of(result), clf.version)
            if route.shadow != clf.version:
                result = msgspec.structs.replace(
                    result, shadow_version=f"{clf.name}/{route.shadow}")
        return result

    def _observe(self, model: EncoderModel, started: float, ok: bool) -> None:
        if self.traffic is not None:
            self.traffic.observe(model.name, model.version,
                                 (time.perf_counter() - started) * 1000, ok)

    def _classification(self, clf: EncoderModel, row: Row, top_k: int) -> Classification:
        probabilities = row[0]
        labels: list[str] = clf.manifest["labels"]
        threshold = float(clf.manifest.get("oos_threshold", 0.0))
        k = min(top_k or DEFAULT_TOP_K, len(labels))
        order = np.argsort(-probabilities)[:k]
        intents = [IntentScore(labels[i], float(probabilities[i])) for i in order]
        score = row_oos_score(row)
        return Classification(
            intents=intents,
            out_of_scope=score < threshold,
            model_version=clf.model_version,
            threshold=threshold,
            embedding=row[-1] if len(row) > 1 and self._same_encoder(clf) else None,
            oos_score=score,
        )

    async def run_shadow(self, name: str, version: int, text: str) -> str | np.ndarray:
        """One shadow-lane run on exactly (name, version): its label or its vector."""
        async with self.registry.use_version(name, version) as model:
            row = await model.infer(text)
            if model.manifest.get("labels"):
                return label_of(self._classification(model, row, 1))
            return row[-1]

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
        started = time.perf_counter()
        try:
            result = await self.embed_documents(texts, model, deadline)
        except REFUSALS:
            raise
        except Exception:
            if self.traffic is not None and not model:
                self._observe(self.registry.get(EMBEDDER), started, ok=False)
            raise
        if self.traffic is not None and not model:
            active = self.registry.get(EMBEDDER)
            if result.model_version == active.model_version:
                self._observe(active, started, ok=True)
                route = self.traffic.route(active.name, active.version)
                for text, vector in zip(texts, result.vectors, strict=True):
                    self.traffic.shadow(active.name, route, text, vector, active.version)
        return result

    async def embed_documents(
        self, texts: Sequence[str], model: str = "", deadline: float | None = None,
        bulk: bool = False,
    ) -> Embeddings:
        """Embed server-side text (index chunks): no per-call count or byte limits.
        `bulk` (index builds) queues past the admission time budget."""
        async with self.registry.use(EMBEDDER, model) as emb:
            # Each text is its own batcher item, so a large call shares batches fairly.
            rows = await asyncio.gather(*(emb.infer(t, deadline, bulk) for t in texts))
            vectors = np.stack([r[0] for r in rows]).astype(np.float32, copy=False)
            return Embeddings(vectors=vectors, model_version=emb.model_version)

    async def classify_documents(self, texts: Sequence[str], model: str = "",
                                 ) -> tuple[list[str], np.ndarray, str]:
        """Intent probabilities of server-side texts (e.g. article titles): the labels,
        float32 [n, labels] and the classifier version, with no per-call limits. The
        server's own bulk work: queued past the admission time budget, which would
        otherwise refuse a startup or reload on a slow (or pinned) CPU."""
        async with self.registry.use(CLASSIFIER, model) as clf:
            labels: list[str] = list(clf.manifest["labels"])
            rows = await asyncio.gather(*(clf.infer(t, bulk=True) for t in texts))
            probs = (np.stack([r[0] for r in rows]).astype(np.float32, copy=False) if rows
                     else np.zeros((0, len(labels)), dtype=np.float32))
            return labels, probs, clf.model_version

    async def infer_texts(
        self, name: str, version: int, texts: Sequence[str], deadline: float | None = None
    ) -> TextOutputs:
        """Every output of one model version for `texts`, through its batcher (the Open
        Inference Protocol path: it shares batches with Classify and Embed)."""
        if not name:
            raise InvalidInput("model name is empty")
        if not texts:
            raise InvalidInput("no texts")
        if len(texts) > self._limits.max_texts:
            raise InvalidInput(f"{len(texts)} texts; the limit is {self._limits.max_texts}")
        for i, text in enumerate(texts):
            self._check_text(text, f"TEXT[{i}]")
        wanted = f"{name}/{version}" if version else name
        async with self.registry.use(CLASSIFIER, wanted) as model:
            rows = await asyncio.gather(*(model.infer(t, deadline) for t in texts))
            labels = list(model.manifest.get("labels", []))
            probabilities = np.stack([r[0] for r in rows]).astype(np.float32) if labels else None
            embeddings = np.stack([r[-1] for r in rows]).astype(np.float32, copy=False)
            scores = (np.array([r[1] for r in rows], dtype=np.float32)
                      if labels and len(rows[0]) > 2 else None)
            return TextOutputs(model.name, model.version, labels, probabilities, embeddings,
                               scores)

    def embedder_version(self) -> str:
        return self.registry.get(EMBEDDER).model_version

    def classifier_version(self) -> str:
        return self.registry.get(CLASSIFIER).model_version


def deadline_from_timeout(remaining_s: float | None) -> float | None:
    """gRPC's time_remaining() (seconds or None) as a time.monotonic() deadline."""
    return None if remaining_s is None else time.monotonic() + remaining_s
