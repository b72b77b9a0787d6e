"""Per-sample gradient norms and clipped sums of one layer, from its input and output gradient.

A layer's weight gradient is a bilinear function of what the forward pass saw and what
the backward pass sends back, so both the per-sample gradient norms and the clipped sum
``sum_i C_i grad_i`` can be formed from the cached input ``a`` and output gradient ``g``
without a second backward pass (book-keeping: Bu, Wang, Zha, Karypis 2023,
"Differentially Private Optimization on Large Model at Small Cost").

Shapes: ``a`` is ``(B, T, d)``, ``g`` is ``(B, T, p)``, with ``B`` examples and ``T``
positions per example (``T = 1`` for a plain ``(B, d)`` input). Positions the loss
ignores have zero output gradient and so contribute nothing.

Each ``*_grads`` function returns a :class:`LayerGrads`: the per-sample squared norms of
the layer's trainable parameters, and a function from clip factors to clipped sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

NormMethod = Literal["auto", "ghost", "instantiate"]


@dataclass(frozen=True)
class LayerGrads:
    """What one layer contributes to a DP-SGD step.

    Attributes:
        sq_norms: ``(B,)``, ``sum_p ||grad_i(p)||^2`` over the layer's trainable
            parameters ``p``, for each example ``i``.
        clipped_sum: maps clip factors ``C`` of shape ``(B,)`` to
            ``{p: sum_i C_i grad_i(p)}``.
        method: ``"ghost"`` or ``"instantiate"``: how ``sq_norms`` was computed.
    """

    sq_norms: torch.Tensor
    clipped_sum: Callable[[torch.Tensor], dict[nn.Parameter, torch.Tensor]]
    method: str


def per_sample_sq_norms(per_sample: torch.Tensor) -> torch.Tensor:
    """``(B,)`` squared L2 norms of ``per_sample[i]`` (one reduction, no squared copy)."""
    return torch.linalg.vector_norm(per_sample.flatten(1), dim=1).square()


BU_GHOST_THRESHOLD = 2.0
"""Bu et al. (2023)'s layer-wise rule: the ghost norm holds ``O(B T^2)`` memory, the
instantiated per-sample gradient ``O(B p d)``; ghost norm iff ``2 T^2 < p d``."""

CPU_GHOST_THRESHOLD = 32.0
"""Time, not memory, on CPU: instantiating costs one batched product no slower than the
weight gradient it replaces plus ``O(B p d)`` memory traffic, the ghost norm
``2 B T^2 (p + d)`` extra flops. Measured single-threaded (B = 64; ghost / instantiate,
ms): 128x128 at T = 64: 4.9 / 2.2; 128x512 at T = 64: 11.5 / 9.8; 128x2200 at
T = 64: 41.9 / 63.5; 128x2200 at T = 200: 212 / 116. ``32 T^2 < p d`` picks the faster
one in each case."""


def prefers_ghost_norm(*, positions: int, in_features: int, out_features: int, threshold: float) -> bool:
    """``threshold * T^2 < p d``: use the ghost norm rather than instantiating the
    per-sample gradients of a ``d -> p`` linear layer seeing ``T`` positions per example
    (:data:`BU_GHOST_THRESHOLD` for memory, :data:`CPU_GHOST_THRESHOLD` for CPU time)."""
    return threshold * positions * positions < in_features * out_features


def linear_weight_ghost_sq_norms(*, activations: torch.Tensor, output_grads: torch.Tensor) -> torch.Tensor:
    """Ghost norm (Goodfellow 2015 for ``T = 1``; Li, Tramer, Liang, Hashimoto 2022):

        ||a_i^T g_i||_F^2 = sum_{t,s} (a_it . a_is) (g_it . g_is)

    Args:
        activations: ``(B, T, d)`` layer inputs.
        output_grads: ``(B, T, p)`` gradients of the loss w.r.t. the layer outputs.

    Returns:
        ``(B,)`` squared Frobenius norms of the per-sample weight gradients.
    """
    a_gram = torch.bmm(activations, activations.transpose(1, 2))
    g_gram = torch.bmm(output_grads, output_grads.transpose(1, 2))
    return (a_gram * g_gram).sum(dim=(1, 2))


def linear_weight_per_sample_grads(*, activations: torch.Tensor, output_grads: torch.Tensor) -> torch.Tensor:
    """Per-sample weight gradients ``grad_i(W) = g_i^T a_i``, shape ``(B, p, d)``."""
    return torch.bmm(output_grads.transpose(1, 2), activations)


def linear_weight_clipped_sum(
    *, activations: torch.Tensor, output_grads: torch.Tensor, clip_factors: torch.Tensor
) -> torch.Tensor:
    """``sum_i C_i g_i^T a_i = (C g)^T a = g^T (C a)`` over all ``B T`` positions, shape
    ``(p, d)``: the book-keeping trick, one matrix product instead of a second backward
    pass. The factors scale whichever of ``a``, ``g`` is narrower."""
    if activations.shape[-1] < output_grads.shape[-1]:
        activations = activations * clip_factors[:, None, None]
    else:
        output_grads = output_grads * clip_factors[:, None, None]
    return output_grads.flatten(0, 1).transpose(0, 1) @ activations.flatten(0, 1)


def linear_grads(
    module: nn.Linear,
    trainable: tuple[nn.Parameter, ...],
    activations: torch.Tensor,
    output_grads: torch.Tensor,
    *,
    method: NormMethod,
    ghost_threshold: float,
    dtype: torch.dtype,
) -> LayerGrads:
    """Per-sample norms and clipped sum of ``y = a W^T + b``.

    ``grad_i(b) = sum_t g_it``. ``grad_i(W)`` is either instantiated (``g_i^T a_i``, then
    the clipped sum is ``sum_i C_i grad_i(W)``) or only its norm is taken by the ghost
    norm (then the clipped sum is ``(C g)^T a``). ``method="auto"`` applies
    :func:`prefers_ghost_norm` with ``ghost_threshold``. Products are taken in
    ``dtype``; the ghost path holds ``a`` and ``g`` as they come (bf16 under autocast:
    half the memory) until the clipped sum.
    """
    a = activations.reshape(activations.shape[0], -1, activations.shape[-1])
    g = output_grads.reshape(output_grads.shape[0], -1, output_grads.shape[-1])
    if method == "auto":
        ghost = prefers_ghost_norm(
            positions=a.shape[1], in_features=a.shape[2], out_features=g.shape[2], threshold=ghost_threshold
        )
        method = "ghost" if ghost else "instantiate"
    sq_norms = torch.zeros(a.shape[0], dtype=dtype, device=a.device)
    parts: list[Callable[[torch.Tensor], tuple[nn.Parameter, torch.Tensor]]] = []
    if any(p is module.weight for p in trainable):
        if method == "ghost":
            sq_norms = sq_norms + linear_weight_ghost_sq_norms(activations=a.to(dtype), output_grads=g.to(dtype))
            parts.append(
                lambda c: (
                    module.weight,
                    linear_weight_clipped_sum(activations=a.to(dtype), output_grads=g.to(dtype), clip_factors=c),
                )
            )
        else:
            per_sample = linear_weight_per_sample_grads(activations=a.to(dtype), output_grads=g.to(dtype))
            sq_norms = sq_norms + per_sample_sq_norms(per_sample)
            parts.append(lambda c: (module.weight, torch.tensordot(c, per_sample, dims=1)))
    if any(p is module.bias for p in trainable):
        bias_per_sample = g.to(dtype).sum(dim=1)
        sq_norms = sq_norms + per_sample_sq_norms(bias_per_sample)
        parts.append(lambda c: (module.bias, c @ bias_per_sample))
    return LayerGrads(sq_norms=sq_norms, clipped_sum=lambda c: dict(part(c) for part in parts), method=method)


def embedding_grads(
    module: nn.Embedding,
    token_ids: torch.Tensor,
    output_grads: torch.Tensor,
    *,
    method: NormMethod,
) -> LayerGrads:
    """Per-sample norms and clipped sum of an embedding lookup ``y_it = E[x_it]``.

    ``grad_i(E) = sum_t onehot(x_it) g_it^T``: a scatter of the output gradients onto
    the rows of the example's tokens (rows at ``padding_idx`` get none, as in PyTorch).

    - ``"instantiate"`` (also what ``"auto"`` picks: it costs ``O(B T d)``, below both
      alternatives): per-sample sparse rows, one per distinct (example, token) pair.
    - ``"ghost"``: ``||grad_i(E)||^2 = sum_{t,s: x_it = x_is} g_it . g_is``, then the
      clipped sum scatters ``C_i g_it`` onto rows ``x_it``.
    """
    batch, dim = token_ids.shape[0], module.embedding_dim
    ids = token_ids.reshape(batch, -1)
    g = output_grads.reshape(batch, -1, dim)
    if module.padding_idx is not None:
        g = g.masked_fill((ids == module.padding_idx).unsqueeze(-1), 0.0)
    weight = module.weight
    if method == "ghost":
        same_token = ids.unsqueeze(2) == ids.unsqueeze(1)
        sq_norms = (torch.bmm(g, g.transpose(1, 2)) * same_token).sum(dim=(1, 2))

        def clipped_sum(c: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
            scaled = (g * c[:, None, None]).flatten(0, 1)
            total = torch.zeros(weight.shape, dtype=g.dtype, device=g.device)
            return {weight: total.index_add_(0, ids.flatten(), scaled)}

        return LayerGrads(sq_norms=sq_norms, clipped_sum=clipped_sum, method="ghost")
    vocab = module.num_embeddings
    keys = ids + vocab * torch.arange(batch, device=ids.device).unsqueeze(1)
    unique_keys, inverse = torch.unique(keys, return_inverse=True)
    rows = torch.zeros(unique_keys.shape[0], dim, dtype=g.dtype, device=g.device)
    rows.index_add_(0, inverse.flatten(), g.flatten(0, 1))
    owner = torch.div(unique_keys, vocab, rounding_mode="floor")
    sq_norms = torch.zeros(batch, dtype=g.dtype, device=g.device).index_add_(0, owner, per_sample_sq_norms(rows))

    def clipped_sum(c: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        total = torch.zeros(weight.shape, dtype=g.dtype, device=g.device)
        return {weight: total.index_add_(0, unique_keys - vocab * owner, rows * c[owner].unsqueeze(1))}

    return LayerGrads(sq_norms=sq_norms, clipped_sum=clipped_sum, method="instantiate")


def small_module_grads(
    module: nn.Module,
    trainable: tuple[nn.Parameter, ...],
    inputs: torch.Tensor,
    output_grads: torch.Tensor,
) -> LayerGrads:
    """Per-sample gradients of a module with only small (1-D) parameters, e.g. the
    weight of ``LlamaRMSNorm`` or ``nn.LayerNorm``, instantiated exactly with
    ``torch.func``: ``grad_i(w) = vjp of w -> module_w(a_i) at g_i``. Costs one extra
    forward of the module; memory ``B x numel``."""
    names = {p: n for n, p in module.named_parameters(recurse=False)}
    primals = {names[p]: p.detach().to(inputs.dtype) for p in trainable}

    def per_example(x: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
        def output(params: dict[str, torch.Tensor]) -> torch.Tensor:
            return torch.func.functional_call(module, params, (x.unsqueeze(0),)).squeeze(0)

        _, vjp = torch.func.vjp(output, primals)
        return vjp(g)[0]

    per_sample = torch.func.vmap(per_example)(inputs, output_grads)
    sq_norms = sum(per_sample_sq_norms(grad) for grad in per_sample.values())

    def clipped_sum(c: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        return {p: torch.tensordot(c, per_sample[names[p]], dims=1) for p in trainable}

    return LayerGrads(sq_norms=sq_norms, clipped_sum=clipped_sum, method="instantiate")
