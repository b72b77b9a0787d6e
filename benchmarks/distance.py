"""Benchmark: distance to closest record (DCR) at 100k x 100k and 1M x 1M.

Prints, for fake tables of 10 mixed columns (4 numeric one with missing values,
1 datetime string, 3 categorical, 2 text):

- ours: ``MixedEncoder`` + ``nearest_neighbours`` (exact DCR, nearest and second
  distances, reverse distances) for N synthetic x N train rows, at each size;
- previous: the implementation before the exact re-rank (float32 screen only,
  :data:`PREVIOUS_REVISION`, loaded from git) at the same sizes, and the ratios
  previous / ours. Above ``--previous-queries`` rows it runs on that many
  queries against all N references and its times are extrapolated linearly
  (said so in the output);
- naive: the full ``scipy.spatial.distance.cdist`` matrix in float64 and its row
  minimum at ``--naive-n``, with the largest DCR difference to ours.

Each measurement runs in its own subprocess. Times are of the search alone
(encoding is printed beside it); peak memory is the process's ``ru_maxrss``
(interpreter, libraries and the embeddings; the tables are freed before the
search) and the search's own allocations (``tracemalloc`` peak). Wall time
depends on other load on the machine: CPU time (all threads) and the 1-minute
load average are printed beside it.

    python benchmarks/distance.py                       # 100k and 1M (about an hour on 2 cores)
    python benchmarks/distance.py --sizes 20000 --naive-n 4000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import types
from pathlib import Path

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


#: The last revision of ``attacks/neighbours.py`` before the exact re-rank (the
#: float32 screen alone, which took the nearest of the screen): "previous".
PREVIOUS_REVISION = "919ab05"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def previous_nearest_neighbours():
    """``nearest_neighbours`` of :data:`PREVIOUS_REVISION`, loaded from git."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{PREVIOUS_REVISION}:attacks/neighbours.py"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("previous_neighbours")
    exec(compile(source, "previous_neighbours.py", "exec"), module.__dict__)
    return module.nearest_neighbours


def worker(method: str, n: int, n_jobs: int, queries: int | None) -> dict:
    """One measurement in this process: DCR of n synthetic rows (or the first ``queries``) to n train rows."""
    from attacks.encoding import MixedEncoder
    from attacks.neighbours import nearest_neighbours

    synthetic, train = fake_table(n, seed=1), fake_table(n, seed=2)
    wall, cpu = time.perf_counter(), time.process_time()
    encoder = MixedEncoder(COLUMN_KINDS, datetime_formats=DATETIME_FORMATS).fit(train, synthetic)
    s, t = encoder.transform(synthetic), encoder.transform(train)
    encode_s, encode_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    del synthetic, train
    gc.collect()
    if queries is not None:
        s = np.ascontiguousarray(s[:queries])
    before = _peak_mib()
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "naive":
        from scipy.spatial.distance import cdist

        dcr = cdist(s.astype(np.float64), t.astype(np.float64)).min(axis=1)
    else:
        search = nearest_neighbours if method == "ours" else previous_nearest_neighbours()
        dcr = search(s, t, n_jobs=n_jobs).query_distance
    search_s, search_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "method": method,
        "n": n,
        "queries": len(s),
        "dim": encoder.dim,
        "encode_s": encode_s,
        "encode_cpu_s": encode_cpu_s,
        "wall_s": search_s,
        "cpu_s": search_cpu_s,
        "peak_mib": _peak_mib(),
        "peak_before_mib": before,
        "search_alloc_mib": traced_peak / 2**20,
        "dcr": dcr.tolist() if len(dcr) <= 20_000 else None,
        "dcr_mean": float(dcr.mean()),
        "load_1min": os.getloadavg()[0],
    }


