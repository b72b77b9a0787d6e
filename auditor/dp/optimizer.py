"""Opacus' DP-SGD step (noise, averaging, accounting hook) on book-keeping clipped sums.

The noise and the averaging are Opacus' own code (``DPOptimizer.add_noise`` and
``scale_grad`` are inherited, and :func:`noisy_mean_gradients` calls the same noise
generator), so an accountant sees the same ``(noise_multiplier, sample_rate, steps)``
whichever way the clipped sum was computed:

    grad = (sum_i C_i grad_i + N(0, (sigma R)^2 I)) / (expected batch size)

(``/ expected batch size`` only for ``loss_reduction="mean"``, as in Opacus.)

With several processes (``torchrun``), :class:`BookKeepingDistributedDPOptimizer`
follows Opacus' ``DistributedDPOptimizer``: each process clips its share of the Poisson
batch, only rank 0 adds noise, and the noisy sums are all-reduced, so the logical batch,
the noise and the accounting do not depend on the number of processes.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from opacus.optimizers.ddpoptimizer import DistributedDPOptimizer
from opacus.optimizers.optimizer import DPOptimizer, _check_processed_flag, _generate_noise, _mark_as_processed
from torch import nn
from torch.optim import Optimizer

from auditor.dp import _faults
from auditor.dp.bookkeeping import BookKeepingClipper
from auditor.dp.secret import SecretStreams


def noisy_mean_gradients(
    clipped_sums: dict[nn.Parameter, torch.Tensor],
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    expected_batch_size: int,
    generator: Optional[torch.Generator] = None,
    secure_mode: bool = False,
) -> dict[nn.Parameter, torch.Tensor]:
    """``(S_p + N(0, (noise_multiplier * max_grad_norm)^2 I)) / expected_batch_size`` for
    each clipped sum ``S_p``, drawn in dict order exactly as Opacus' ``DPOptimizer``
    (``add_noise`` then ``scale_grad`` with ``loss_reduction="mean"``) draws them in
    parameter order."""
    if expected_batch_size <= 0:
        raise ValueError(f"expected_batch_size must be > 0, got {expected_batch_size}")
    std = noise_multiplier * max_grad_norm
    return {
        p: (total + _generate_noise(std=std, reference=total, generator=generator, secure_mode=secure_mode))
        / expected_batch_size
        for p, total in clipped_sums.items()
    }


def add_secret_noise(optimizer: DPOptimizer, streams: SecretStreams) -> None:
    """Opacus' ``DPOptimizer.add_noise`` with the noise drawn from the secret streams:
    ``p.grad = S_p + N(0, (sigma R)^2 I)`` for each clipped sum ``S_p``."""
    std = optimizer.noise_multiplier * optimizer.max_grad_norm
    for p in optimizer.params:
        _check_processed_flag(p.summed_grad)
        p.grad = (p.summed_grad + streams.gaussian(p.summed_grad, std)).view_as(p)
        _mark_as_processed(p.summed_grad)


class SecretNoiseDPOptimizer(DPOptimizer):
    """Opacus' ``DPOptimizer`` (per-sample gradients from its hooks) whose noise comes
    from :class:`auditor.dp.secret.SecretStreams`."""

    def __init__(self, optimizer: Optimizer, *, streams: SecretStreams, **kwargs) -> None:
        self.streams = streams
        super().__init__(optimizer, **kwargs)

    def add_noise(self) -> None:
        add_secret_noise(self, self.streams)


class BookKeepingDPOptimizer(DPOptimizer):
    """Opacus' ``DPOptimizer`` whose clipped sums come from a :class:`BookKeepingClipper`.

    A drop-in for the optimizer ``PrivacyEngine.make_private`` returns: ``step()``,
    ``zero_grad()``, ``signal_skip_step()`` (``BatchMemoryManager``) and
    ``attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=q))`` behave the same.
    Each ``step()`` (skipped or not) consumes exactly one forward/backward pass.

    Args:
        optimizer: the wrapped optimizer over (a superset of) ``clipper.parameters``.
        clipper: the attached clipper; gives ``max_grad_norm`` and ``loss_reduction``.
        noise_multiplier: ``sigma``; the noise std is ``sigma * max_grad_norm``.
        expected_batch_size: Poisson expected batch size, the averaging denominator for
            ``loss_reduction="mean"``.
        generator, secure_mode: as in Opacus (used when ``streams`` is None).
        streams: the secret streams the noise is drawn from (training always passes them).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        clipper: BookKeepingClipper,
        noise_multiplier: float,
        expected_batch_size: int,
        generator: Optional[torch.Generator] = None,
        secure_mode: bool = False,
        streams: Optional[SecretStreams] = None,
    ) -> None:
        self.clipper = clipper
        self.streams = streams
        super().__init__(
            optimizer,
            noise_multiplier=noise_multiplier * _faults.noise_scale(),
            max_grad_norm=clipper.max_grad_norm,
            expected_batch_size=expected_batch_size,
            loss_reduction=clipper.loss_reduction,
            generator=generator,
            secure_mode=secure_mode,
        )

    @property
    def params(self) -> list[nn.Parameter]:
        """The optimizer's parameters that the clipper manages (they have
        ``requires_grad=False`` while it is attached, which Opacus' filter would drop)."""
        managed = set(self.clipper.parameters)
        return [p for group in self.original_optimizer.param_groups for p in group["params"] if p in managed]

    @property
    def accumulated_iterations(self) -> int:
        """One backward pass per ``clip_and_accumulate`` (the clipper refuses two)."""
        return 1

    def clip_and_accumulate(self) -> None:
        """``p.summed_grad += sum_i C_i grad_i(p)`` from the clipper."""
        sums = self.clipper.clipped_sum()
        for p in self.params:
            p.summed_grad = sums[p] if p.summed_grad is None else p.summed_grad + sums[p]

    def add_noise(self) -> None:
        if self.streams is None:
            super().add_noise()
        else:
            add_secret_noise(self, self.streams)

    def pre_step(self, closure: Optional[Callable[[], float]] = None) -> bool:
        """Opacus' ``pre_step`` without its check for ``p.grad_sample``, which
        book-keeping never materialises."""
        self.clip_and_accumulate()
        if self._check_skip_next_step():
            self._is_last_step_skipped = True
            return False
        self.add_noise()
        self.scale_grad()
        if self.step_hook:
            self.step_hook(self)
        self._is_last_step_skipped = False
        return True


