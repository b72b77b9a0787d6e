"""DP / non-DP time per training step, same batches, same process.

Runs the trainer's step (grammar-constrained loss, AdamW) on demo rows encoded by
the real codec, for: non-DP, Opacus hooks (GradSampleModule + DPOptimizer), and
our book-keeping clipper. The methods are interleaved step by step on identical
Poisson batches so machine load hits them alike; prints median step times,
tokens/s, peak memory (CUDA) and the ratios against non-DP.

    python benchmarks/train_overhead.py                      # small preset, CPU
    python benchmarks/train_overhead.py --device cuda --preset base --batch 32 --seq 256
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer

from auditor.codec import RowCodec
from auditor.data import DEMO_CSV, DEMO_SCHEMA, load_records
from auditor.dp.bookkeeping import BookKeepingClipper
from auditor.dp.optimizer import BookKeepingDPOptimizer
from auditor.model import build_model, parameter_count
from auditor.schema import Schema
from auditor.train import example_losses, grammar_states, pad_batch, pad_rows


def _sequences(codec: RowCodec, seq: int | None) -> list[list[int]]:
    rows = load_records(DEMO_CSV).frame.to_dict(orient="records")
    seqs = [codec.encode(r) for r in rows]
    if seq is None:
        return seqs
    # Tile rows to a fixed length (GPU mode): still grammar-valid prefixes of concatenated records.
    out = []
    for s in seqs:
        t = (s * (seq // len(s) + 1))[:seq]
        out.append(t)
    return out


def _setup(method: str, preset: str, codec: RowCodec, device, seq: int, seed: int):
    model = build_model(preset, codec.vocab_size, max_length=max(seq, codec.max_length), seed=seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if method == "non-dp":
        return model, model, opt
    if method == "opacus":
        net = GradSampleModule(model, loss_reduction="mean")
        return model, net, DPOptimizer(opt, noise_multiplier=1.0, max_grad_norm=1.0, expected_batch_size=64,
                                       loss_reduction="mean")
    clipper = BookKeepingClipper(model, max_grad_norm=1.0, loss_reduction="mean")
    return model, model, BookKeepingDPOptimizer(opt, clipper=clipper, noise_multiplier=1.0, expected_batch_size=64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=None, help="fixed sequence length (default: the demo rows as they are)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--methods", nargs="+", default=["non-dp", "opacus", "bookkeeping"])
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    codec = RowCodec(Schema.load(DEMO_SCHEMA))
    seqs = _sequences(codec, args.seq)
    states = [grammar_states(s, codec.grammar) if args.seq is None else [codec.grammar.start] * (len(s) - 1)
              for s in seqs]
    allowed = codec.grammar.allowed.to(device)
    if args.seq is not None:
        allowed = torch.ones_like(allowed)  # tiled rows leave the grammar; the cost is the same
    g = torch.Generator().manual_seed(0)
    batches = [torch.randperm(len(seqs), generator=g)[: args.batch].tolist() for _ in range(args.steps + 2)]
    setups = {m: _setup(m, args.preset, codec, device, args.seq or codec.max_length, 0) for m in args.methods}
    times: dict[str, list[float]] = {m: [] for m in args.methods}
    peak: dict[str, int] = {}
    tokens = []
    for i, idx in enumerate(batches):
        ids, mask = pad_batch([seqs[j] for j in idx], codec.pad_id)
        st = pad_rows([states[j] for j in idx], fill=0, dtype=torch.long)
        ids, mask, st = ids.to(device), mask.to(device), st.to(device)
        tokens.append(int(mask.sum()))
        for m in args.methods:
            model, net, opt = setups[m]
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = example_losses(net, ids, mask, st, allowed)
            (loss.mean() if m != "non-dp" else loss.sum() / args.batch).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
                peak[m] = max(peak.get(m, 0), torch.cuda.max_memory_allocated())
            if i >= 2:  # warm-up
                times[m].append(time.perf_counter() - t0)
    n_params = parameter_count(setups[args.methods[0]][0])
    mean_tokens = statistics.mean(tokens)
    print(f"preset {args.preset} ({n_params / 1e6:.2f}M params), device {device}, batch {args.batch}, "
          f"{mean_tokens / args.batch:.0f} tokens/row, threads {torch.get_num_threads()}, {args.steps} steps")
    base = statistics.median(times["non-dp"]) if "non-dp" in times else None
    for m in args.methods:
        med = statistics.median(times[m])
        line = f"{m:12s} {med * 1000:9.1f} ms/step  {mean_tokens / med:10.0f} tokens/s"
        if base:
            line += f"  time x{med / base:.2f}"
        if m in peak:
            line += f"  peak {peak[m] / 2**30:.2f} GiB"
            if "non-dp" in peak:
                line += f" (x{peak[m] / peak['non-dp']:.2f})"
        print(line)


if __name__ == "__main__":
    main()
