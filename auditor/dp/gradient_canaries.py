"""White-box gradient canaries: extra "records" whose per-example gradient we choose.

Nasr et al. (2023), "Tight Auditing of Differentially Private Machine Learning"; Andrew
et al. (2024), "One-shot Empirical Privacy Estimation for Federated Learning". A canary
``j`` is a record whose gradient is ``M u_j`` with ``||u_j|| = 1`` and ``M`` far above the
clipping norm ``C``, so that a correct DP-SGD step adds exactly ``C u_j`` (up to Opacus'
``1e-6`` in the clip factor) when it samples the canary and nothing when it does not.
``u_j`` is sparse: ``support`` coordinates drawn uniformly over every trainable parameter
(all tensors are hit), each ``+-1/sqrt(support)``, so that canaries are nearly orthogonal
to each other and to the data's gradients, and cheap to project on.

Inside :func:`auditor.train.fit` the canaries go through the code path of real records:

- sampling: the ``inserted`` canaries are candidates ``n .. n+k-1`` of the same Poisson
  draw as the ``n`` records (and the same sharding over processes);
- clipping: their per-sample gradients join the batch in the engine (book-keeping:
  :meth:`BookKeepingClipper.inject`; Opacus: extra rows of ``p.grad_sample``), which
  computes their norms and clip factors and sums them with the records';
- noise and reduction: the optimizer's, unchanged.

After every optimizer step :meth:`observe` reads the privatised gradient ``p.grad`` (what
the optimizer applies, before AdamW's moments transform it) and records, for every
inserted and every held-out canary, ``s = <grad, u_j> * B / C`` (``B`` the expected batch
size): ``1 + N(0, sigma^2)`` when a correct step included the canary, ``N(0, sigma^2)`` when
not. The canaries' directions come from their own seed: they are not a DP mechanism.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from auditor.dp.layers import LayerGrads


class GradientCanaries:
    """``inserted`` canaries among the sampling candidates, ``held_out`` ones never.

    Args:
        inserted, held_out: numbers of canaries.
        support: nonzero coordinates of each direction.
        norm_ratio: ``M / C``, the canary gradient's norm in clipping norms.
        seed: seeds the directions only.
    """

    def __init__(self, *, inserted: int, held_out: int, support: int = 64, norm_ratio: float = 1000.0,
                 seed: int = 0) -> None:
        if inserted < 1 or held_out < 1:
            raise ValueError("need at least one inserted and one held-out canary")
        self.inserted, self.held_out, self.support = inserted, held_out, support
        self.norm_ratio, self.seed = norm_ratio, seed
        self.scores: list[np.ndarray] = []  # per step: (inserted + held_out,) statistics
        self.included: list[np.ndarray] = []  # per step: (inserted,) bool, sampled by the step
        self._mine: list[int] = []

    def attach(self, params: Sequence[nn.Parameter], *, max_grad_norm: float, expected_batch_size: float) -> None:
        """Draw the directions over ``params`` (the trainable parameters, in the engine's order)."""
        self.params = list(params)
        self._sizes = [p.numel() for p in self.params]
        total = sum(self._sizes)
        device = self.params[0].device
        gen = torch.Generator().manual_seed(self.seed)
        k = self.inserted + self.held_out
        coords = torch.randint(total, (k, self.support), generator=gen)
        signs = torch.randint(2, (k, self.support), generator=gen).float() * 2 - 1
        # Exact unit norm even where a coordinate was drawn twice for one canary.
        keys, inverse = torch.unique(coords + total * torch.arange(k)[:, None], return_inverse=True)
        merged = torch.zeros(len(keys)).index_add_(0, inverse.flatten(), signs.flatten())
        sq = torch.zeros(k).index_add_(0, torch.div(keys, total, rounding_mode="floor"), merged.square())
        self._coords = coords.to(device)
        self._values = (signs / sq.sqrt()[:, None]).to(device)
        self._max_grad_norm = max_grad_norm
        self._observe_scale = expected_batch_size / max_grad_norm

    def take(self, picked: Sequence[int], *, n_records: int, rank: int, world: int) -> list[int]:
        """Split one step's Poisson draw over ``n_records + inserted`` candidates: record which
        canaries it sampled, keep this process's share of them (same sharding as records),
        and return the records."""
        canaries = [i - n_records for i in picked if i >= n_records]
        mask = np.zeros(self.inserted, dtype=bool)
        mask[canaries] = True
        self.included.append(mask)
        self._mine = [j for j in canaries if (n_records + j) % world == rank]
        return [i for i in picked if i < n_records]

    def _flat(self, rows: list[int], weights: torch.Tensor) -> torch.Tensor:
        """``sum_r weights_r M C u_r`` as one flat vector over the parameters."""
        flat = torch.zeros(sum(self._sizes), device=self._coords.device)
        if rows:
            scale = weights.to(flat.device)[:, None] * (self.norm_ratio * self._max_grad_norm)
            flat.index_add_(0, self._coords[rows].flatten(), (scale * self._values[rows]).flatten())
        return flat

    def _unflatten(self, flat: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        return {p: part.view_as(p) for p, part in zip(self.params, torch.split(flat, self._sizes))}

    def inject(self, clipper) -> None:
        """Add this process's sampled canaries to the batch of the engine: the book-keeping
        ``clipper``, or (``clipper`` None) Opacus' ``p.grad_sample`` rows."""
        rows = self._mine
        if clipper is not None:
            norm = self.norm_ratio * self._max_grad_norm
            sq_norms = torch.full((len(rows),), norm * norm, device=self._coords.device)
            clipper.inject(LayerGrads(sq_norms=sq_norms, clipped_sum=lambda c: self._unflatten(self._flat(rows, c)),
                                      method="injected"))
            return
        dense = torch.zeros(len(rows), sum(self._sizes), device=self._coords.device)
        which = torch.arange(len(rows), device=dense.device)[:, None].expand(-1, self.support)
        dense.index_put_((which, self._coords[rows]), self._values[rows] * (self.norm_ratio * self._max_grad_norm),
                         accumulate=True)
        for p, part in zip(self.params, torch.split(dense, self._sizes, dim=1)):
            p.grad_sample = torch.cat([p.grad_sample, part.reshape(len(rows), *p.shape).to(p.grad_sample.dtype)])

    @torch.no_grad()
    def observe(self) -> None:
        """Record ``<grad, u_j> B / C`` for every canary from the optimizer's noisy gradient."""
        grad = torch.cat([p.grad.flatten().float() for p in self.params])
        s = (grad[self._coords] * self._values).sum(1) * self._observe_scale
        self.scores.append(s.cpu().numpy())

    def observations(self) -> dict[str, np.ndarray]:
        """``inserted``: (steps, inserted) scores; ``included``: (steps, inserted) sampled;
        ``held_out``: (steps, held_out) scores."""
        scores = np.stack(self.scores)
        return {"inserted": scores[:, : self.inserted], "included": np.stack(self.included),
                "held_out": scores[:, self.inserted :]}
