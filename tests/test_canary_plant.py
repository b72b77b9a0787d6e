import os
import re

import numpy as np
import pytest

from auditor.schema import Column, Schema
from canaries.config import CanaryConfig
from canaries.formats import pattern_alphabets
from canaries.manifest import Manifest
from canaries.plant import designated_column, plant

SCHEMA = Schema(columns=[
    Column(name="diagnosis", kind="categorical", categories=["flu", "asthma"]),
    Column(name="age", kind="numeric", integer=True, sig_digits=2),
    Column(name="cost", kind="numeric", sig_digits=4),
    Column(name="born", kind="datetime", format="%Y-%m-%d"),
    Column(name="name", kind="text", pii="PERSON", max_tokens=12),
    Column(name="email", kind="text", pii="EMAIL_ADDRESS", max_tokens=16),
    Column(name="ssn", kind="pattern", pattern="ddd-dd-dddd"),
    Column(name="note", kind="text", max_tokens=32),
])
REAL = [{"diagnosis": "flu", "age": str(20 + i), "cost": "10.5", "born": "1990-01-01", "name": "Zed Quux",
         "email": "zed@example.org", "ssn": "000-00-0000", "note": f"real note {i}"} for i in range(30)]
CONFIG = CanaryConfig(repetitions=(1, 2, 4), per_repetition=2, twins=1, audit_canaries=6)


def _plant(seed=0, records=REAL, schema=SCHEMA, config=CONFIG):
    return plant(records, schema, config=config, rng=np.random.default_rng(seed), secret_rng=np.random.default_rng(seed + 100))


def test_schedule_twins_and_audit_set():
    planted, manifest = _plant()
    groups = [c.group for c in manifest.canaries]
    assert groups.count("schedule") == 6 and groups.count("twin") == 6 and groups.count("audit") == 6
    sched = manifest.group("schedule")
    assert sorted(c.repetitions for c in sched) == [1, 1, 2, 2, 4, 4]
    assert all(c.repetitions == 0 and c.twin_of for c in manifest.group("twin"))
    assert all(c.repetitions == c.coin for c in manifest.group("audit"))
    added = sum(c.repetitions for c in manifest.canaries)
    assert manifest.n_planted_rows == added == len(planted) - len(REAL)
    assert manifest.n_records == len(REAL)
    assert len({c.secret for c in manifest.canaries}) == len(manifest.canaries)


def test_copies_sit_at_recorded_rows_and_real_records_keep_order():
    planted, manifest = _plant()
    canary_rows = set()
    for c in manifest.canaries:
        assert len(c.rows) == c.repetitions
        for r in c.rows:
            assert planted[r] == c.record
            canary_rows.add(r)
    assert [r for i, r in enumerate(planted) if i not in canary_rows] == REAL
    twin_secrets = {c.secret for c in manifest.group("twin")}
    assert not any(s in row["note"] for row in planted for s in twin_secrets)


def test_canary_rows_are_fake_rows_of_the_schema():
    _, manifest = _plant()
    ssn_re = re.compile(r"^\d{3}-\d{2}-\d{4}$")
    for c in manifest.canaries:
        row = c.record
        assert c.field == "note"  # free text: no PII hint, most max_tokens
        assert row["note"] == c.context + c.secret and c.context.endswith(" PIN ")
        assert re.fullmatch(r"\d{6}", c.secret)
        assert row["diagnosis"] in ("flu", "asthma")
        assert 10 <= int(row["age"]) <= 99
        assert ssn_re.match(row["ssn"]) and row["email"].endswith("@example.com")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["born"])
        assert row["name"] not in {r["name"] for r in REAL}


def test_seeded_planting_is_reproducible():
    a = _plant(seed=5)[1]
    b = _plant(seed=5)[1]
    c = _plant(seed=6)[1]
    assert [x.secret for x in a.canaries] == [x.secret for x in b.canaries]
    assert [x.secret for x in a.canaries] != [x.secret for x in c.canaries]


def test_manifest_is_private_and_round_trips(tmp_path):
    _, manifest = _plant()
    path = manifest.write(tmp_path / "canaries.json")
    assert os.stat(path).st_mode & 0o777 == 0o600
    back = Manifest.load(path)
    assert back.to_dict() == manifest.to_dict()
    assert back.canaries[0].inserted


def test_pattern_column_when_no_text_column():
    schema = Schema(columns=[Column(name="age", kind="numeric", integer=True),
                             Column(name="ssn", kind="pattern", pattern="ddd-dd-dddd")])
    records = [{"age": "30", "ssn": "000-00-0000"}] * 5
    _, manifest = _plant(records=records, schema=schema)
    alph = pattern_alphabets("ddd-dd-dddd")
    for c in manifest.canaries:
        assert c.field == "ssn" and c.context == "" and c.format == "pattern:ddd-dd-dddd"
        assert c.record["ssn"] == c.secret and all(ch in a for ch, a in zip(c.secret, alph))
    ssn = CanaryConfig(format="ssn", column="ssn", repetitions=(1,), per_repetition=1, audit_canaries=0)
    assert _plant(records=records, schema=schema, config=ssn)[1].canaries[0].format == "ssn"
    with pytest.raises(ValueError, match="does not fit pattern column 'ssn'"):
        _plant(records=records, schema=schema, config=CanaryConfig(format="digits:4", column="ssn"))


def test_text_records():
    schema = Schema(columns=[Column(name="text", kind="text", max_tokens=64)], text=True)
    planted, manifest = _plant(records=["hello there", "general text"], schema=schema)
    c = manifest.canaries[0]
    assert c.field is None and isinstance(c.record, str) and c.record == c.context + c.secret
    assert manifest.text and planted.count(c.record) == c.repetitions


def test_bad_configs_are_named():
    schema = Schema(columns=[Column(name="born", kind="datetime", format="%Y-%m-%d")])
    assert designated_column(schema, CONFIG) is None
    with pytest.raises(ValueError, match="no column can hold a canary"):
        _plant(schema=schema, records=[{"born": "1990-01-01"}])
    with pytest.raises(ValueError, match="'born' is datetime"):
        designated_column(schema, CanaryConfig(column="born"))
    assert designated_column(SCHEMA, CanaryConfig(column="age")) is None  # a record span of one column
    with pytest.raises(ValueError, match="not a column"):
        designated_column(SCHEMA, CanaryConfig(column="nope"))
    with pytest.raises(ValueError, match="exactly one"):
        CanaryConfig(template="no slot")
    with pytest.raises(ValueError, match="repetitions"):
        CanaryConfig(repetitions=(1, 1))
    with pytest.raises(ValueError, match="categorical domain"):
        _plant(schema=Schema(columns=[Column(name="d", kind="categorical"), Column(name="t", kind="text")]),
               records=[{"d": "x", "t": "y"}])