def measure(method: str, n: int, n_jobs: int, queries: int | None = None) -> dict:
    command = [sys.executable, __file__, "--worker", method, "--n", str(n), "--n-jobs", str(n_jobs)]
    if queries is not None:
        command += ["--queries", str(queries)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(result: dict) -> None:
    queries = "" if result["queries"] == result["n"] else f" (first {result['queries']:,} queries)"
    print(
        f"{result['method']:>8}  {result['n']:>9,} x {result['n']:<9,}{queries} dim {result['dim']}  "
        f"search wall {result['wall_s']:7.1f} s  cpu {result['cpu_s']:7.1f} s  "
        f"(encode wall {result['encode_s']:.1f} s, cpu {result['encode_cpu_s']:.1f} s)  "
        f"peak rss {result['peak_mib'] / 1024:5.2f} GiB (before search {result['peak_before_mib'] / 1024:.2f} GiB, "
        f"search allocations {result['search_alloc_mib'] / 1024:.2f} GiB)  load {result['load_1min']:.1f}",
        flush=True,
    )


def scaled(result: dict) -> dict:
    """A query subsample's times scaled to all ``n`` queries (the search is linear in the queries)."""
    factor = result["n"] / result["queries"]
    return result | {"wall_s": result["wall_s"] * factor, "cpu_s": result["cpu_s"] * factor}


def compare(n: int, n_jobs: int, previous_queries: int, ours_queries: int | None) -> None:
    """Ours against the previous implementation at n x n, as ratios."""
    ours = measure("ours", n, n_jobs, ours_queries if ours_queries and ours_queries < n else None)
    show(ours)
    previous = measure("previous", n, n_jobs, previous_queries if previous_queries < n else None)
    show(previous)
    notes = []
    for name, result in (("ours", ours), ("previous", previous)):
        if result["queries"] < n:
            notes.append(f"{name} extrapolated linearly from {result['queries']:,} queries, peak memory of that run")
    ours, previous = scaled(ours), scaled(previous)
    if ours["queries"] < n:
        print(
            f"    ours at {n:,} x {n:,} extrapolated: wall {ours['wall_s']:.0f} s, cpu {ours['cpu_s']:.0f} s "
            f"(cpu / {n_jobs} = {ours['cpu_s'] / n_jobs:.0f} s: the wall time on {n_jobs} idle cores)",
            flush=True,
        )
    note = f" ({'; '.join(notes)})" if notes else ""
    print(
        f"ratio at {n:,} x {n:,}: previous / ours wall {previous['wall_s'] / ours['wall_s']:.2f}x, "
        f"cpu {previous['cpu_s'] / ours['cpu_s']:.2f}x, peak rss {previous['peak_mib'] / ours['peak_mib']:.2f}x{note}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="synthetic = train rows")
    parser.add_argument("--naive-n", type=int, default=8_000, help="rows for the naive cdist (its matrix is n^2 x 8 bytes)")
    parser.add_argument(
        "--previous-queries", type=int, default=20_000,
        help="above this many rows, time the previous implementation on this many queries and extrapolate",
    )
    parser.add_argument(
        "--ours-queries", type=int,
        help="time ours on this many queries and extrapolate (default: all; for a machine too loaded for 1M x 1M)",
    )
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--worker", choices=("ours", "previous", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--queries", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.n_jobs, args.queries)))
        return
    print(f"cpus {os.cpu_count()}, n_jobs {args.n_jobs}, load at start {os.getloadavg()}", flush=True)
    naive = measure("naive", args.naive_n, args.n_jobs)
    show(naive)
    small = measure("ours", args.naive_n, args.n_jobs)
    show(small)
    worst = float(np.max(np.abs(np.array(naive["dcr"]) - np.array(small["dcr"]))))
    print(
        f"ratio at {args.naive_n:,}: naive cdist / ours wall {naive['wall_s'] / small['wall_s']:.1f}x, "
        f"cpu {naive['cpu_s'] / small['cpu_s']:.1f}x; largest |DCR difference| {worst:.1e} "
        f"(cdist sums in another order)",
        flush=True,
    )
    for n in args.sizes:
        compare(n, args.n_jobs, args.previous_queries, args.ours_queries if n > args.previous_queries else None)
    print(f"load at end {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
