"""Per-snapshot views the conversational stages read: the catalog (product titles,
brands, categories; which products each help-center source was written for) and the
embeddings of the product titles. Each is built once per snapshot and replaced when a
new snapshot is served."""

from __future__ import annotations

from typing import Any

from server.inference.service import InferenceService
from server.knowledge.service import ShopKnowledge
from server.pipeline import grounding


class ShopViews:
    def __init__(self, inference: InferenceService, title_similarity: bool = True) -> None:
        self._inference = inference
        self._use_titles = title_similarity
        self._catalog: tuple[str, grounding.CatalogView] | None = None
        self._title_vectors: tuple[str, list[str], Any] | None = None

    def catalog(self, shop: ShopKnowledge) -> grounding.CatalogView:
        held = self._catalog
        if held is None or held[0] != shop.snapshot_id:
            held = (shop.snapshot_id, grounding.catalog_view(shop))
            self._catalog = held
        return held[1]

    async def title_similarity(self, shop: ShopKnowledge, view: grounding.CustomerView | None,
                               vector: Any) -> dict[str, float] | None:
        """Cosine of the message and the titles of the customer's order lines (title
        vectors are embedded once per snapshot), for mentions no title word matches."""
        if view is None or vector is None or not self._use_titles:
            return None
        held = self._title_vectors
        if held is None or held[0] != shop.snapshot_id:
            ids = [p.product_id for p in shop.snapshot.products]
            titles = [p.title for p in shop.snapshot.products]
            vecs = (await self._inference.embed_documents(titles)).vectors if titles else None
            held = (shop.snapshot_id, ids, vecs)
            self._title_vectors = held
        _, ids, vecs = held
        if vecs is None:
            return None
        sims = vecs @ vector
        return {pid: float(sims[i]) for i, pid in enumerate(ids) if pid in view.own_ids}
