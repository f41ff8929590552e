"""Retrieval of help passages: chunk the snapshot's documents, embed, index, search.

`Retriever` owns the chunk store and a `VectorIndex` (hnswlib by default). It builds
the index from a snapshot or reloads it from a directory whose manifest.json matches
(embedder, snapshot id, graph params, dim, content hash); it answers searches with
metadata filters and applies upserts and deletes in place. Embedding goes through
the async `embed` function it is given (the server's batched embedder); hnswlib
calls run in an executor so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import msgspec
import numpy as np
from numpy.typing import NDArray

from server.errors import InvalidInput
from server.knowledge.retrieval.chunking import (
    DEFAULT_MAX_WORDS,
    DEFAULT_OVERLAP,
    Chunk,
    chunk_corpus,
    chunks_digest,
)
from server.knowledge.retrieval.vector_index import HnswIndex, HnswParams, check_filters
from server.knowledge.shop.schema import Article, Policy

log = logging.getLogger(__name__)

EmbedFn = Callable[[list[str]], Awaitable[NDArray[np.float32]]]
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
DEFAULT_TOP_K = 5
MAX_TOP_K = 50
MAX_QUERY_CHARS = 4096
_T = TypeVar("_T")


class Passage(msgspec.Struct, frozen=True):
    id: str
    source_id: str
    kind: str
    title: str
    text: str
    score: float  # cosine similarity of query and passage embeddings


class Manifest(msgspec.Struct, frozen=True):
    """What an index directory was built from; a mismatch means rebuild."""

    format: int
    embedder: str  # model name and version, e.g. "all-minilm-l6-v2@3"
    snapshot_id: str
    space: str
    dim: int
    M: int
    ef_construction: int
    # Recorded for reference; query-time only, so a change does not force a rebuild.
    ef: int
    ef_filtered: int
    count: int
    content_hash: str  # chunks_digest of the indexed chunks
    created_at: str  # ISO 8601 UTC

    def reusable_for(self, other: Manifest) -> bool:
        keys = (
            "format",
            "embedder",
            "snapshot_id",
            "space",
            "dim",
            "M",
            "ef_construction",
            "count",
            "content_hash",
        )
        return all(getattr(self, k) == getattr(other, k) for k in keys)


class BuildResult(msgspec.Struct, frozen=True):
    action: str  # "loaded" | "built"
    chunks: int
    seconds: float
    reason: str = ""  # why a saved index was not reused


class Retriever:
    """Passage search over the snapshot's articles and policies."""

    def __init__(
        self,
        embed: EmbedFn,
        dim: int,
        params: HnswParams | None = None,
        *,
        executor: Executor | None = None,
        embed_batch: int = 64,
        max_words: int = DEFAULT_MAX_WORDS,
        overlap: int = DEFAULT_OVERLAP,
    ) -> None:
        self._embed = embed
        self._dim = dim
        self._params = params or HnswParams()
        self._executor = executor
        self._embed_batch = embed_batch
        self._max_words = max_words
        self._overlap = overlap
        self._index = HnswIndex(dim, self._params)
        self._chunks: dict[str, Chunk] = {}
        self._by_source: dict[str, list[str]] = {}
        self._embedder = ""
        self._snapshot_id = ""
        self._content_hash = chunks_digest([])
        self._write_lock = asyncio.Lock()  # one upsert/delete/build at a time

    @property
    def version(self) -> str:
        """Lineage string for decision records: embedder and indexed content."""
        return f"{self._embedder}+{self._content_hash[:12]}"

    def __len__(self) -> int:
        return len(self._chunks)

    def chunk(self, chunk_id: str) -> Chunk | None:
        return self._chunks.get(chunk_id)

    def documents(self) -> list[tuple[str, str, str, tuple[str, ...]]]:
        """(source_id, kind, title, tags) of every indexed document, by source id."""
        out = []
        for sid in sorted(self._by_source):
            c = self._chunks[self._by_source[sid][0]]
            tags = c.metadata.get("tags", ())
            out.append((sid, c.kind, c.title, (tags,) if isinstance(tags, str) else tuple(tags)))
        return out

    async def _in_thread(self, fn: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def _embed_chunks(self, chunks: Sequence[Chunk]) -> NDArray[np.float32]:
        parts = []
        for start in range(0, len(chunks), self._embed_batch):
            texts = [c.embedding_text() for c in chunks[start : start + self._embed_batch]]
            vectors = np.asarray(await self._embed(texts), dtype=np.float32)
            if vectors.shape != (len(texts), self._dim):
                raise ValueError(
                    f"embed returned shape {vectors.shape}, expected {(len(texts), self._dim)}"
                )
            parts.append(vectors)
        return np.concatenate(parts) if parts else np.zeros((0, self._dim), dtype=np.float32)

    def _manifest(self, snapshot_id: str) -> Manifest:
        return Manifest(
            format=MANIFEST_FORMAT,
            embedder=self._embedder,
            snapshot_id=snapshot_id,
            space="ip",
            dim=self._dim,
            M=self._params.M,
            ef_construction=self._params.ef_construction,
            ef=self._params.ef,
            ef_filtered=self._params.ef_filtered,
            count=len(self._chunks),
            content_hash=self._content_hash,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def _set_chunks(self, chunks: Sequence[Chunk]) -> None:
        # Runs in the executor (hashing is O(corpus)); readers on the loop only ever see
        # whole replaced dicts, never a half-updated one.
        by_source: dict[str, list[str]] = {}
        for c in chunks:
            by_source.setdefault(c.source_id, []).append(c.id)
        self._content_hash = chunks_digest(chunks)
        self._by_source = by_source
        self._chunks = {c.id: c for c in chunks}

    async def build_or_load(
        self,
        articles: Iterable[Article],
        policies: Iterable[Policy],
        index_dir: Path | None,
        embedder_version: str,
        snapshot_id: str,
    ) -> BuildResult:
        """Load from `index_dir` when its manifest matches, else build (and save there)."""
        started = time.perf_counter()
        async with self._write_lock:
            chunks = await self._in_thread(
                chunk_corpus, list(articles), list(policies), self._max_words, self._overlap
            )
            self._embedder = embedder_version
            self._snapshot_id = snapshot_id
            await self._in_thread(self._set_chunks, chunks)
            expected = self._manifest(snapshot_id)
            reason = "no index directory" if index_dir is None else ""
            if index_dir is not None:
                reason = await self._in_thread(self._try_load, index_dir, expected)
                if not reason:
                    log.info("retrieval index loaded from %s (%d chunks)", index_dir, len(chunks))
                    return BuildResult("loaded", len(chunks), time.perf_counter() - started)
                log.info("retrieval index rebuilt: %s", reason)
            vectors = await self._embed_chunks(chunks)
            index = HnswIndex(self._dim, self._params)
            await self._in_thread(
                index.add, [c.id for c in chunks], vectors, [_index_meta(c) for c in chunks]
            )
            self._index = index
            if index_dir is not None:
                await self._in_thread(self._save, index_dir, expected)
            return BuildResult("built", len(chunks), time.perf_counter() - started, reason)

    def _try_load(self, index_dir: Path, expected: Manifest) -> str:
        """Load into a fresh index; return "" on success or why the saved one is unusable."""
        try:
            saved = msgspec.json.decode((index_dir / MANIFEST).read_bytes(), type=Manifest)
        except FileNotFoundError:
            return "no manifest"
        except (OSError, msgspec.DecodeError) as exc:
            return f"unreadable manifest ({exc})"
        if not saved.reusable_for(expected):
            return "manifest does not match (embedder, snapshot, params or content changed)"
        index = HnswIndex(self._dim, self._params)
        try:
            index.load(index_dir)
        except (OSError, ValueError, RuntimeError, msgspec.DecodeError) as exc:
            return f"unreadable index ({exc})"
        if len(index) != len(self._chunks) or any(cid not in index for cid in self._chunks):
            return "index ids do not match the chunks"
        self._index = index
        return ""

    def _save(self, index_dir: Path, manifest: Manifest) -> None:
        # The manifest goes last: a crash mid-save leaves no manifest, hence a rebuild.
        (index_dir / MANIFEST).unlink(missing_ok=True)
        self._index.save(index_dir)
        tmp = index_dir / f".{MANIFEST}.tmp"
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
        os.replace(tmp, index_dir / MANIFEST)

    async def save(self, index_dir: Path) -> None:
        """Persist the current state (after upserts/deletes) with a fresh manifest."""
        async with self._write_lock:
            await self._in_thread(self._save, index_dir, self._manifest(self._snapshot_id))

    async def search(
        self, query: str, top_k: int = 0, filters: Mapping[str, str] | None = None
    ) -> list[Passage]:
        """The best `top_k` passages (0 means DEFAULT_TOP_K) that pass every filter."""
        text = query.strip()
        if not text:
            raise InvalidInput("query is empty")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query is longer than {MAX_QUERY_CHARS} characters")
        k = DEFAULT_TOP_K if top_k == 0 else top_k
        if not 1 <= k <= MAX_TOP_K:
            raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
        check_filters(filters)
        if not self._chunks:
            return []
        vector = np.asarray(await self._embed([text]), dtype=np.float32)
        return await self.search_vector(vector, k, filters)

    async def search_vector(
        self,
        vector: NDArray[np.float32],
        top_k: int = 0,
        filters: Mapping[str, str] | None = None,
    ) -> list[Passage]:
        """Search with an embedding the caller already has (same embedder as the index)."""
        return (await self.search_vector_many(vector, [(top_k, filters)]))[0]

    async def search_vector_many(
        self,
        vector: NDArray[np.float32],
        requests: Sequence[tuple[int, Mapping[str, str] | None]],
    ) -> list[list[Passage]]:
        """Several (top_k, filters) searches for one embedding in one trip to the thread
        pool: a caller that ranks across filters pays one hop, not one per filter."""
        plan = []
        for top_k, filters in requests:
            k = DEFAULT_TOP_K if top_k == 0 else top_k
            if not 1 <= k <= MAX_TOP_K:
                raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
            check_filters(filters)
            plan.append((k, filters))
        if not self._chunks:
            return [[] for _ in plan]
        row = np.asarray(vector, dtype=np.float32).reshape(1, -1)

        def run() -> list[list[tuple[str, float]]]:
            return [self._index.search(row, k, filters)[0] for k, filters in plan]

        out = []
        for hits in await self._in_thread(run):
            passages = []
            for chunk_id, score in hits:
                c = self._chunks.get(chunk_id)
                if c is not None:  # deleted between the graph walk and now
                    passages.append(Passage(c.id, c.source_id, c.kind, c.title, c.text, score))
            out.append(passages)
        return out

    async def upsert(
        self, articles: Iterable[Article] = (), policies: Iterable[Policy] = ()
    ) -> int:
        """Add or replace documents (by source id); returns the number of chunks indexed."""
        articles, policies = list(articles), list(policies)
        chunks = chunk_corpus(articles, policies, self._max_words, self._overlap)
        # Every named document is replaced, also one that now yields no chunk.
        source_ids = {a.article_id for a in articles} | {p.policy_id for p in policies}
        async with self._write_lock:
            vectors = await self._embed_chunks(chunks)
            new_ids = {c.id for c in chunks}
            stale = [
                cid
                for sid in source_ids
                for cid in self._by_source.get(sid, [])
                if cid not in new_ids
            ]
            await self._in_thread(self._replace, chunks, vectors, stale, source_ids)
        return len(chunks)

    def _replace(
        self,
        chunks: Sequence[Chunk],
        vectors: NDArray[np.float32],
        stale: Sequence[str],
        sources: set[str],
    ) -> None:
        self._index.add([c.id for c in chunks], vectors, [_index_meta(c) for c in chunks])
        self._index.delete(stale)
        kept = [c for c in self._chunks.values() if c.source_id not in sources]
        self._set_chunks([*kept, *chunks])

    async def delete(self, source_ids: Iterable[str]) -> int:
        """Remove documents by source id; returns the number of chunks removed."""
        wanted = set(source_ids)
        async with self._write_lock:
            doomed = [cid for sid in wanted for cid in self._by_source.get(sid, [])]
            return await self._in_thread(self._remove, doomed, wanted)

    def _remove(self, chunk_ids: Sequence[str], sources: set[str]) -> int:
        removed = self._index.delete(chunk_ids)
        self._set_chunks([c for c in self._chunks.values() if c.source_id not in sources])
        return removed


def _index_meta(chunk: Chunk) -> dict[str, str | tuple[str, ...]]:
    return {**chunk.metadata, "kind": chunk.kind, "source_id": chunk.source_id}
