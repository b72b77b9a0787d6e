"""Step time of DP-SGD per-sample clipping methods against non-private training.

A `small`-like LLaMA (4 layers, hidden 128, 4 heads, intermediate 512, vocabulary
2,200, untied embeddings), batch 64, at sequence lengths 64 and 200. Methods, timed in
interleaved order in one process so that CPU contention hits them alike:

- ``non-dp``: AdamW on the mean loss;
- ``opacus``: Opacus ``GradSampleModule`` hooks + ``DPOptimizer``;
- ``bk``, ``bk-ghost``, ``bk-inst``: ``auditor.dp`` book-keeping (layer-wise auto
  choice, ghost norm forced, instantiation forced) + ``BookKeepingDPOptimizer``.

Prints the median step time of each and its ratio to non-DP.

    python benchmarks/clipping.py [--seq 64 200] [--batch 64] [--steps 7]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from transformers import LlamaConfig, LlamaForCausalLM

from auditor.dp import BookKeepingClipper, BookKeepingDPOptimizer

METHODS = ("non-dp", "opacus", "bk", "bk-ghost", "bk-inst")
BK_NORM_METHOD = {"bk": "auto", "bk-ghost": "ghost", "bk-inst": "instantiate"}


def small_llama(*, vocab_size: int, seq_len: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=max(seq_len, 256),
        tie_word_embeddings=False,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def mean_example_loss(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Mean over examples of each example's mean next-token loss."""
    logits = model(input_ids=ids).logits[:, :-1]
    nll = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    return nll.view(ids.shape[0], -1).mean(dim=1).mean()


def make_step(method: str, base: LlamaForCausalLM, *, batch: int) -> Callable[[torch.Tensor], None]:
    model = copy.deepcopy(base)
    dp = {"noise_multiplier": 1.0, "expected_batch_size": batch}
    if method == "non-dp":
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        forward = model
    elif method == "opacus":
        forward = GradSampleModule(model, loss_reduction="mean")
        optimizer = DPOptimizer(torch.optim.AdamW(model.parameters(), lr=1e-3), max_grad_norm=1.0, **dp)
    else:
        inner = torch.optim.AdamW(model.parameters(), lr=1e-3)
        clipper = BookKeepingClipper(
            model, max_grad_norm=1.0, loss_reduction="mean", norm_method=BK_NORM_METHOD[method]
        )
        optimizer = BookKeepingDPOptimizer(inner, clipper=clipper, **dp)
        forward = model

    def step(ids: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        mean_example_loss(forward, ids).backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=2200)
    parser.add_argument("--steps", type=int, default=7, help="timed steps per method (after 1 warm-up)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    for seq_len in args.seq:
        base = small_llama(vocab_size=args.vocab, seq_len=seq_len)
        steps = {m: make_step(m, base, batch=args.batch) for m in args.methods}
        generator = torch.Generator().manual_seed(seq_len)
        batches = [
            torch.randint(1, args.vocab, (args.batch, seq_len), generator=generator) for _ in range(args.steps + 1)
        ]
        times: dict[str, list[float]] = {m: [] for m in args.methods}
        for i, ids in enumerate(batches):
            for m in args.methods:
                start = time.perf_counter()
                steps[m](ids)
                if i > 0:
                    times[m].append(time.perf_counter() - start)
        baseline = statistics.median(times["non-dp"]) if "non-dp" in times else None
        print(f"seq {seq_len}:")
        for m in args.methods:
            median = statistics.median(times[m])
            ratio = f"  {median / baseline:.2f}x non-DP" if baseline else ""
            print(f"  {m:9s} {median * 1000:8.1f} ms{ratio}")


if __name__ == "__main__":
    main()
