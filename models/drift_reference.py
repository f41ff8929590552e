"""What a classifier's live traffic is compared with for drift (server/observability/
drift.py): recorded in the manifest as `training.drift_reference` at build time."""

from __future__ import annotations

from typing import Any

import numpy as np


def drift_reference(embeddings: np.ndarray, heldout_max_prob: np.ndarray,
                    heldout_oos_score: np.ndarray, threshold: float) -> dict[str, Any]:
    """Mean top probability and out-of-scope rate (served `oos_score` < threshold) on
    held-out folds (what unseen in-scope traffic looks like), and the centroid of the
    training rows' embeddings."""
    top = np.asarray(heldout_max_prob, dtype=np.float64)
    score = np.asarray(heldout_oos_score, dtype=np.float64)
    return {
        "mean_top_probability": float(top.mean()) if top.size else 0.0,
        "oos_rate": float((score < threshold).mean()) if score.size else 0.0,
        "embedding_centroid": [round(float(v), 6) for v in np.asarray(embeddings).mean(axis=0)],
        "source": "cross-validation held-out folds (probabilities); training rows (centroid)",
    }
