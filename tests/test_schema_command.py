"""`auditor schema DATA --out schema.yaml`: a draft that `--schema` accepts unchanged; detection in a run."""

from __future__ import annotations

import json
import stat

import pytest

from auditor.data import load_records
from auditor.schema import Schema
from auditor.schema_inference import require_valid
from cli_helpers import run_cli
from test_identifiers import DIRECT, QUASI, identity_table

TINY = ["--model", "tiny", "--batch-size", "16", "--epochs", "1", "--no-canaries", "--seed", "1", "--quiet"]


@pytest.fixture(scope="module")
def identity_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "identities.csv"
    identity_table(n=120).to_csv(path, index=False)
    return path


def test_schema_draft_is_accepted_unchanged(identity_csv, tmp_path, capsys):
    out = tmp_path / "schema.yaml"
    code, stdout, _ = run_cli(capsys, "schema", identity_csv, "--out", out, "--no-ner")
    assert code == 0
    assert "fake: user_name" in stdout and f"wrote {out}" in stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    table = identity_table(n=120)
    assert not any(v in text for c in DIRECT for v in table[c])  # no identifier value in the draft
    schema = Schema.load(out)
    assert {c.name for c in schema.columns if c.fake} == DIRECT
    assert {c.name for c in schema.columns if c.pii and not c.fake} == QUASI
    assert schema.column("plan").categories is None  # left to DP selection at training

    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", identity_csv, "--out", run, "--schema", out, *TINY)
    assert code == 0, err
    privacy = json.loads((run / "model" / "privacy.json").read_text())
    assert {line.split(":")[0] for line in privacy["not_learned"]} == DIRECT
    assert not any("inferred" in line or "identifier detection" in line for line in privacy["outside_guarantee"])
    assert "identifier_detection" not in privacy
    used = Schema.load(run / "schema.yaml")  # with the DP-selected domains filled in
    assert [(c.name, c.kind, c.fake, c.pattern) for c in used.columns] == [
        (c.name, c.kind, c.fake, c.pattern) for c in schema.columns]


def test_schema_domains_from_data_and_refusals(identity_csv, tmp_path, capsys):
    out = tmp_path / "schema.yaml"
    code, _, _ = run_cli(capsys, "schema", identity_csv, "--out", out, "--no-ner", "--domains", "data",
                         "--learn-identifiers", "--quiet")
    assert code == 0
    schema = Schema.load(out)
    assert schema.column("plan").categories == ["basic", "plus", "pro"]
    assert schema.column("gender").categories == ["F", "M"]
    assert not any(c.fake for c in schema.columns)
    require_valid(load_records(identity_csv).frame, schema)
    code, _, err = run_cli(capsys, "schema", identity_csv, "--out", out, "--no-ner")
    assert code == 2 and "exists" in err
    code, _, err = run_cli(capsys, "schema", identity_csv, "--out", identity_csv, "--force")
    assert code == 2 and "also an output" in err


def test_run_without_schema_fakes_detected_identifiers(identity_csv, tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", identity_csv, "--out", run, *TINY[:-1])
    assert code == 0, err
    assert "fake: credit_card_number" in err and "learned (quasi-identifier)" in err
    privacy = json.loads((run / "model" / "privacy.json").read_text())
    assert set(privacy["identifier_detection"]["faked"]) == DIRECT
    assert set(privacy["identifier_detection"]["quasi_identifiers"]) == QUASI
    assert sum(line.startswith("identifier detection read a sample") for line in privacy["outside_guarantee"]) == 1
    assert {line.split(":")[0] for line in privacy["not_learned"]} == DIRECT

    code, _, err = run_cli(capsys, "train", identity_csv, "--out", tmp_path / "learned", *TINY,
                           "--learn-identifiers", "--batch-size", "8")
    assert code == 0, err
    privacy = json.loads((tmp_path / "learned" / "model" / "privacy.json").read_text())
    assert "identifier_detection" not in privacy and privacy["not_learned"] == []
