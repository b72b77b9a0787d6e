"""Validity and tightness of `auditor verify-dp` on a correct implementation.

For each claimed epsilon and seed: tiny preset, 200 stand-in records, q = 0.1, 30 steps,
1000 inserted + 1000 held-out canaries. Prints, per epsilon, how often the 95% lower
bound exceeded the claim (a correct implementation: never) and the mean ratio
lower bound / claim. Run with OMP_NUM_THREADS=1.

    python benchmarks/verify_dp_seeds.py [--seeds 20] [--epsilons 1,4,8]
"""

import argparse
import json
import time

import numpy as np

from auditor.dp.accounting import noise_for_epsilon
from auditor.dp.verify import Claim, Trial, verify


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--epsilons", default="1,4,8")
    ap.add_argument("--clipping", default="auto")
    args = ap.parse_args()
    q, steps, delta = 0.1, 30, 1e-5
    for eps in (float(e) for e in args.epsilons.split(",")):
        sigma = noise_for_epsilon(target_epsilon=eps, delta=delta, sample_rate=q, steps=steps)
        claim = Claim(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
        lows, ests, t0 = [], [], time.perf_counter()
        for seed in range(args.seeds):
            r = verify(claim, Trial(model="tiny", records=200, steps=steps, physical_batch_size=64, seed=seed,
                                    clipping=args.clipping))
            lows.append(r["epsilon_lower_bound"])
            ests.append(r["epsilon_estimate"])
            print(json.dumps({"epsilon": eps, "seed": seed, "lower": round(lows[-1], 3), "estimate": round(ests[-1], 3),
                              "claimed": round(r["claimed_epsilon"], 3)}), flush=True)
        claimed = claim.epsilon
        print(f"claimed {claimed:.3f} (sigma {sigma:.3f}): lower > claim in {sum(l > claimed for l in lows)}/{len(lows)}; "
              f"mean lower/claim {np.mean(lows) / claimed:.3f} (min {min(lows) / claimed:.3f}, max {max(lows) / claimed:.3f}); "
              f"mean estimate/claim {np.mean(ests) / claimed:.3f}; {(time.perf_counter() - t0) / len(lows):.1f} s per run",
              flush=True)


if __name__ == "__main__":
    main()
