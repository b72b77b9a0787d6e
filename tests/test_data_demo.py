"""The shipped demo table and its public schema."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from auditor.data import DEMO_CSV, DEMO_SCHEMA, load_records
from auditor.schema_inference import infer_schema, validate_against_schema
from auditor.schema import Schema

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["diagnosis", "age", "cost", "birth_date", "name", "email", "phone", "ssn", "card_number", "address", "note"]


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return load_records(DEMO_CSV).frame


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def test_demo_loads_with_columns_in_order(demo):
    assert len(demo) >= 2000
    assert list(demo.columns) == COLUMNS
    assert 150 <= DEMO_CSV.stat().st_size / len(demo) <= 220  # bytes a row


def test_declared_schema_validates_every_value(demo):
    schema = Schema.load(DEMO_SCHEMA)
    # the file's columns, with cost moved next to the diagnosis it depends on (sequence order)
    assert schema.names == ["diagnosis", "cost", "age"] + COLUMNS[3:]
    assert all(c.source == "declared" for c in schema.columns)
    assert validate_against_schema(demo, schema) == []


def test_declared_text_budgets_rarely_truncate(demo):
    schema = Schema.load(DEMO_SCHEMA)
    for c in schema.columns:
        if c.kind == "text":
            est_tokens = demo[c.name].str.len() / 3.5
            assert (est_tokens > c.max_tokens).mean() < 0.01, c.name


def test_correlations(demo):
    num = demo.assign(age=demo.age.astype(int), cost=demo.cost.astype(float))
    by_dx = num.groupby("diagnosis")
    cost = by_dx.cost.mean()
    assert cost.max() / cost.min() > 3
    age = by_dx.age.mean()
    assert age.max() - age.min() > 20
    counts = demo.diagnosis.value_counts()
    assert 5 <= len(counts) <= 6 and counts.max() > 2 * counts.min()
    # cost rises with age within a diagnosis
    hyp = num[num.diagnosis == "hypertension"]
    assert hyp.cost.corr(hyp.age) > 0.1
    assert num.age.between(18, 90).all()


def test_pii_columns_are_consistent(demo):
    as_of = date(2026, 1, 1)
    for born, age in zip(demo.birth_date, demo.age.astype(int)):
        b = date.fromisoformat(born)
        assert as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day)) == age
    assert all(_luhn_ok(c.replace(" ", "")) for c in demo.card_number)
    first_last = demo.name.str.lower().str.split()
    assert all(
        any(part.replace("'", "") in email for part in parts) for parts, email in zip(first_last, demo.email)
    )
    assert demo.address.str.fullmatch(r"\d+ [^,]+, [^,]+, [A-Z]{2} \d{5}").all()
    words = demo.note.str.split().str.len()
    assert words.between(5, 15).all()
    assert all(dx in note.lower() for dx, note in zip(demo.diagnosis, demo.note))


def test_inferred_kinds_match_declared(demo):
    inferred = {c.name: c.kind for c in infer_schema(demo).columns}
    declared = {c.name: c.kind for c in Schema.load(DEMO_SCHEMA).columns}
    assert inferred == declared


def test_script_reproduces_the_file(tmp_path):
    out = tmp_path / "demo.csv"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_data.py"), "--out", str(out)], check=True, capture_output=True)
    assert out.read_bytes() == DEMO_CSV.read_bytes()
