"""Benchmark: column-aware PII scan vs a naive per-cell loop of ``AnalyzerEngine.analyze``.

Both use the same engine (same spaCy pipeline, Presidio's recognizers unfiltered,
threshold and column-name context) on the same demo-like table: fake patient
records made with Faker and numpy, seeded, with the demo's columns (diagnosis,
age, cost, birth_date, name, email, phone, ssn, card_number, address, note). The
naive loop calls ``analyze`` once per non-empty cell, NLP included; ``scan_table``
deduplicates values, runs NER in ``nlp.pipe`` batches with lemmas on demand and
skips recognizers that cannot match (``auditor/pii/batch_analysis.py``). The
finding sets must be equal; the script prints records/s of both, the ratio of
wall time and of CPU time (``time.process_time``), and the load average.
``--profile N`` adds the scan's cProfile, top N functions by own time.

Run it with ``OMP_NUM_THREADS=1`` on a shared machine.

Usage: ``python benchmarks/pii_scan.py [--rows 5000] [--seed 7] [--no-ner] [--profile 25]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
from faker import Faker

from auditor.execution import InProcess
from auditor.pii.config import load_config
from auditor.pii.engine import get_engine
from auditor.pii.scan import analyze_text, cell_text, column_context, scan_table

DIAGNOSES = ("hypertension", "diabetes", "asthma", "migraine", "flu", "fracture")
SHARES = (0.30, 0.22, 0.18, 0.14, 0.10, 0.06)
NOTES = (
    "{d} stable, recheck in {n} weeks.",
    "{d} follow up, symptoms improved.",
    "Routine {d} check, no changes today.",
    "{d} worse this month, treatment adjusted.",
)


def demo_like_table(*, rows: int, seed: int) -> pd.DataFrame:
    """Fake patient records shaped like ``auditor/data/demo.csv`` (all values made up)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    diagnosis = rng.choice(DIAGNOSES, size=rows, p=SHARES)
    age = np.clip(rng.normal(48, 16, size=rows).round(), 18, 90).astype(int)
    cost = np.round(rng.lognormal(7.0, 0.6, size=rows), 2)
    records = []
    for i in range(rows):
        first, last = fake.first_name(), fake.last_name()
        born = date(2026, 1, 1) - timedelta(days=int(age[i]) * 365 + int(rng.integers(0, 365)))
        records.append(
            {
                "diagnosis": diagnosis[i],
                "age": str(age[i]),
                "cost": f"{cost[i]:.2f}",
                "birth_date": born.isoformat(),
                "name": f"{first} {last}",
                "email": f"{first}.{last}{rng.integers(1, 99)}@{fake.free_email_domain()}".lower(),
                "phone": fake.numerify("###-###-####"),
                "ssn": fake.ssn(),
                "card_number": " ".join(fake.credit_card_number("visa16")[k : k + 4] for k in range(0, 16, 4)),
                "address": f"{fake.street_address()}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}",
                "note": NOTES[int(rng.integers(0, len(NOTES)))].format(d=diagnosis[i].capitalize(), n=int(rng.integers(2, 9))),
            }
        )
    return pd.DataFrame(records)


