"""Knowledge core: one loaded shop (snapshot, graph, facts, recommender, retrieval index)
and the protocol-neutral calls the API and the Respond pipeline make on it.

The loaded shop sits behind one reference (`current`): a re-ingest builds a new
`ShopKnowledge` aside and swaps it in, and a request keeps the one it started with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from server.concurrency import run_blocking
from server.config import DataConfig, RetrievalConfig
from server.errors import InvalidInput, checked_path, short
from server.knowledge.graph.facts import (
    CustomerFacts,
    Eligibility,
    Facts,
    OrderFacts,
    RefundFacts,
    WarrantyFacts,
)
from server.knowledge.graph.graph import KnowledgeGraph
from server.knowledge.recommend.recommender import Recommendation, Recommender
from server.knowledge.recommend.tuning import RecommenderTuning, tune
from server.knowledge.retrieval.affinity import IntentAffinity
from server.knowledge.retrieval.retriever import Passage, Retriever
from server.knowledge.retrieval.vector_index import HnswParams
from server.knowledge.shop.schema import Article, Snapshot

log = logging.getLogger(__name__)

EmbedFn = Callable[[list[str]], Awaitable[np.ndarray]]
MAX_TOP_K = 50


class OrderContext(msgspec.Struct, frozen=True):
    order: OrderFacts
    eligibility: list[Eligibility]  # one per item, same order as order.items


class CustomerContext(msgspec.Struct, frozen=True):
    customer: CustomerFacts
    orders: list[OrderContext]
    warranties: list[WarrantyFacts]
    open_refunds: list[RefundFacts]
    snapshot_id: str


@dataclass(frozen=True)
class ShopKnowledge:
    snapshot: Snapshot
    graph: KnowledgeGraph
    facts: Facts
    recommender: Recommender
    retriever: Retriever
    index_action: str = "built"  # built | loaded (from a matching saved index)
    affinity: IntentAffinity | None = None  # learned intent -> documents (retrieval/affinity)
    # The mix the recommender tuned for this shop, with its validation figures.
    recommender_tuning: RecommenderTuning | None = None

    @property
    def snapshot_id(self) -> str:
        return self.snapshot.snapshot_id


def resolve_data_dir(cfg: DataConfig) -> Path:
    """The configured shop directory, or the demo shop (generated on first use)."""
    if cfg.dir:
        return Path(cfg.dir)
    demo = Path(cfg.demo_dir) / f"{cfg.demo_size}-seed{cfg.demo_seed}"
    if not (demo / "shop.json").exists():
        from server.demo.generate import generate

        log.info("generating the demo shop (%s, seed %d) in %s", cfg.demo_size, cfg.demo_seed, demo)
        generate(demo, cfg.demo_size, cfg.demo_seed)
    return demo


def shared_articles(cfg: DataConfig, repo_root: Path) -> list[Article]:
    """ABCD guidelines and Bitext answers as extra articles, when ../shared is present."""
    if not cfg.use_shared:
        return []
    from server.knowledge.sources import adapters

    root = Path(cfg.shared_dir) if cfg.shared_dir else adapters.shared_data_dir(repo_root)
    out: list[Article] = []
    if (root / adapters.ABCD_GUIDELINES).exists():
        out += adapters.abcd_guidelines(root / adapters.ABCD_GUIDELINES)
    if (root / adapters.BITEXT_CSV).exists():
        out += adapters.bitext_responses(root / adapters.BITEXT_CSV)
    if out:
        log.info("added %d articles from shared data at %s", len(out), root)
    return out


def _build_sync(data: DataConfig, repo_root: Path) -> tuple[
        Snapshot, KnowledgeGraph, Facts, Recommender, list[Article], RecommenderTuning]:
    from server.knowledge.shop.ingest import ingest_dir
    from server.knowledge.shop.mapping import load_mapping

    path = resolve_data_dir(data)
    if not path.is_dir():
        raise InvalidInput(f"data directory {path} does not exist")
    result = ingest_dir(path, Path(data.quarantine_dir), mapping=load_mapping(data.mapping),
                        currency=data.currency)
    summary = result.summary()
    log.info("ingested snapshot %s: %s, derived %s", result.snapshot.snapshot_id,
             summary["totals"], summary["derived"])
    snapshot = result.snapshot
    graph = KnowledgeGraph.build(snapshot)
    facts = Facts(snapshot)
    tuning = tune(snapshot)
    recommender = Recommender(graph, tuning.weights)
    log.info("recommender tuned in %.2f s on %d customers: %s (%s) %s; validation %s",
             tuning.seconds, tuning.customers, tuning.choice, tuning.leans_on, tuning.note,
             msgspec.json.encode(tuning.validation).decode())
    extra = shared_articles(data, repo_root)
    return snapshot, graph, facts, recommender, extra, tuning


async def load_shop(
    data: DataConfig,
    retrieval: RetrievalConfig,
    embed: EmbedFn,
    embedder_version: str,
    dim: int,
    executor: Executor,
    repo_root: Path,
) -> ShopKnowledge:
    snapshot, graph, facts, recommender, extra, tuning = await run_blocking(
        executor, _build_sync, data, repo_root
    )
    params = HnswParams(M=retrieval.m, ef_construction=retrieval.ef_construction, ef=retrieval.ef)
    retriever = Retriever(embed, dim, params, executor=executor)
    built = await retriever.build_or_load(
        [*snapshot.articles, *extra], snapshot.policies, Path(retrieval.index_dir),
        embedder_version, snapshot.snapshot_id,
    )
    log.info("retrieval index %s: %d chunks in %.1fs %s", built.action, built.chunks,
             built.seconds, built.reason)
    return ShopKnowledge(snapshot, graph, facts, recommender, retriever, built.action,
                         recommender_tuning=tuning)


ShopLoader = Callable[[str], Awaitable[ShopKnowledge]]  # data dir ("" = configured)


class KnowledgeService:
    def __init__(self, executor: Executor, default_top_k: int = 5,
                 loader: ShopLoader | None = None) -> None:
        self._executor = executor
        self._default_top_k = default_top_k
        self._loader = loader
        self._reloading = asyncio.Lock()
        self._current: ShopKnowledge | None = None

    def activate(self, shop: ShopKnowledge) -> None:
        self._current = shop  # the swap: one reference assignment

    async def reload(self, data_dir: str = "") -> tuple[ShopKnowledge, ShopKnowledge | None]:
        """Ingest and build a new shop aside, then swap it in. Returns (new, previous).
        One reload at a time; requests keep the shop they started with."""
        if self._loader is None:
            raise InvalidInput("this server was built without a shop loader")
        if data_dir:
            checked_path(data_dir, "data_dir")
        async with self._reloading:
            try:
                shop = await self._loader(data_dir)
            except OSError as exc:  # unreadable (no permission, name too long, not a dir)
                raise InvalidInput(f"data_dir {short(data_dir)} cannot be read: "
                                   f"{exc.strerror or exc.__class__.__name__}") from exc
            previous = self._current
            self.activate(shop)
            return shop, previous

    @property
    def current(self) -> ShopKnowledge:
        if self._current is None:
            from server.errors import Unavailable

            raise Unavailable("the shop's knowledge is still loading")
        return self._current

    async def _run(self, fn: Callable[..., object], *args: object) -> object:
        return await run_blocking(self._executor, fn, *args)

    async def search(
        self,
        query: str,
        top_k: int = 0,
        filters: Mapping[str, str] | None = None,
        vector: np.ndarray | None = None,
    ) -> list[Passage]:
        """Passages for a query; `vector` is its embedding when the caller has it."""
        if not query.strip():
            raise InvalidInput("query is empty")
        if top_k < 0 or top_k > MAX_TOP_K:
            raise InvalidInput(f"top_k must be between 0 and {MAX_TOP_K}")
        retriever = self.current.retriever
        k = top_k or self._default_top_k
        if vector is not None:
            return await retriever.search_vector(vector, k, filters)
        return await retriever.search(query, k, filters)

    async def search_filtered(
        self, vector: np.ndarray, requests: Sequence[tuple[int, Mapping[str, str] | None]],
    ) -> list[list[Passage]]:
        """Several filtered searches for one query embedding, in one executor hop."""
        return await self.current.retriever.search_vector_many(vector, requests)

    async def recommend(
        self, customer_id: str, product_ids: Sequence[str], top_k: int = 0
    ) -> list[Recommendation]:
        if not customer_id and not product_ids:
            raise InvalidInput("give a customer_id, product_ids, or both")
        if top_k < 0 or top_k > MAX_TOP_K:
            raise InvalidInput(f"top_k must be between 0 and {MAX_TOP_K}")
        shop = self.current
        result = await self._run(
            shop.recommender.recommend,
            shop.facts.canonical_customer(customer_id) if customer_id else None,
            list(product_ids), top_k or 10
        )
        return result  # type: ignore[return-value]

    async def customer_context(self, customer_id: str, max_orders: int = 0) -> CustomerContext:
        if not customer_id:
            raise InvalidInput("customer_id is empty")
        if max_orders < 0:
            raise InvalidInput("max_orders must be >= 0")
        shop = self.current
        return await self._run(  # type: ignore[return-value]
            build_customer_context, shop, customer_id, max_orders or 10
        )


def build_customer_context(shop: ShopKnowledge, customer_id: str, limit: int) -> CustomerContext:
    facts = shop.facts
    customer_id = facts.canonical_customer(customer_id)  # a merged id names the kept one
    customer = facts.customer(customer_id)  # NotFound for an unknown customer
    orders = [
        OrderContext(o, [facts.return_eligibility(o.order_id, i.product_id) for i in o.items])
        for o in facts.customer_orders(customer_id, limit)
    ]
    return CustomerContext(
        customer=customer,
        orders=orders,
        warranties=facts.warranties(customer_id),
        open_refunds=facts.open_refunds(customer_id),
        snapshot_id=shop.snapshot_id,
    )
