"""Step time of DP-SGD per-sample clipping methods against non-private training.

A `small`-like LLaMA (4 layers, hidden 128, 4 heads, intermediate 512, vocabulary
2,200, untied embeddings), batch 64, at sequence lengths 64 and 200. Methods, timed in
interleaved order in one process so that CPU contention hits them alike:

- ``non-dp``: AdamW on the mean loss;
- ``opacus``: Opacus ``GradSampleModule`` hooks + ``DPOptimizer``;
- ``bk``, ``bk-ghost``, ``bk-inst``: ``auditor.dp`` book-keeping (layer-wise auto
  choice, ghost norm forced, instantiation forced) + ``BookKeepingDPOptimizer``.

Prints the median wall-clock step time of each and its ratio to non-DP (and, on CUDA,
the peak memory). On a shared CPU the wall clock mostly measures the neighbours, so the
CPU time this process spent on the step (``time.process_time``) is printed too: with
``--threads 1`` it is the compute cost of the step, free of spin-waiting threads.
``--autocast`` runs the forward pass under bf16 autocast.

    python benchmarks/clipping.py [--seq 64 200] [--batch 64] [--steps 7]
    python benchmarks/clipping.py --device cuda --autocast --vocab 32000 --batch 32 --seq 256 \
        --hidden 768 --layers 12 --heads 12
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


def small_llama(
    *, vocab_size: int, seq_len: int, hidden: int = 128, layers: int = 4, heads: int = 4
) -> LlamaForCausalLM:
    """The `small`-like LLaMA by default; ``intermediate = 4 * hidden``."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max(seq_len, 256),
        tie_word_embeddings=False,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def mean_example_loss(model: torch.nn.Module, ids: torch.Tensor, *, autocast: bool) -> torch.Tensor:
    """Mean over examples of each example's mean next-token loss."""
    with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=ids).logits[:, :-1].float()
    nll = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    return nll.view(ids.shape[0], -1).mean(dim=1).mean()


def make_step(
    method: str, base: LlamaForCausalLM, *, batch: int, autocast: bool
) -> Callable[[torch.Tensor], None]:
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
        mean_example_loss(forward, ids, autocast=autocast).backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=2200)
    parser.add_argument("--steps", type=int, default=7, help="timed steps per method (after 1 warm-up)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--autocast", action="store_true", help="bf16 autocast for the forward pass")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, batch {args.batch}, autocast {args.autocast}")
    for seq_len in args.seq:
        base = small_llama(
            vocab_size=args.vocab, seq_len=seq_len, hidden=args.hidden, layers=args.layers, heads=args.heads
        ).to(device)
        steps = {m: make_step(m, base, batch=args.batch, autocast=args.autocast) for m in args.methods}
        generator = torch.Generator().manual_seed(seq_len)
        batches = [
            torch.randint(1, args.vocab, (args.batch, seq_len), generator=generator).to(device)
            for _ in range(args.steps + 1)
        ]
        times: dict[str, list[float]] = {m: [] for m in args.methods}
        cpu_times: dict[str, list[float]] = {m: [] for m in args.methods}
        peaks: dict[str, int] = {m: 0 for m in args.methods}
        for i, ids in enumerate(batches):
            for m in args.methods:
                if cuda:
                    torch.cuda.synchronize(device)
                    torch.cuda.reset_peak_memory_stats(device)
                start, cpu_start = time.perf_counter(), time.process_time()
                steps[m](ids)
                if cuda:
                    torch.cuda.synchronize(device)
                    peaks[m] = max(peaks[m], torch.cuda.max_memory_allocated(device))
                if i > 0:
                    times[m].append(time.perf_counter() - start)
                    cpu_times[m].append(time.process_time() - cpu_start)
        print(f"seq {seq_len}: median wall-clock, then CPU time, of a step")
        base = None
        if "non-dp" in times:
            base = statistics.median(times["non-dp"]), statistics.median(cpu_times["non-dp"])
        for m in args.methods:
            wall, cpu = statistics.median(times[m]), statistics.median(cpu_times[m])
            line = f"  {m:9s} {wall * 1000:8.1f} ms"
            line += f" {wall / base[0]:5.2f}x" if base else ""
            line += f"   {cpu * 1000:8.1f} ms"
            line += f" {cpu / base[1]:5.2f}x" if base else ""
            line += f"   peak {peaks[m] / 2**30:.2f} GiB" if cuda else ""
            print(line)

if __name__ == "__main__":
    main()