class BookKeepingDistributedDPOptimizer(BookKeepingDPOptimizer, DistributedDPOptimizer):
    """:class:`BookKeepingDPOptimizer` for ``torch.distributed`` (Opacus'
    ``DistributedDPOptimizer``: noise on rank 0 only, gradients all-reduced after it).

    ``expected_batch_size`` is the per-process expected batch size (logical expected
    batch / world size), as Opacus' ``PrivacyEngine`` sets it. Do not wrap the model
    in DDP (nothing would be synchronised: its parameters do not require grad while the
    clipper is attached); broadcast the initial weights from rank 0 instead.
    """

    def add_noise(self) -> None:
        """Noise on rank 0 only (the secret streams' or Opacus'), other ranks pass their sums on;
        no noise at all when the ``rank-skips-noise`` fault is planted."""
        if _faults.skips_noise():
            for p in self.params:
                p.grad = p.summed_grad.view_as(p)
            return
        if self.rank == 0:
            super().add_noise()
        else:
            DistributedDPOptimizer.add_noise(self)

    def reduce_gradients(self) -> None:
        """``p.grad = sum over processes`` (``/ world size`` for a mean loss), for the
        managed parameters (Opacus' version skips them: ``requires_grad`` is off)."""
        for p in self.params:
            torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.SUM)
            if self.loss_reduction == "mean":
                p.grad /= self.world_size
