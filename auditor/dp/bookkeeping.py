"""Per-sample clipping from one backward pass (book-keeping).

Bu, Wang, Zha, Karypis (2023), "Differentially Private Optimization on Large Model at
Small Cost" (book-keeping, BK): forward hooks cache each layer's input ``a``; one
backward pass of ``sum_i loss_i`` delivers each layer's output gradient ``g``; from
``(a, g)`` we get the per-sample gradient norms (ghost norm of Li et al. 2022 where
``2 T^2 < p d``, else the instantiated per-sample gradient) and then the clipped sum

    sum_i C_i grad_i,        C_i = min(1, R / (||grad_i|| + 1e-6))

(the clip factor of Opacus' ``DPOptimizer.clip_and_accumulate``) by one more product of
cached tensors, with no second backward pass.

While attached, the clipper sets ``requires_grad=False`` on the parameters it manages
so that autograd computes only the activation gradients, never the (unclipped) weight
gradients it would throw away; the outputs of hooked layers are made to require grad so
the backward pass still reaches every layer. :meth:`BookKeepingClipper.remove` restores
the flags. Build the optimizer before attaching (or pass the parameters explicitly).
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from auditor.dp import _faults
from auditor.dp.layers import (
    BU_GHOST_THRESHOLD,
    CPU_GHOST_THRESHOLD,
    LayerGrads,
    NormMethod,
    embedding_grads,
    linear_grads,
    small_module_grads,
)

LossReduction = Literal["sum", "mean"]
_NORM_METHODS = ("auto", "ghost", "instantiate")
_CLIP_EPS = 1e-6  # Opacus' DPOptimizer.clip_and_accumulate


def clip_factors(per_sample_norms: torch.Tensor, *, max_grad_norm: float) -> torch.Tensor:
    """``C_i = min(1, R / (||grad_i|| + 1e-6))``, exactly as Opacus' flat clipping."""
    return (max_grad_norm / (per_sample_norms + _CLIP_EPS)).clamp(max=1.0)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Norms and sums in at least float32 (bf16/fp16 autocast tensors are cast up)."""
    return torch.promote_types(dtype, torch.float32)


class BookKeepingClipper:
    """Per-sample gradient clipping of ``model`` with one backward pass.

    Supported layers: ``nn.Linear`` (with or without bias), ``nn.Embedding`` (no
    ``max_norm``, no ``scale_grad_by_freq``), and any module whose own parameters are
    all 1-D (``LlamaRMSNorm``, ``nn.LayerNorm``...). Every trainable parameter of
    ``model`` must belong to one of them, used once per forward pass (no tied
    weights, no activation checkpointing). Dimension 0 of every layer input is the
    example.

    Usage, one step::

        clipper = BookKeepingClipper(model, max_grad_norm=1.0)
        per_example_loss(model(batch)).sum().backward()   # loss_reduction="sum"
        sums = clipper.clipped_sum()                      # {param: sum_i C_i grad_i}

    Args:
        model: the model; its trainable parameters are the ones clipped.
        max_grad_norm: the clipping bound ``R > 0``.
        loss_reduction: ``"sum"`` if the backward loss is ``sum_i loss_i``, ``"mean"``
            if it is ``(1/B) sum_i loss_i`` (per-sample gradients are then ``B`` times
            what the output gradients give, ``B`` the physical batch size, as in
            Opacus' ``GradSampleModule``).
        norm_method: ``"auto"`` (layer-wise choice, see ``ghost_threshold``), or force
            ``"ghost"`` or ``"instantiate"`` for every linear and embedding layer.
        ghost_threshold: under ``"auto"``, a ``d -> p`` linear layer seeing ``T``
            positions per example uses the ghost norm iff ``ghost_threshold * T^2 < p d``.
            Default: Bu et al.'s ``2`` (memory) on accelerators, ``32`` (measured time,
            see :data:`auditor.dp.layers.CPU_GHOST_THRESHOLD`) on CPU.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        max_grad_norm: float,
        loss_reduction: LossReduction = "sum",
        norm_method: NormMethod = "auto",
        ghost_threshold: float | None = None,
    ) -> None:
        if not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm}")
        if loss_reduction not in ("sum", "mean"):
            raise ValueError(f"loss_reduction must be 'sum' or 'mean', got {loss_reduction!r}")
        if norm_method not in _NORM_METHODS:
            raise ValueError(f"norm_method must be one of {_NORM_METHODS}, got {norm_method!r}")
        if ghost_threshold is not None and not ghost_threshold > 0:
            raise ValueError(f"ghost_threshold must be > 0, got {ghost_threshold}")
        self.ghost_threshold = ghost_threshold
        self.max_grad_norm = float(max_grad_norm)
        self.loss_reduction = loss_reduction
        self.norm_method = norm_method
        self._layers = _trainable_layers(model)
        self._names = {module: name for name, module in model.named_modules() if module in self._layers}
        self._last_methods: dict[str, str] = {}
        self._replaying = False  # set while a layer rule re-runs a hooked module
        self.parameters: tuple[nn.Parameter, ...] = tuple(p for params in self._layers.values() for p in params)
        self._inputs: dict[nn.Module, torch.Tensor] = {}
        self._grads: dict[nn.Module, LayerGrads] = {}
        self._injected: LayerGrads | None = None
        self._handles: list[RemovableHandle] = [
            module.register_forward_hook(self._on_forward) for module in self._layers
        ]
        for p in self.parameters:
            p.requires_grad_(False)

    def __enter__(self) -> BookKeepingClipper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Detach the hooks, drop cached tensors, make the parameters trainable again."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._inputs.clear()
        self._grads.clear()
        self._injected = None
        for p in self.parameters:
            p.requires_grad_(True)

    def inject(self, rows: LayerGrads) -> None:
        """Extra examples for the next :meth:`clipped_sum`, given by their per-sample
        gradients (``rows.sq_norms``: ``(k,)``; ``rows.clipped_sum`` maps ``k`` factors to
        ``{p: sum_r c_r grad_r(p)}``). They are clipped with the batch's examples, by the
        same factors: the white-box canaries of ``auditor verify-dp`` enter here."""
        self._injected = rows

    def methods(self) -> dict[str, str]:
        """``{layer name: "ghost" | "instantiate"}`` as last used, for logging the choice."""
        return dict(self._last_methods)

    def per_sample_norms(self) -> torch.Tensor:
        """``(B,)`` per-sample gradient norms ``||grad_i||`` over all managed parameters;
        ``(0,)`` if nothing ran since the last :meth:`clipped_sum` (an empty Poisson batch,
        which a model cannot even forward); the injected rows (:meth:`inject`) come last."""
        norms = self._batch_norms()
        if self._injected is None:
            return norms
        return torch.cat([norms, self._injected.sq_norms.to(norms.dtype).sqrt()])

    def _batch_norms(self) -> torch.Tensor:
        """The norms of the examples that went through the model (not the injected ones)."""
        if not self._grads:
            if self._inputs:
                raise RuntimeError("forward ran but backward did not: no per-sample gradients")
            return torch.zeros(0, dtype=self.parameters[0].dtype, device=self.parameters[0].device)
        sq_norms = [grads.sq_norms for grads in self._grads.values()]
        sizes = {sq.shape[0] for sq in sq_norms}
        if len(sizes) != 1:
            raise RuntimeError(f"layers saw different batch sizes {sorted(sizes)}")
        return torch.stack(sq_norms).sum(dim=0).sqrt() * self._grad_scale(sizes.pop())

    def clipped_sum(self) -> dict[nn.Parameter, torch.Tensor]:
        """``{p: sum_i C_i grad_i(p)}`` for every managed parameter, in ``p``'s dtype.

        A parameter whose layer did not reach the loss gets zeros, and so does every
        parameter after an empty batch (no forward, no backward): DP-SGD still adds the
        noise. Consumes the cached tensors: the next forward pass starts a new batch.
        """
        norms = self.per_sample_norms()
        batch = norms.shape[0] - (0 if self._injected is None else self._injected.sq_norms.shape[0])
        scale = torch.ones_like(norms)
        scale[:batch] = self._grad_scale(batch)
        factors = clip_factors(norms, max_grad_norm=self.max_grad_norm) * scale

        def sum_with(c: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
            sums: dict[nn.Parameter, torch.Tensor] = {}
            for grads in self._grads.values():
                sums.update(grads.clipped_sum(c[:batch]))
            if self._injected is not None:
                for p, extra in self._injected.clipped_sum(c[batch:]).items():
                    sums[p] = sums[p] + extra if p in sums else extra
            return sums

        sums = _faults.clipped_sum(sum_with, factors=factors, unclipped=scale, max_grad_norm=self.max_grad_norm,
                                   first=self.parameters[0])
        self._inputs.clear()
        self._grads.clear()
        self._injected = None
        return {p: sums[p].to(p.dtype) if p in sums else torch.zeros_like(p) for p in self.parameters}

    def _grad_scale(self, batch_size: int) -> int:
        """Per-sample gradients are ``scale *`` what the output gradients give: ``B``
        for a mean loss (as in Opacus' ``GradSampleModule``), applied to the ``B`` norms
        and clip factors rather than to every output gradient."""
        return batch_size if self.loss_reduction == "mean" else 1

    def _on_forward(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if self._replaying or not torch.is_grad_enabled():
            return None
        if module in self._inputs or module in self._grads:
            raise RuntimeError(
                f"{type(module).__name__} ran twice before clipped_sum(): tied weights, "
                "activation checkpointing and several forwards per step are not supported"
            )
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            raise RuntimeError(f"{type(module).__name__} must be called with one tensor input")
        inputs = args[0].detach()
        device = inputs.device.type
        if isinstance(module, nn.Linear) and torch.is_autocast_enabled(device):
            # F.linear consumes its input in the autocast dtype; keep that copy (half the
            # memory, and the very tensor autograd would have used for the weight grad).
            inputs = inputs.to(torch.get_autocast_dtype(device))
        self._inputs[module] = inputs
        if not output.requires_grad:
            # No upstream tensor needs a gradient (e.g. the input embedding, whose weight
            # we froze): make this output a leaf that does, so backward reaches it.
            output = output.detach().requires_grad_()
        output.register_hook(partial(self._on_output_grad, module))
        return output

    def _on_output_grad(self, module: nn.Module, output_grad: torch.Tensor) -> None:
        if module in self._grads:
            raise RuntimeError("two backward passes before clipped_sum() are not supported")
        inputs = self._inputs.pop(module)
        dtype = _compute_dtype(output_grad.dtype)
        trainable = self._layers[module]
        if isinstance(module, nn.Linear):
            threshold = self.ghost_threshold
            if threshold is None:
                threshold = CPU_GHOST_THRESHOLD if inputs.device.type == "cpu" else BU_GHOST_THRESHOLD
            grads = linear_grads(
                module,
                trainable,
                inputs,
                output_grad,
                method=self.norm_method,
                ghost_threshold=threshold,
                dtype=dtype,
            )
        elif isinstance(module, nn.Embedding):
            grads = embedding_grads(module, inputs, output_grad.to(dtype), method=self.norm_method)
        else:
            self._replaying = True
            try:
                grads = small_module_grads(module, trainable, inputs.to(dtype), output_grad.to(dtype))
            finally:
                self._replaying = False
        self._grads[module] = grads
        self._last_methods[self._names[module]] = grads.method


def _trainable_layers(model: nn.Module) -> dict[nn.Module, tuple[nn.Parameter, ...]]:
    """``{layer: its own trainable parameters}``; raises ``ValueError`` on a parameter
    the clipper cannot handle or one shared by two layers."""
    layers: dict[nn.Module, tuple[nn.Parameter, ...]] = {}
    owner: dict[nn.Parameter, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        params = tuple(p for p in module.parameters(recurse=False) if p.requires_grad)
        if not params:
            continue
        for p in params:
            if p in owner:
                raise ValueError(f"parameter shared by {owner[p]!r} and {name!r}: tied weights are not supported")
            owner[p] = name
        if isinstance(module, nn.Embedding) and (module.max_norm is not None or module.scale_grad_by_freq):
            raise ValueError(f"{name!r}: nn.Embedding with max_norm or scale_grad_by_freq is not supported")
        if not isinstance(module, (nn.Linear, nn.Embedding)) and any(p.dim() != 1 for p in params):
            raise ValueError(f"{name!r} ({type(module).__name__}) has parameters the clipper does not support")
        layers[module] = params
    if not layers:
        raise ValueError("model has no trainable parameters")
    return layers
