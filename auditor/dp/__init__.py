"""DP-SGD machinery of our own on top of Opacus: book-keeping per-sample clipping."""

from auditor.dp.bookkeeping import BookKeepingClipper, clip_factors
from auditor.dp.optimizer import BookKeepingDistributedDPOptimizer, BookKeepingDPOptimizer, noisy_mean_gradients

__all__ = [
    "BookKeepingClipper",
    "BookKeepingDPOptimizer",
    "BookKeepingDistributedDPOptimizer",
    "clip_factors",
    "noisy_mean_gradients",
]
