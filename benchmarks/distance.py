"""Benchmark: distance to closest record (DCR), blocked vs naive ``scipy.cdist``.

Prints, for fake tables of 10 mixed columns (4 numeric one with missing values,
1 datetime string, 3 categorical, 2 text):

- ours: ``MixedEncoder`` + ``nearest_neighbours`` (exact DCR, nearest and second
  distances, reverse distances) for N synthetic x N train rows;
- naive: the same embeddings, the full ``scipy.spatial.distance.cdist`` matrix in
  float64, then its row minimum, at the largest size that fits the memory cap;
- the ratio of the two at the naive size, and ours at the full size.

Each measurement runs in its own subprocess; its peak memory is that process's
``ru_maxrss`` (so it includes the interpreter, pandas and the input tables).
Wall time depends on other load on the machine: CPU time (all threads) and the
1-minute load average at the end are printed beside it.

    python benchmarks/distance.py                 # 100,000 x 100,000, naive at 8,000
    python benchmarks/distance.py --n 20000 --naive-n 4000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

COLUMN_KINDS = {
    "age": "numeric",
    "income": "numeric",
    "balance": "numeric",
    "score": "numeric",
    "signup": "datetime",
    "sex": "categorical",
    "region": "categorical",
    "occupation": "categorical",
    "name": "text",
    "comment": "text",
}
DATETIME_FORMATS = {"signup": "%Y-%m-%d"}


def fake_table(n: int, seed: int) -> pd.DataFrame:
    """``n`` fake rows of the 10 benchmark columns (Faker word pools, numpy sampling)."""
    from faker import Faker

    fake = Faker()
    fake.seed_instance(1234)
    firsts = np.array([fake.first_name() for _ in range(400)])
    lasts = np.array([fake.last_name() for _ in range(400)])
    words = np.array(fake.words(nb=300, unique=True))
    jobs = np.array([fake.job() for _ in range(30)])
    rng = np.random.default_rng(seed)
    balance = rng.normal(2_000, 800, n).round(2)
    balance[rng.random(n) < 0.05] = np.nan
    days = rng.integers(0, 3_650, n)
    comment_words = rng.choice(words, size=(n, 5))
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.lognormal(10.5, 0.6, n).round(0),
            "balance": balance,
            "score": rng.random(n).round(3),
            "signup": (np.datetime64("2015-01-01") + days).astype(str),
            "sex": rng.choice(["F", "M"], n),
            "region": rng.choice([f"region-{i}" for i in range(8)], n),
            "occupation": rng.choice(jobs, n),
            "name": np.char.add(np.char.add(rng.choice(firsts, n), " "), rng.choice(lasts, n)),
            "comment": [" ".join(row) for row in comment_words],
        }
    )


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(method: str, n: int, n_jobs: int) -> dict:
    """One measurement in this process: DCR of n synthetic rows to n train rows."""
    from attacks.encoding import MixedEncoder
    from attacks.neighbours import nearest_neighbours

    synthetic, train = fake_table(n, seed=1), fake_table(n, seed=2)
    before = _peak_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    encoder = MixedEncoder(COLUMN_KINDS, datetime_formats=DATETIME_FORMATS).fit(train, synthetic)
    s, t = encoder.transform(synthetic), encoder.transform(train)
    encode_s = time.perf_counter() - wall
    if method == "ours":
        dcr = nearest_neighbours(s, t, n_jobs=n_jobs).query_distance
    else:
        from scipy.spatial.distance import cdist

        dcr = cdist(s.astype(np.float64), t.astype(np.float64)).min(axis=1)
    return {
        "method": method,
        "n": n,
        "dim": encoder.dim,
        "wall_s": time.perf_counter() - wall,
        "encode_s": encode_s,
        "cpu_s": time.process_time() - cpu,
        "peak_mib": _peak_mib(),
        "peak_before_mib": before,
        "dcr_mean": float(dcr.mean()),
        "load_1min": os.getloadavg()[0],
    }


def measure(method: str, n: int, n_jobs: int) -> dict:
    command = [sys.executable, __file__, "--worker", method, "--n", str(n), "--n-jobs", str(n_jobs)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(result: dict) -> None:
    print(
        f"{result['method']:>5}  {result['n']:>7,} x {result['n']:<7,} dim {result['dim']:>3}  "
        f"wall {result['wall_s']:7.1f} s (encode {result['encode_s']:.1f} s)  "
        f"cpu {result['cpu_s']:7.1f} s  peak {result['peak_mib'] / 1024:5.2f} GiB "
        f"(inputs {result['peak_before_mib'] / 1024:.2f} GiB)  load {result['load_1min']:.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic and train rows for ours")
    parser.add_argument("--naive-n", type=int, default=8_000, help="rows for the naive cdist (its matrix is n^2 x 8 bytes)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--worker", choices=("ours", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.n_jobs)))
        return
    print(f"naive full matrix at {args.naive_n:,}: {args.naive_n**2 * 8 / 2**30:.2f} GiB", flush=True)
    naive = measure("naive", args.naive_n, args.n_jobs)
    show(naive)
    small = measure("ours", args.naive_n, args.n_jobs)
    show(small)
    print(
        f"ratio at {args.naive_n:,}: naive / ours wall {naive['wall_s'] / small['wall_s']:.1f}x, "
        f"cpu {naive['cpu_s'] / small['cpu_s']:.1f}x; "
        f"naive at {args.n:,} would need {args.n**2 * 8 / 2**30:,.0f} GiB for its matrix",
        flush=True,
    )
    show(measure("ours", args.n, args.n_jobs))


if __name__ == "__main__":
    main()
