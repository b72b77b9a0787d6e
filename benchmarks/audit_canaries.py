"""What the one-run audit's canary count buys (power) and costs (training steps, audit time).

1. Power: the largest one-run bound a perfect attacker reaches with m audit canaries
   (half included; the default grid and Bonferroni split), at the demo's delta.
2. Cost: the demo's data and training settings (demo command: batch 512, lr 1e-2,
   4-digit PIN canaries), with a smaller model and fewer epochs so it runs on a loaded
   CPU, trained once per canary count. Prints, per count, the planted rows, the DP-SGD
   steps, the training seconds, and the seconds of the exposure audit, of MIA scoring
   (no reference model) and of dp_audit (scoring the audit canaries + the bounds),
   each as a ratio to the first count. Steps scale with the planted rows at a fixed
   number of epochs; the audit canaries add one forward pass each to dp_audit. On a
   shared CPU the wall clock mostly measures the neighbours, so the CPU seconds of this
   process (``time.process_time``; run with OMP_NUM_THREADS=1) are printed: the
   compute cost. The steps the demo itself (20 epochs) would take are printed too.

    OMP_NUM_THREADS=1 python benchmarks/audit_canaries.py [--counts 100 300 500] [--model tiny] [--epochs 2]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from attacks.dp_audit import DpAuditConfig as BoundConfig
from attacks.dp_audit import perfect_one_run_epsilon
from auditor.audits import audit_run, registered_audits
from auditor.commands.demo import DEMO
from auditor.config import AuditConfig, DataConfig, RunConfig, TrainConfig
from auditor.data import DEMO_CSV, DEMO_SCHEMA
from auditor.pipeline import train
from canaries.config import CanaryConfig


def power_table(delta: float) -> None:
    print(f"perfect one-run bound at delta = {delta:g} (50% included, default grid, Bonferroni):")
    for m in (100, 200, 300, 500, 1000, 2000, 5000):
        print(f"  m = {m:>5}: {perfect_one_run_epsilon(num_canaries=m, delta=delta, config=BoundConfig()):.3f}")


def cost(count: int, *, model: str, epochs: float, root: Path) -> dict[str, float]:
    out = root / f"m{count}"
    settings = {k: v for k, v in DEMO["train"].items() if k != "seed"} | {"model": model, "epochs": epochs}
    cfg = RunConfig(data=DataConfig(path=str(DEMO_CSV), schema=str(DEMO_SCHEMA)),
                    train=TrainConfig(dp=True, epsilon=8.0, seed=0, **settings),
                    canaries=CanaryConfig(audit_canaries=count, **DEMO["canaries"]))
    t = time.process_time()
    trained = train(DEMO_CSV, out, config=cfg, force=True)
    seconds = {"train_cpu_s": time.process_time() - t}
    marks: list[tuple[str, float]] = []
    model_audits = tuple(spec.name for spec in registered_audits() if spec.needs_model)
    audit_run(out, config=AuditConfig(audits=model_audits, reference=False), device="cpu",
              stage=lambda name: marks.append((name, time.process_time())))
    end = time.process_time()
    for (name, start), (_, stop) in zip(marks, marks[1:] + [("end", end)]):
        seconds[f"{name}_cpu_s"] = stop - start
    demo_steps = math.ceil(DEMO["train"]["epochs"] * trained.privacy["n_records"] / DEMO["train"]["batch_size"])
    return {"planted_rows": trained.privacy["n_records"], "steps": trained.privacy["steps"],
            "demo_steps": demo_steps, "epsilon": trained.privacy["epsilon"],
            "delta": trained.privacy["delta"], **seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 300, 500])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--epochs", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {m: cost(m, model=args.model, epochs=args.epochs, root=Path(tmp)) for m in args.counts}
    power_table(rows[args.counts[0]]["delta"])
    base = rows[args.counts[0]]
    keys = [k for k in base if k not in ("epsilon", "delta")]
    print(f"\ncost ({args.model}, {args.epochs:g} epochs, demo data and batch; ratios to m = {args.counts[0]}):")
    for m, row in rows.items():
        cells = ", ".join(f"{k} {row[k]:.1f} ({row[k] / base[k]:.2f}x)" if isinstance(row[k], float)
                          else f"{k} {row[k]} ({row[k] / base[k]:.2f}x)" for k in keys)
        print(f"  m = {m:>5}: {cells}")


if __name__ == "__main__":
    main()
