"""Benchmark: throughput of the partitionable stages with 1 and 2 workers, against one process, in one run.

For each stage the single-process path (``auditor.execution.InProcess``) runs
first, then the same work on 2 local worker processes (``LocalPool``) and on a
2-worker Dask ``LocalCluster``; each line prints throughput and the ratio to the
single process, and the results are checked equal to it. Workers are started and
warmed (Presidio engine or model loaded by a first, untimed round) before timing:
the figures are steady-state throughput; the start-up cost is printed apart.

- ``scan``: ``scan_table`` on the PII benchmark's demo-like table
  (``benchmarks/pii_scan.py``), records/s, plus the per-cell Presidio loop on
  the same table and the speed-up of each path over it (equal finding sets).
- ``generate``: ``generate_records`` of ``--gen-rows`` rows in ``--partitions``
  partitions from a trained run (``--run``; without one, a small-preset model is
  trained briefly on the demo records, which is enough for throughput), rows/s.
- ``dcr``: ``nearest_neighbours`` of ``--dcr-rows`` x ``--dcr-rows`` mixed rows
  with 1 and 2 threads (locally the search shares the reference between threads;
  a Dask cluster gets query parts), seconds. ``benchmarks/distance.py`` measures
  100k x 100k and 1M x 1M with peak memory.

The 1-minute load average is printed at the start and end of each stage: the
ratios only mean something on an otherwise idle machine.

    OMP_NUM_THREADS=1 python benchmarks/scale.py                  # all stages (about 10 minutes on 2 cores)
    OMP_NUM_THREADS=1 python benchmarks/scale.py --stages scan --rows 1000
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pii_scan.py beside this file

import numpy as np  # noqa: E402

from auditor import execution  # noqa: E402
from auditor.execution import DaskExecutor, InProcess, LocalPool  # noqa: E402


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def two_worker_engines():
    """(label, executor factory) of the 2-worker paths."""
    logging.getLogger("distributed").setLevel(logging.WARNING)
    return [("2 local processes", lambda: LocalPool(2)), ("2 Dask workers", lambda: DaskExecutor(workers=2))]


def bench_scan(args) -> None:
    from pii_scan import demo_like_table, naive_findings

    from auditor.pii import scan as scan_module
    from auditor.pii.config import load_config
    from auditor.pii.engine import get_engine
    from auditor.pii.scan import scan_table

    config = load_config({"ner": False} if args.no_ner else None)
    engine = get_engine(config)
    table = demo_like_table(rows=args.rows, seed=7)
    warm = demo_like_table(rows=args.rows, seed=8)  # other values: the timed scan finds nothing cached
    scan_table(table.head(20), engine=engine, config=config, executor=InProcess())
    print(f"\n== PII scan: {len(table)} rows x {len(table.columns)} columns, engine {engine.model.name}; "
          f"load {load()}")

    def run(executor):
        result = scan_table(table, engine=engine, config=config, executor=executor)
        return [(f.row, f.column, f.entity, f.start, f.end, f.score) for f in result.findings]

    base, base_s = timed(lambda: run(InProcess()))
    naive, naive_s = timed(lambda: naive_findings(table, engine=engine, config=config))
    assert set(base) == naive, "scan and per-cell loop disagree"
    print(f"  per-cell Presidio loop : {len(table) / naive_s:8.1f} records/s")
    print(f"  1 process              : {len(table) / base_s:8.1f} records/s  1.00x  "
          f"({naive_s / base_s:.1f}x the per-cell loop)")
    for label, make in two_worker_engines():
        executor, start_s = timed(make)
        try:
            _, warm_s = timed(lambda: scan_table(warm, engine=engine, config=config, executor=executor))
            found, s = timed(lambda: run(executor))
        finally:
            executor.close()
        assert found == base, f"{label}: findings differ from one process"
        print(f"  {label:<23}: {len(table) / s:8.1f} records/s  {base_s / s:.2f}x  "
              f"({naive_s / s:.1f}x the per-cell loop; start {start_s:.1f} s, first round {warm_s:.1f} s)")
    print(f"  parts of {scan_module.MIN_VALUES_PER_PART}+ distinct values; findings equal on every path "
          f"({len(base)}); load {load()}")


def trained_run(args) -> Path:
    if args.run:
        return Path(args.run)
    from auditor import api
    from auditor.config import RunConfig, TrainConfig
    from auditor.data import DEMO_CSV, DEMO_SCHEMA

    out = Path(tempfile.mkdtemp(prefix="scale-bench-")) / "run"
    cfg = RunConfig(train=TrainConfig(model="small", epochs=1, batch_size=64, seed=0))
    cfg.canaries.enabled = False
    cfg.data.schema = str(DEMO_SCHEMA)
    print(f"  (training a small-preset model on the demo records for 1 epoch into {out})")
    api.train(DEMO_CSV, out, config=cfg)
    return out


def bench_generate(args) -> None:
    from auditor.config import SampleConfig
    from auditor.generate import generate_records
    from auditor.loading import load_codec, load_trained_model
    from auditor.rundir import RunDir

    print(f"\n== Generation: {args.gen_rows} rows in {args.partitions} partitions; load {load()}")
    run = RunDir(trained_run(args))
    model, codec = load_trained_model(run, "cpu"), load_codec(run)
    import torch

    cfg = SampleConfig(partitions=args.partitions, magnitude_min_p=0.0, seed=3)
    warm_cfg = SampleConfig(partitions=args.partitions, magnitude_min_p=0.0, seed=4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core, as each worker has
    try:
        generate_records(model, codec, n=64, config=SampleConfig(partitions=1, magnitude_min_p=0.0))
        (base, _), base_s = timed(lambda: generate_records(model, codec, n=args.gen_rows, config=cfg))
    finally:
        torch.set_num_threads(threads)
    print(f"  1 process (1 thread)   : {args.gen_rows / base_s:8.1f} rows/s  1.00x")
    for label, make in two_worker_engines():
        executor, start_s = timed(make)
        try:
            _, warm_s = timed(lambda: generate_records(model, codec, n=args.partitions * 8, config=warm_cfg,
                                                       executor=executor))
            (rows, _), s = timed(lambda: generate_records(model, codec, n=args.gen_rows, config=cfg,
                                                          executor=executor))
        finally:
            executor.close()
        assert rows == base, f"{label}: rows differ from one process"
        print(f"  {label:<23}: {args.gen_rows / s:8.1f} rows/s  {base_s / s:.2f}x  "
              f"(start {start_s:.1f} s, first round {warm_s:.1f} s)")
    print(f"  rows equal on every path; load {load()}")


def bench_dcr(args) -> None:
    from threadpoolctl import threadpool_limits

    from attacks.neighbours import nearest_neighbours

    rng = np.random.default_rng(0)
    n, width = args.dcr_rows, 48
    print(f"\n== Nearest neighbours: {n} x {n} rows of width {width}; load {load()}")
    reference = rng.normal(size=(n, width)).round(1)
    query = rng.normal(size=(n, width)).round(1)
    with threadpool_limits(limits=1):
        base, base_s = timed(lambda: nearest_neighbours(query, reference, n_jobs=1))
        two, s = timed(lambda: nearest_neighbours(query, reference, n_jobs=2))
    for name in ("query_distance", "query_index", "query_second", "reference_distance"):
        np.testing.assert_array_equal(getattr(two, name), getattr(base, name))
    print(f"  1 thread               : {base_s:8.1f} s  1.00x")
    print(f"  2 threads              : {s:8.1f} s  {base_s / s:.2f}x  (equal results); load {load()}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", choices=("scan", "generate", "dcr"), default=["scan", "generate", "dcr"])
    parser.add_argument("--rows", type=int, default=2000, help="rows of the scanned table")
    parser.add_argument("--no-ner", action="store_true")
    parser.add_argument("--run", help="a trained run to generate from (default: train a small one)")
    parser.add_argument("--gen-rows", type=int, default=4000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--dcr-rows", type=int, default=40_000)
    args = parser.parse_args(argv)
    print(f"cores: {execution.cores()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for stage in args.stages:
        {"scan": bench_scan, "generate": bench_generate, "dcr": bench_dcr}[stage](args)


if __name__ == "__main__":
    main()
