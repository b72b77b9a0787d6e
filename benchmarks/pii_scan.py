"""Benchmark: column-aware PII scan vs a naive per-cell loop of ``AnalyzerEngine.analyze``.

Both use the same engine (same spaCy pipeline, recognizers, threshold and
column-name context) on the same demo-like table: fake patient records made with
Faker and numpy, seeded, with the demo's columns (diagnosis, age, cost,
birth_date, name, email, phone, ssn, card_number, address, note). The naive loop
calls ``analyze`` once per non-empty cell, NLP included; ``scan_table``
deduplicates each column and runs the NLP pipeline in ``nlp.pipe`` batches. The
finding sets must be equal; the script prints records/s of both and the ratio.

Usage: ``python benchmarks/pii_scan.py [--rows 5000] [--seed 7] [--no-ner]``.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
from faker import Faker

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
    args = parser.parse_args(argv)

    config = load_config({"ner": False} if args.no_ner else None)
    engine = get_engine(config)
    table = demo_like_table(rows=args.rows, seed=args.seed)
    warm_up = table.head(20)  # lazy loads (phone metadata per region, spaCy vectors) land in neither timing
    scan_table(warm_up, engine=engine, config=config, label="warm-up")
    naive_findings(warm_up, engine=engine, config=config)
    print(f"engine: {engine.model.name} ({engine.model.source}); {len(table)} rows x {len(table.columns)} columns")
    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")

    start = time.perf_counter()
    scan = scan_table(table, engine=engine, config=config, label="bench")
    fast_s = time.perf_counter() - start
    fast = {(f.row, f.column, f.entity, f.start, f.end, round(f.score, 6)) for f in scan.findings}

    start = time.perf_counter()
    naive = naive_findings(table, engine=engine, config=config)
    naive_s = time.perf_counter() - start

    assert fast == naive, f"finding sets differ: {len(fast - naive)} only in scan, {len(naive - fast)} only in naive"
    distinct = {c: table[c].nunique() for c in table.columns}
    print(f"findings: {len(fast)} (equal sets); cells: {table.size}, distinct values (per column): {sum(distinct.values())}")
    print("  repeats per value: " + ", ".join(f"{c} {len(table) / n:.1f}" for c, n in distinct.items()))
    print(f"scan_table : {fast_s:8.2f} s  {len(table) / fast_s:10.1f} records/s")
    print(f"naive loop : {naive_s:8.2f} s  {len(table) / naive_s:10.1f} records/s")
    print(f"speed-up   : {naive_s / fast_s:.1f}x  (load average at end: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