def naive_findings(table: pd.DataFrame, *, engine, config) -> set[tuple]:
    """One ``AnalyzerEngine.analyze`` call per non-empty cell (NLP run per call)."""
    out = set()
    for column in table.columns:
        context = column_context(column)
        for row, value in enumerate(table[column].tolist()):
            text = cell_text(value)
            if text is None:
                continue
            for r in analyze_text(text, engine=engine, config=config, context=context):
                out.add((row, column, r.entity_type, r.start, r.end, round(float(r.score), 6)))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-ner", action="store_true", help="blank spaCy pipeline, pattern recognizers only")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile the scan; print the top N functions")
    args = parser.parse_args(argv)

    config = load_config({"ner": False} if args.no_ner else None)
    engine = get_engine(config)
    table = demo_like_table(rows=args.rows, seed=args.seed)
    warm_up = table.head(20)  # lazy loads (phone metadata per region, spaCy vectors) land in neither timing
    scan_table(warm_up, engine=engine, config=config, label="warm-up", executor=InProcess())
    naive_findings(warm_up, engine=engine, config=config)
    print(f"engine: {engine.model.name} ({engine.model.source}); {len(table)} rows x {len(table.columns)} columns")
    print(f"cpus: {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load average at start: {load_average()}")

    start, cpu = time.perf_counter(), time.process_time()
    scan = scan_table(table, engine=engine, config=config, label="bench", executor=InProcess())
    fast_s, fast_cpu = time.perf_counter() - start, time.process_time() - cpu
    fast = {(f.row, f.column, f.entity, f.start, f.end, round(f.score, 6)) for f in scan.findings}

    start, cpu = time.perf_counter(), time.process_time()
    naive = naive_findings(table, engine=engine, config=config)
    naive_s, naive_cpu = time.perf_counter() - start, time.process_time() - cpu

    assert fast == naive, f"finding sets differ: {len(fast - naive)} only in scan, {len(naive - fast)} only in naive"
    distinct = {c: table[c].nunique() for c in table.columns}
    print(f"findings: {len(fast)} (equal sets); cells: {table.size}, distinct values (per column): {sum(distinct.values())}")
    print("  repeats per value: " + ", ".join(f"{c} {len(table) / n:.1f}" for c, n in distinct.items()))
    print(f"scan_table : {fast_s:8.2f} s wall {fast_cpu:8.2f} s cpu  {len(table) / fast_s:8.1f} records/s")
    print(f"naive loop : {naive_s:8.2f} s wall {naive_cpu:8.2f} s cpu  {len(table) / naive_s:8.1f} records/s")
    print(f"speed-up   : {naive_s / fast_s:.1f}x wall, {naive_cpu / fast_cpu:.1f}x cpu  (load average at end: {load_average()})")
    if args.profile:
        profile_scan(table, engine=engine, config=config, top=args.profile)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def profile_scan(table: pd.DataFrame, *, engine, config, top: int) -> None:
    """cProfile (CPU time) of one more scan: the share of the main stages and the top functions by own time."""
    profiler = cProfile.Profile(time.process_time)  # CPU time: wall time on a shared machine counts waiting
    profiler.runcall(scan_table, table, engine=engine, config=config, label="profile", executor=InProcess())
    stats = pstats.Stats(profiler)
    total = max(stats.total_tt, 1e-9)
    by_name = {f"{os.path.basename(path)}:{line}({name})": row for (path, line, name), row in stats.stats.items()}
    print(f"profile of scan_table ({total:.1f} s CPU under the profiler; cumulative share by stage):")
    for label, file, function in STAGES:
        found = [row for (path, _, name), row in stats.stats.items() if os.path.basename(path) == file and name == function]
        if found:
            print(f"  {label:34s} {max(r[3] for r in found) / total:6.1%}")
    print(f"top {top} functions by own time:")
    for name, row in sorted(by_name.items(), key=lambda kv: -kv[1][2])[:top]:
        print(f"  {row[2] / total:6.1%} own {row[3] / total:6.1%} cum  {name}")


#: (label, file, function) of the stages whose cumulative share the profile prints.
STAGES = (
    ("NLP, NER stage (nlp.pipe)", "language.py", "pipe"),
    ("recognizers, all", "batch_analysis.py", "_raw_results"),
    ("  phone (libphonenumber matcher)", "phone_recognizer.py", "analyze"),
    ("  pattern recognizers", "pattern_recognizer.py", "analyze"),
    ("context, threshold, duplicates", "batch_analysis.py", "finish"),
    ("lemmas on demand", "batch_analysis.py", "add_lemmas"),
)


if __name__ == "__main__":
    main()
