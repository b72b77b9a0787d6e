"""Cost of `auditor verify-dp` on the demo's settings (auditor/commands/demo.py).

The demo trains the small preset at epsilon 8 with batch 512 on its 1,920 training
records plus canary rows (q ~ 0.25, ~80 steps). The check runs the same mechanism
(sigma, q, delta, book-keeping clipping, small preset) for at most 40 steps on at most
1,000 public stand-in records at the claimed q, and composes the measured step to the
claimed steps, so the epsilon tested is the claimed one. Prints the claim, the bound,
the wall-clock cost (the target: under 3 minutes on 2 cores) and the CPU time, which
does not depend on what else the machine runs.

    OMP_NUM_THREADS=1 python benchmarks/verify_dp.py [--run-steps 40] [--records 1000]
"""

import argparse
import math
import time

from auditor.commands.demo import DEMO_TRAIN
from auditor.dp.accounting import default_delta, noise_for_epsilon
from auditor.dp.verify import FAST_RECORDS, FAST_STEPS, Claim, Trial, verify
from reports.summary import fmt_epsilon

# The demo's table: 2,400 rows, 20% held out, plus 124 scheduled and ~50 coin-flip canary rows.
DEMO_RECORDS = 1920 + 174  # about: the coin-flip canaries make it vary by a few rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-steps", type=int, default=FAST_STEPS)
    ap.add_argument("--records", type=int, default=FAST_RECORDS)
    ap.add_argument("--epsilon", type=float, default=8.0)
    args = ap.parse_args()
    q = DEMO_TRAIN["batch_size"] / DEMO_RECORDS
    steps = math.ceil(DEMO_TRAIN["epochs"] / q)
    delta = default_delta(DEMO_RECORDS)
    t0, cpu0 = time.perf_counter(), time.process_time()
    sigma = noise_for_epsilon(target_epsilon=args.epsilon, delta=delta, sample_rate=q, steps=steps)
    claim = Claim(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    t_claim = time.perf_counter() - t0
    run_steps = min(steps, args.run_steps)
    result = verify(claim, Trial(model=DEMO_TRAIN["model"], records=min(args.records, DEMO_RECORDS), steps=run_steps,
                                 physical_batch_size=DEMO_TRAIN["physical_batch_size"], lr=DEMO_TRAIN["lr"]))
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"demo claim: epsilon {fmt_epsilon(result['claimed_epsilon'])}, sigma {sigma:.3f}, q {q:.4f}, {steps} steps, "
          f"delta {delta:.2g}")
    print(f"check: {run_steps} steps on {min(args.records, DEMO_RECORDS)} stand-in records, "
          f"{result['engine']}: lower bound {fmt_epsilon(result['epsilon_lower_bound'])} "
          f"(ratio {result['epsilon_lower_bound'] / result['claimed_epsilon']:.3f}), "
          f"estimate {fmt_epsilon(result['epsilon_estimate'])}, violation {result['violation']}")
    print(f"cost: {total:.1f} s in all ({t_claim:.1f} s finding sigma, {result['seconds']:.1f} s the check); "
          f"{total / 180:.2f} of the 3-minute budget; CPU time {cpu:.1f} s (one thread: the wall time on an "
          f"idle core, whatever the machine's load)")


if __name__ == "__main__":
    main()
