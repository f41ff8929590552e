"""Offline check of the intent affinity: does ranking by it find the right document?

For queries with the documents that answer them, and each query's classified intent
and embedding (the caller runs the models), rank the way Respond does
(`affinity.plan` + `affinity.merge`) under several conditions - no affinity, a hand
table of tags, the learned affinity - and report recall@k and the mean reciprocal
rank of the first right document. Used by `aftercare bench affinity` and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
import numpy as np
from numpy.typing import NDArray

from server.knowledge.retrieval import affinity
from server.knowledge.retrieval.affinity import IntentAffinity
from server.knowledge.retrieval.retriever import Retriever


class Query(msgspec.Struct, frozen=True):
    text: str
    relevant: frozenset[str]  # source ids of the documents that answer it


class Condition(msgspec.Struct, frozen=True):
    affinity: IntentAffinity | None = None
    tags: dict[str, str] = {}


class Score(msgspec.Struct, frozen=True):
    recall_at_k: float
    mrr: float
    queries: int


async def evaluate(queries: Sequence[Query], intents: Sequence[str],
                   vectors: NDArray[np.float32], retriever: Retriever,
                   conditions: Mapping[str, Condition], *, kinds: Sequence[str] = ("article",),
                   top_k: int = 3, boost: float = 0.15, min_score: float = 0.3,
                   ) -> dict[str, Score]:
    if not (len(queries) == len(intents) == len(vectors)):
        raise ValueError("queries, intents and vectors must be as many")
    out: dict[str, Score] = {}
    for name, cond in conditions.items():
        hits_at_k, rr = 0, 0.0
        for q, intent, vector in zip(queries, intents, vectors, strict=True):
            searches = affinity.plan(kinds, top_k, intent, cond.affinity, cond.tags)
            found = await retriever.search_vector_many(vector, [(n, f) for n, f, _ in searches])
            ranked = affinity.merge(searches, found, kinds=kinds, boost=boost,
                                    min_score=min_score, top_k=top_k)
            sources = list(dict.fromkeys(p.source_id for _, p in ranked))
            first = next((r for r, sid in enumerate(sources, 1) if sid in q.relevant), 0)
            hits_at_k += first > 0
            rr += 1.0 / first if first else 0.0
        n = max(len(queries), 1)
        out[name] = Score(round(hits_at_k / n, 4), round(rr / n, 4), len(queries))
    return out


def citation_counts(intents: Sequence[str], queries: Sequence[Query],
                    ) -> dict[tuple[str, str], int]:
    """(intent, source id) counts of past conversations whose answer cited the right
    document: what the decision records of a running shop would show."""
    counts: dict[tuple[str, str], int] = {}
    for intent, q in zip(intents, queries, strict=True):
        for sid in q.relevant:
            counts[(intent, sid)] = counts.get((intent, sid), 0) + 1
    return counts
