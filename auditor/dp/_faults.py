"""Planted DP-SGD bugs, for the tests of ``auditor verify-dp`` only (private: no CLI flag).

``_AUDITOR_DP_FAULT`` names one fault; the training path consults it at the five places
a real bug of each kind would sit, so that ``tests/test_verify_dp.py`` can show the
white-box audit catches it. Unset (always, outside those tests) every hook is the identity.

- ``half-noise``: the optimizer adds noise of std ``sigma C / 2`` while the accountant is
  told ``sigma`` (:class:`auditor.dp.optimizer.BookKeepingDPOptimizer`);
- ``unclipped-tensor``: the first managed parameter tensor sums raw per-example gradients;
- ``batch-clipping``: one clip factor from the norm of the batch's mean gradient (what
  ``clip_grad_norm_`` after a mean-loss backward does) applied to every example;
- ``double-sampling``: Poisson batches drawn at twice the recorded rate (``auditor.train``);
- ``rank-skips-noise``: in several processes, the rank that adds the noise does not.
"""

from __future__ import annotations

import os
from typing import Callable

import torch

ENV = "_AUDITOR_DP_FAULT"
FAULTS = ("half-noise", "unclipped-tensor", "batch-clipping", "double-sampling", "rank-skips-noise")


def active() -> str | None:
    """The planted fault, or None."""
    name = os.environ.get(ENV) or None
    if name is not None and name not in FAULTS:
        raise RuntimeError(f"{ENV}={name!r}: not one of {', '.join(FAULTS)}")
    return name


def noise_scale() -> float:
    return 0.5 if active() == "half-noise" else 1.0


def sampling_factor() -> float:
    return 2.0 if active() == "double-sampling" else 1.0


def skips_noise() -> bool:
    return active() == "rank-skips-noise"


SumWith = Callable[[torch.Tensor], dict]


def clipped_sum(sum_with: SumWith, *, factors: torch.Tensor, unclipped: torch.Tensor, max_grad_norm: float,
                first: torch.nn.Parameter) -> dict:
    """``sum_with(factors)`` (the correct clipped sum), or the planted clipping bug.

    ``sum_with(c)`` is ``{p: sum_i c_i grad_i(p)}``; ``unclipped`` are the factors that
    give the raw per-example gradients.
    """
    fault = active()
    if fault == "unclipped-tensor":
        sums = sum_with(factors)
        sums[first] = sum_with(unclipped)[first]
        return sums
    if fault == "batch-clipping":
        raw = sum_with(unclipped)
        mean_norm = torch.sqrt(sum(v.float().square().sum() for v in raw.values())) / max(1, len(factors))
        scale = (max_grad_norm / (mean_norm + 1e-6)).clamp(max=1.0)
        return {p: v * scale.to(v.dtype) for p, v in raw.items()}
    return sum_with(factors)
