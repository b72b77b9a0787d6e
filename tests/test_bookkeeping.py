"""Book-keeping per-sample clipping (auditor.dp) against explicit per-sample clipping.

The reference runs one backward pass per example, takes the flat norm of that example's
gradient, clips it with Opacus' factor min(1, R / (norm + 1e-6)) and sums.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from opacus import GradSampleModule
from opacus.accountants import RDPAccountant
from opacus.optimizers import DPOptimizer
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from auditor.dp import (
    BookKeepingClipper,
    BookKeepingDistributedDPOptimizer,
    BookKeepingDPOptimizer,
    clip_factors,
    noisy_mean_gradients,
)
from auditor.dp.layers import BU_GHOST_THRESHOLD, CPU_GHOST_THRESHOLD, embedding_grads, linear_grads, prefers_ghost_norm

BATCH, SEQ, VOCAB, PAD = 5, 12, 50, 0
LENGTHS = (12, 9, 12, 5, 7)
METHODS = {  # BookKeepingClipper keywords
    "auto-bu": {"norm_method": "auto", "ghost_threshold": BU_GHOST_THRESHOLD},  # a mix on this model
    "auto-cpu-default": {"norm_method": "auto"},
    "ghost": {"norm_method": "ghost"},
    "instantiate": {"norm_method": "instantiate"},
}


def tiny_llama() -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,  # k/v projections 32 -> 8: 2 T^2 = 288 > 256, instantiated under Bu's rule
        max_position_embeddings=32,
        pad_token_id=PAD,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to(torch.float64)


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (BATCH, SEQ), generator=generator)
    mask = (torch.arange(SEQ)[None, :] < torch.tensor(LENGTHS)[:, None]).long()
    return ids * mask, mask


def example_losses(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-example sum of next-token losses over real (unpadded) targets."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (nll * mask[:, 1:]).sum(dim=1)


@pytest.fixture(scope="module")
def explicit() -> tuple[list[list[torch.Tensor]], torch.Tensor]:
    """Per-example gradients (one backward per example) and their flat norms."""
    model = tiny_llama()
    ids, mask = padded_batch()
    grads = []
    for i in range(BATCH):
        model.zero_grad()
        example_losses(model, ids[i : i + 1], mask[i : i + 1]).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    norms = torch.stack([torch.sqrt(sum(g.pow(2).sum() for g in per_param)) for per_param in grads])
    return grads, norms


def clipping_bound(norms: torch.Tensor) -> float:
    """The median norm: clips some examples, leaves others alone."""
    bound = float(norms.median())
    assert (norms > bound).any() and (norms < bound).any()
    return bound


def explicit_clipped_sum(grads: list[list[torch.Tensor]], norms: torch.Tensor, bound: float) -> list[torch.Tensor]:
    factors = (bound / (norms + 1e-6)).clamp(max=1.0)
    return [sum(factors[i] * grads[i][k] for i in range(BATCH)) for k in range(len(grads[0]))]


@pytest.mark.parametrize("method", METHODS)
def test_clipped_sum_equals_explicit_per_sample_clipping(explicit, method):
    grads, norms = explicit
    bound = clipping_bound(norms)
    model = tiny_llama()
    ids, mask = padded_batch()
    with BookKeepingClipper(model, max_grad_norm=bound, **METHODS[method]) as clipper:
        example_losses(model, ids, mask).sum().backward()
        sums = clipper.clipped_sum()
    expected = explicit_clipped_sum(grads, norms, bound)
    assert [p.grad for p in model.parameters()] == [None] * len(expected)
    for (name, p), want in zip(model.named_parameters(), expected):
        torch.testing.assert_close(sums[p], want, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("method", METHODS)
def test_per_sample_norms_equal_explicit(explicit, method):
    _, norms = explicit
    model = tiny_llama()
    ids, mask = padded_batch()
    with BookKeepingClipper(model, max_grad_norm=1.0, **METHODS[method]) as clipper:
        example_losses(model, ids, mask).sum().backward()
        torch.testing.assert_close(clipper.per_sample_norms(), norms, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(
            clip_factors(clipper.per_sample_norms(), max_grad_norm=1.0), (1.0 / (norms + 1e-6)).clamp(max=1.0)
        )


def test_method_choice_per_layer():
    model = tiny_llama()
    ids, mask = padded_batch()
    seen = {}
    for method, keywords in METHODS.items():
        with BookKeepingClipper(model, max_grad_norm=1.0, **keywords) as clipper:
            example_losses(model, ids, mask).sum().backward()
            seen[method] = clipper.methods()
    layer = "model.layers.0."
    assert {name: seen["auto-bu"][layer + name] for name in ("self_attn.q_proj", "self_attn.k_proj", "mlp.up_proj")} == {
        "self_attn.q_proj": "ghost",  # 2 * 12^2 = 288 < 32 * 32
        "self_attn.k_proj": "instantiate",  # 288 >= 32 * 8
        "mlp.up_proj": "ghost",
    }
    assert seen["auto-bu"]["model.embed_tokens"] == "instantiate"
    assert seen["auto-bu"][layer + "input_layernorm"] == "instantiate"
    assert set(seen["auto-cpu-default"].values()) == {"instantiate"}  # 32 * 12^2 = 4608 > 64 * 32
    assert set(seen["instantiate"].values()) == {"instantiate"}
    assert {seen["ghost"][n] for n in seen["ghost"] if "proj" in n or n in ("lm_head", "model.embed_tokens")} == {
        "ghost"
    }
    assert len(seen["auto-bu"]) == len(list(model.parameters()))


def test_mean_reduction_scales_output_grads_by_batch(explicit):
    grads, norms = explicit
    bound = clipping_bound(norms)
    model = tiny_llama()
    ids, mask = padded_batch()
    with BookKeepingClipper(model, max_grad_norm=bound, loss_reduction="mean") as clipper:
        example_losses(model, ids, mask).mean().backward()
        sums = clipper.clipped_sum()
    for p, want in zip(model.parameters(), explicit_clipped_sum(grads, norms, bound)):
        torch.testing.assert_close(sums[p], want, rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # Opacus hooks on an id input
def test_opacus_hooks_give_the_same_clipped_sum(explicit):
    _, norms = explicit
    bound = clipping_bound(norms)
    ids, mask = padded_batch()
    reference = tiny_llama()
    gsm = GradSampleModule(reference, loss_reduction="sum")
    dp = DPOptimizer(
        torch.optim.SGD(reference.parameters(), lr=0.1),
        noise_multiplier=0.0,
        max_grad_norm=bound,
        expected_batch_size=BATCH,
        loss_reduction="sum",
    )
    example_losses(gsm, ids, mask).sum().backward()
    dp.clip_and_accumulate()
    model = tiny_llama()
    with BookKeepingClipper(model, max_grad_norm=bound) as clipper:
        example_losses(model, ids, mask).sum().backward()
        sums = clipper.clipped_sum()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(sums[p], q.summed_grad, rtol=0, atol=1e-5)


def opacus_and_bookkeeping_steps(*, steps: int, seed: int):
    """Train two copies for `steps` DP-SGD steps (mean loss, noise on), one with Opacus
    hooks and one with book-keeping, from the same noise seed, with RDP accountants."""
    ids, mask = padded_batch()
    dp = {"noise_multiplier": 0.7, "expected_batch_size": 4}
    opacus_model, bk_model = tiny_llama(), tiny_llama()
    gsm = GradSampleModule(opacus_model, loss_reduction="mean")
    opacus_opt = DPOptimizer(
        torch.optim.SGD(opacus_model.parameters(), lr=0.05),
        max_grad_norm=3.0,
        generator=torch.Generator().manual_seed(seed),
        **dp,
    )
    bk_inner = torch.optim.SGD(bk_model.parameters(), lr=0.05)
    clipper = BookKeepingClipper(bk_model, max_grad_norm=3.0, loss_reduction="mean")
    bk_opt = BookKeepingDPOptimizer(
        bk_inner, clipper=clipper, generator=torch.Generator().manual_seed(seed), **dp
    )
    accountants = RDPAccountant(), RDPAccountant()
    for optimizer, accountant in zip((opacus_opt, bk_opt), accountants):
        optimizer.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=0.01))
    for _ in range(steps):
        for optimizer, forward in ((opacus_opt, gsm), (bk_opt, bk_model)):
            optimizer.zero_grad()
            example_losses(forward, ids, mask).mean().backward()
            optimizer.step()
    clipper.remove()
    return opacus_model, bk_model, accountants


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # Opacus hooks on an id input
def test_optimizer_step_and_accounting_match_opacus():
    opacus_model, bk_model, (opacus_acc, bk_acc) = opacus_and_bookkeeping_steps(steps=2, seed=3)
    for p, q in zip(opacus_model.parameters(), bk_model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7)
    assert bk_acc.history == opacus_acc.history == [(0.7, 0.01, 2)]
    assert bk_acc.get_epsilon(delta=1e-5) == opacus_acc.get_epsilon(delta=1e-5)


def test_skipped_steps_accumulate_virtual_batches():
    """BatchMemoryManager's protocol: physical batches 0-2 and 3-4, the first step
    skipped, update like the logical batch 0-4 in one physical batch."""
    ids, mask = padded_batch()
    updated = []
    for splits in (((0, 5),), ((0, 3), (3, 5))):
        model = tiny_llama()
        clipper = BookKeepingClipper(model, max_grad_norm=5.0)
        optimizer = BookKeepingDPOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.1), clipper=clipper, noise_multiplier=0.0, expected_batch_size=5
        )
        for k, (start, stop) in enumerate(splits):
            optimizer.signal_skip_step(do_skip=k < len(splits) - 1)
            example_losses(model, ids[start:stop], mask[start:stop]).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        clipper.remove()
        updated.append(list(model.parameters()))
    assert any(not torch.equal(p, q) for p, q in zip(updated[0], tiny_llama().parameters()))
    for p, q in zip(*updated):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-10)


def one_noisy_step(model: nn.Module, optimizer_class, *, rows: slice, expected_batch_size: float) -> None:
    ids, mask = padded_batch()
    clipper = BookKeepingClipper(model, max_grad_norm=5.0, loss_reduction="mean")
    optimizer = optimizer_class(
        torch.optim.SGD(model.parameters(), lr=0.1),
        clipper=clipper,
        noise_multiplier=0.5,
        expected_batch_size=expected_batch_size,
        generator=torch.Generator().manual_seed(11),
    )
    example_losses(model, ids[rows], mask[rows]).mean().backward()
    optimizer.step()
    clipper.remove()


def distributed_worker(rank: int, init_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    model = tiny_llama()
    rows = slice(0, 3) if rank == 0 else slice(3, 5)
    one_noisy_step(model, BookKeepingDistributedDPOptimizer, rows=rows, expected_batch_size=BATCH / 2)
    if rank == 0:
        torch.save([p.detach() for p in model.parameters()], out_file)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    """Two processes holding examples 0-2 and 3-4 make the update one process makes on
    0-4: same clipped sum, the same noise (drawn on rank 0 only), same averaging."""
    out_file = tmp_path / "rank0.pt"
    mp.spawn(distributed_worker, args=(str(tmp_path / "init"), str(out_file)), nprocs=2)
    single = tiny_llama()
    one_noisy_step(single, BookKeepingDPOptimizer, rows=slice(0, 5), expected_batch_size=BATCH)
    for p, q in zip(single.parameters(), torch.load(out_file)):
        # not 1e-15: LlamaRMSNorm normalises in float32, whose reductions can round
        # differently for a 3- or 5-row batch
        torch.testing.assert_close(p.detach(), q, rtol=0, atol=1e-7)


def test_noisy_mean_gradients_draws_like_dp_optimizer():
    params = [nn.Parameter(torch.zeros(3, 2)), nn.Parameter(torch.zeros(4))]
    sums = {params[0]: torch.full((3, 2), 2.0), params[1]: torch.arange(4.0)}
    dp = DPOptimizer(
        torch.optim.SGD(params, lr=1.0),
        noise_multiplier=1.3,
        max_grad_norm=0.5,
        expected_batch_size=8,
        generator=torch.Generator().manual_seed(7),
    )
    for p in params:
        p.summed_grad = sums[p].clone()
        p.grad_sample = torch.zeros(1, *p.shape)  # scale_grad counts accumulated batches from it
    dp.add_noise()
    dp.scale_grad()
    noisy = noisy_mean_gradients(
        sums, noise_multiplier=1.3, max_grad_norm=0.5, expected_batch_size=8, generator=torch.Generator().manual_seed(7)
    )
    for p in params:
        assert torch.equal(noisy[p], p.grad)
    without_noise = noisy_mean_gradients(sums, noise_multiplier=0.0, max_grad_norm=0.5, expected_batch_size=8)
    assert torch.equal(without_noise[params[1]], torch.arange(4.0) / 8)


@pytest.mark.parametrize("method", ("ghost", "instantiate"))
def test_linear_with_bias_against_loop(method):
    generator = torch.Generator().manual_seed(2)
    layer = nn.Linear(3, 2).double()
    a = torch.randn(4, 5, 3, generator=generator, dtype=torch.float64)
    g = torch.randn(4, 5, 2, generator=generator, dtype=torch.float64)
    factors = torch.tensor([1.0, 0.5, 0.0, 0.25], dtype=torch.float64)
    grads = linear_grads(layer, (layer.weight, layer.bias), a, g, method=method, ghost_threshold=2.0, dtype=torch.float64)
    per_weight = [g[i].T @ a[i] for i in range(4)]
    per_bias = [g[i].sum(dim=0) for i in range(4)]
    expected = torch.stack([w.pow(2).sum() + b.pow(2).sum() for w, b in zip(per_weight, per_bias)])
    torch.testing.assert_close(grads.sq_norms, expected)
    sums = grads.clipped_sum(factors)
    torch.testing.assert_close(sums[layer.weight], sum(c * w for c, w in zip(factors, per_weight)))
    torch.testing.assert_close(sums[layer.bias], sum(c * b for c, b in zip(factors, per_bias)))
    assert grads.method == method


@pytest.mark.parametrize("method", ("ghost", "instantiate"))
def test_embedding_repeated_tokens_and_padding_idx_against_loop(method):
    generator = torch.Generator().manual_seed(4)
    layer = nn.Embedding(6, 3, padding_idx=0).double()
    ids = torch.tensor([[1, 1, 2, 0], [3, 0, 3, 3], [0, 0, 0, 0]])
    g = torch.randn(3, 4, 3, generator=generator, dtype=torch.float64)
    factors = torch.tensor([0.5, 1.0, 1.0], dtype=torch.float64)
    grads = embedding_grads(layer, ids, g, method=method)
    per_sample = []
    for i in range(3):
        layer.zero_grad()
        (layer(ids[i]) * g[i]).sum().backward()
        per_sample.append(layer.weight.grad.clone())
    torch.testing.assert_close(grads.sq_norms, torch.stack([w.pow(2).sum() for w in per_sample]))
    assert grads.sq_norms[2] == 0
    torch.testing.assert_close(grads.clipped_sum(factors)[layer.weight], sum(c * w for c, w in zip(factors, per_sample)))


def test_prefers_ghost_norm_thresholds():
    bu, cpu = {"threshold": BU_GHOST_THRESHOLD}, {"threshold": CPU_GHOST_THRESHOLD}
    assert prefers_ghost_norm(positions=64, in_features=128, out_features=128, **bu)  # 8192 < 16384
    assert not prefers_ghost_norm(positions=200, in_features=128, out_features=128, **bu)  # 80000 >= 16384
    assert not prefers_ghost_norm(positions=8, in_features=8, out_features=16, **bu)  # 128 == 128
    assert not prefers_ghost_norm(positions=64, in_features=128, out_features=512, **cpu)  # 131072 >= 65536
    assert prefers_ghost_norm(positions=64, in_features=128, out_features=2200, **cpu)  # 131072 < 281600
    assert not prefers_ghost_norm(positions=200, in_features=128, out_features=2200, **cpu)


@pytest.mark.parametrize("method", ("ghost", "instantiate"))
def test_bf16_autocast_norms_are_float32_and_close(method):
    model = tiny_llama().float()
    ids, mask = padded_batch()
    with BookKeepingClipper(model, max_grad_norm=1.0, norm_method=method) as clipper:
        example_losses(model, ids, mask).sum().backward()
        full = clipper.per_sample_norms()
        clipper.clipped_sum()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses = example_losses(model, ids, mask)
        losses.float().sum().backward()
        mixed = clipper.per_sample_norms()
        sums = clipper.clipped_sum()
    assert mixed.dtype == torch.float32
    assert all(sums[p].dtype == torch.float32 for p in model.parameters())
    torch.testing.assert_close(mixed, full, rtol=0.05, atol=0)


def test_remove_restores_requires_grad_and_hooks():
    model = tiny_llama()
    ids, mask = padded_batch()
    clipper = BookKeepingClipper(model, max_grad_norm=1.0)
    assert not any(p.requires_grad for p in model.parameters())
    clipper.remove()
    assert all(p.requires_grad for p in model.parameters())
    example_losses(model, ids, mask).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_refuses_unsupported_models_and_misuse():
    with pytest.raises(ValueError, match="max_grad_norm must be > 0"):
        BookKeepingClipper(tiny_llama(), max_grad_norm=0.0)
    with pytest.raises(ValueError, match="norm_method"):
        BookKeepingClipper(tiny_llama(), max_grad_norm=1.0, norm_method="fast")
    with pytest.raises(ValueError, match="ghost_threshold must be > 0"):
        BookKeepingClipper(tiny_llama(), max_grad_norm=1.0, ghost_threshold=0.0)
    tied = tiny_llama()
    tied.lm_head.weight = tied.model.embed_tokens.weight
    with pytest.raises(ValueError, match="tied weights"):
        BookKeepingClipper(tied, max_grad_norm=1.0)
    with pytest.raises(ValueError, match="'0' \\(Conv1d\\)"):
        BookKeepingClipper(nn.Sequential(nn.Conv1d(2, 2, 1)), max_grad_norm=1.0)
    model = tiny_llama()
    ids, mask = padded_batch()
    with BookKeepingClipper(model, max_grad_norm=1.0) as clipper:
        example_losses(model, ids, mask)
        with pytest.raises(RuntimeError, match="ran twice before clipped_sum"):
            example_losses(model, ids, mask)
        with pytest.raises(RuntimeError, match="forward ran but backward did not"):
            clipper.clipped_sum()


def test_empty_batch_gives_zero_sums():
    model = tiny_llama()
    with BookKeepingClipper(model, max_grad_norm=1.0) as clipper:
        assert clipper.per_sample_norms().shape == (0,)
        sums = clipper.clipped_sum()
    assert all(torch.equal(sums[p], torch.zeros_like(p)) for p in model.parameters())


def test_layer_outside_the_loss_gets_zero_sum():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    with BookKeepingClipper(model, max_grad_norm=1.0) as clipper:
        model[0](x).sum().backward()
        sums = clipper.clipped_sum()
    assert torch.equal(sums[model[1].weight], torch.zeros(2, 2, dtype=torch.float64))
    assert sums[model[0].weight].abs().sum() > 0


def test_clipping_choice_follows_the_measurements():
    from auditor.dp.engine import GPU_HOOKS_ABOVE_PARAMS, choose_clipping

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert choose_clipping("auto", cpu, n_params=10**9)[0] == "bookkeeping"
    assert choose_clipping("auto", gpu, n_params=117_500_000)[0] == "bookkeeping"
    assert choose_clipping("auto", gpu, n_params=GPU_HOOKS_ABOVE_PARAMS + 1)[0] == "opacus-hooks"
    assert choose_clipping("auto", gpu, n_params=GPU_HOOKS_ABOVE_PARAMS + 1, world=2)[0] == "bookkeeping"
    assert choose_clipping("opacus", cpu, n_params=1)[0] == "opacus-hooks"
    with pytest.raises(ValueError, match="multi-process"):
        choose_clipping("opacus", cpu, n_params=1, world=2)
