"""Pure Numba array kernels (PageRank, scoring, co-purchase, cadence, top-k)."""

from kernels.warmup import warmup

__all__ = ["warmup"]
