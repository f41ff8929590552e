"""The help-center passages Respond may quote for a message and its intent."""

from __future__ import annotations

from typing import Any

from server.config import RetrievalConfig
from server.inference.service import InferenceService
from server.knowledge.retrieval.retriever import Passage
from server.knowledge.service import KnowledgeService


class PassageFinder:
    def __init__(self, inference: InferenceService, knowledge: KnowledgeService,
                 retrieval: RetrievalConfig) -> None:
        self._inference = inference
        self._knowledge = knowledge
        self._retrieval = retrieval

    async def find(self, text: str, vector: Any, intent: str) -> list[tuple[float, Passage]]:
        """The best customer-facing passages: one filtered search per allowed kind, plus
        the articles tagged for this intent (ranked up by `intent_tag_boost`), merged;
        matches under `respond_min_score` are not quoted."""
        cfg = self._retrieval
        k = cfg.respond_passages
        filters = [{"kind": kind} for kind in cfg.respond_kinds]
        tag = cfg.intent_tags.get(intent, "")
        if tag and "article" in cfg.respond_kinds:
            filters.append({"kind": "article", "tag": tag})
        if vector is None:  # the classifier's encoder is not the index's: embed the text
            vector = (await self._inference.embed_documents([text])).vectors[0]
        hits = await self._knowledge.search_filtered(vector, [(k, f) for f in filters])
        best: dict[str, tuple[float, Passage]] = {}
        for f, found in zip(filters, hits, strict=True):
            boost = cfg.intent_tag_boost if "tag" in f else 0.0
            for p in found:
                if p.score >= cfg.respond_min_score and (
                        p.id not in best or best[p.id][0] < p.score + boost):
                    best[p.id] = (p.score + boost, p)
        ranked = sorted(best.values(), key=lambda sp: (-sp[0], sp[1].id))
        return ranked[:k]  # (ranking score, passage with its retrieval score)
