"""Benchmark: scoring canary candidates, trie + shared KV cache vs naive full sequences.

Same model, same prefix, same candidates: every k-digit secret after the
default canary template (``{name} PIN {secret}`` in the demo table's ``note``
column, so the prefix is a whole fake row). Naive scoring runs each
``prefix + candidate`` through the model (``ModelScorer.token_stats``, batched)
and sums the grammar-masked log-probs of the candidate's tokens;
``continuation_logprobs`` runs the prefix once and each trie node once.

Prints candidates per second of both, their ratio, the largest difference of
the scores, and the time of an exact enumeration of a 10^d space (default
10^6) with the trie scorer alone. Untrained weights: speed does not depend on
them.

    python benchmarks/exposure.py --preset small --digits 4 --enumerate-digits 6
"""

from __future__ import annotations

import argparse
import csv
import time
from importlib import resources

import numpy as np
import torch

from auditor.codec import RowCodec
from auditor.model import build_model, parameter_count
from auditor.schema import Schema
from auditor.scoring import ModelScorer


def naive_logprobs(scorer: ModelScorer, prefix: list[int], candidates: list[list[int]]) -> np.ndarray:
    """Full-sequence scoring: one sequence per candidate, batched by the scorer."""
    stats = scorer.token_stats([prefix + c for c in candidates])
    return np.array([s.logprob[len(s.logprob) - len(c):].sum() for s, c in zip(stats, candidates)])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--digits", type=int, default=4, help="candidate space of the naive comparison: 10^digits")
    ap.add_argument("--enumerate-digits", type=int, default=6, help="exact enumeration of 10^d; 0 to skip")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--cache-gib", type=float, default=2.0, help="ModelScorer max_cache_bytes, in GiB")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)

    data = resources.files("auditor") / "data"
    schema = Schema.load(str(data / "demo_schema.yaml"))
    codec = RowCodec(schema)
    with (data / "demo.csv").open(encoding="utf-8") as fh:
        row = dict(next(csv.DictReader(fh)))
    row["note"] = "Mary Smith PIN 000000"  # fake canary row: the demo table is fake data
    model = build_model(args.preset, codec.vocab_size, seed=0)
    scorer = ModelScorer(model, codec, device=device, batch_size=args.batch_size,
                         max_cache_bytes=int(args.cache_gib * 2**30))
    prefix = scorer.encode_prefix(row, "note") + scorer.encode_value("note", "Mary Smith PIN ")
    print(f"device {device} ({torch.get_num_threads()} CPU threads), preset {args.preset} "
          f"({parameter_count(model) / 1e6:.2f}M parameters), prefix {len(prefix)} tokens, "
          f"batch {args.batch_size}, KV cache bound {args.cache_gib} GiB")

    k = args.digits
    candidates = [scorer.encode_value("note", f"{i:0{k}d}") for i in range(10**k)]
    scorer.continuation_logprobs(prefix, candidates[:10])  # warm-up
    naive, t_naive = _timed(lambda: naive_logprobs(scorer, prefix, candidates), device)
    fast, t_fast = _timed(lambda: scorer.continuation_logprobs(prefix, candidates), device)
    diff = float(np.max(np.abs(naive - fast)))
    print(f"10^{k} candidates: naive {len(candidates) / t_naive:,.0f}/s ({t_naive:.2f} s), "
          f"trie+KV {len(candidates) / t_fast:,.0f}/s ({t_fast:.2f} s), "
          f"speed-up {t_naive / t_fast:.1f}x, max |diff| {diff:.2e}")

    d = args.enumerate_digits
    if d:
        (space, t_encode) = _timed(lambda: [scorer.encode_value("note", f"{i:0{d}d}") for i in range(10**d)], device)
        scores, t_enum = _timed(lambda: scorer.continuation_logprobs(prefix, space), device)
        print(f"exact enumeration of 10^{d}: {t_enum:.2f} s scoring ({10**d / t_enum:,.0f}/s) + "
              f"{t_encode:.2f} s encoding; probability mass {float(np.exp(scores).sum()):.4f} of the field; "
              f"naive estimate at its measured rate: {10**d / (len(candidates) / t_naive):.0f} s")


if __name__ == "__main__":
    main()
