"""A table no one here wrote (scikit-learn's bundled Wisconsin breast-cancer data, public domain,
shipped offline), audited model-free as a new user would: freshly drawn real rows pass `internal`;
the same file with 2% of its rows replaced by copied training rows fails it and names the copies."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from cli_helpers import run_cli

COPIED_TO, COPIED_FROM = [10, 70, 130], [5, 6, 7]  # 3 of 150 synthetic rows = 2%


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = np.where(frame.pop("target") == 1, "benign", "malignant")
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, holdout, fresh = frame.iloc[:250], frame.iloc[250:400], frame.iloc[400:550].reset_index(drop=True)
    copied = fresh.copy()
    copied.iloc[COPIED_TO] = train.iloc[COPIED_FROM].to_numpy()
    root = tmp_path_factory.mktemp("public")
    for name, table in (("train", train), ("holdout", holdout), ("fresh", fresh), ("copied", copied)):
        table.to_csv(root / f"{name}.csv", index=False)
    return root


def _audit(capsys, root, synthetic):
    out = root / f"audit-{synthetic}"
    code, _, err = run_cli(capsys, "audit", "--synthetic", root / f"{synthetic}.csv", "--train", root / "train.csv",
                           "--holdout", root / "holdout.csv", "--out", out, "--no-ner", "-q")
    assert code == 0, err
    code, stdout, err = run_cli(capsys, "report", out, "--policy", "internal")
    return code, json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def test_fresh_real_rows_pass_internal_model_free(capsys, files):
    code, record, md = _audit(capsys, files, "fresh")
    assert code == 0 and record["verdict"] == "pass"
    basis = record["verdict_basis"]
    assert basis["mode"] == "model-free"
    assert {c["name"] for c in basis["not_applicable"]} == {"max_epsilon", "max_delta", "max_canary_exposure",
                                                           "min_validity"}
    assert {"max_excess_exact_copies", "max_excess_near_copies", "max_dcr_train_share"} <= set(basis["checks"])
    assert record["distance"]["copies"]["exact"]["train_hits"] == 0
    assert basis["text"] in md


def test_two_percent_copied_rows_fail_internal_naming_them(capsys, files):
    code, record, md = _audit(capsys, files, "copied")
    assert code == 1 and record["verdict"] == "fail"
    failing = {c["name"]: c["value"] for c in record["checks"] if not c["passed"]}
    assert failing["max_excess_exact_copies"] == 3.0
    exact = record["distance"]["copies"]["exact"]
    assert (exact["train_hits"], exact["control_hits"], exact["synthetic_rows"]) == (3, 0, COPIED_TO)
    assert "synthetic rows (0-based) 10, 70, 130" in md


def test_model_free_run_json_keys_its_data_hashes(capsys, files):
    """run.json's hashes of the training and synthetic tables are HMACs with the run's salt, not plain SHA-256."""
    from auditor.data import data_hash, load_records

    out = files / "audit-keyed"
    code, _, err = run_cli(capsys, "audit", "--synthetic", files / "fresh.csv", "--train", files / "train.csv",
                           "--out", out, "--only", "duplicates", "-q")
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    salt = (out / ".salt").read_text().strip()
    train = load_records(files / "train.csv").frame
    fresh = load_records(files / "fresh.csv").frame
    assert meta["data_hash"] == data_hash(train, key=salt) != data_hash(train)
    assert meta["synthetic_hash"] == data_hash(fresh, key=salt) != data_hash(fresh)
