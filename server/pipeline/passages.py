"""The help-center passages Respond may quote for a message and its intent."""

from __future__ import annotations

from typing import Any

from server.config import RetrievalConfig
from server.inference.service import InferenceService
from server.knowledge.retrieval import affinity
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
        the documents that fit this intent (retrieval/affinity.py), merged and ranked;
        matches under `respond_min_score` are not quoted."""
        cfg = self._retrieval
        k = cfg.respond_passages
        shop = self._knowledge.current
        searches = affinity.plan(cfg.respond_kinds, k, intent, shop.affinity, cfg.intent_tags)
        if vector is None:  # the classifier's encoder is not the index's: embed the text
            vector = (await self._inference.embed_documents([text])).vectors[0]
        hits = await self._knowledge.search_filtered(vector, [(n, f) for n, f, _ in searches])
        return affinity.merge(searches, hits, kinds=cfg.respond_kinds,
                              boost=cfg.intent_tag_boost, min_score=cfg.respond_min_score,
                              top_k=k)  # (ranking score, passage with its retrieval score)
