"""A real tiny run through `auditor run`: policy gating, golden-free values, no leaks, model-free audits."""

import json

import pytest

from auditor.data import DEMO_SCHEMA
from auditor.pii import analyze
from canaries.manifest import Manifest
from cli_helpers import run_cli
from reports.leakcheck import MIN_ALNUM, find_leaks

TINY = ["--model", "tiny", "--batch-size", "32", "--lr", "0.02", "--epochs", "6", "--seed", "5", "--quiet",
        "--canary-repetitions", "1,16", "--audit-canaries", "8", "-n", "120", "--no-ner"]


@pytest.fixture(scope="module")
def nodp_run(tmp_path_factory, demo_small_csv):
    from auditor.cli import main

    out = tmp_path_factory.mktemp("e2e") / "run"
    with pytest.raises(SystemExit) as exc:
        main(["run", str(demo_small_csv), "--out", str(out), "--schema", str(DEMO_SCHEMA), "--no-dp",
              "--policy", "external", *TINY])
    return out, exc.value.code


def _texts(run):
    return {name: (run / name).read_text(encoding="utf-8") for name in ("report.json", "report.html", "report.md")}


def test_non_dp_run_with_repeated_canaries_fails_external(nodp_run):
    run, code = nodp_run
    assert code == 1
    record = json.loads((run / "report.json").read_text())
    assert record["verdict"] == "fail"
    failing = [c["name"] for c in record["checks"] if not c["passed"]]
    assert "max_epsilon" in failing  # no DP guarantee at all
    # failing checks come first in every format
    assert [c["passed"] for c in record["checks"]] == sorted(c["passed"] for c in record["checks"])
    md = (run / "report.md").read_text()
    assert md.index("FAIL") < md.index("PASS") if "PASS" in md else "FAIL" in md


def test_report_values_equal_audit_files(nodp_run):
    run, _ = nodp_run
    record = json.loads((run / "report.json").read_text())
    exposure = json.loads((run / "audit" / "exposure.json").read_text())
    mia = json.loads((run / "audit" / "mia.json").read_text())
    pii = json.loads((run / "audit" / "pii.json").read_text())
    assert record["canaries"]["max_exposure"] == exposure["max_exposure"]
    assert record["mia"]["signals"]["loss"]["auc"] == mia["signals"]["loss"]["auc"]
    assert record["pii"]["replay"] == pii["replay"]
    assert record["privacy"]["dp"] is False
    for section in ("canaries", "mia", "audit", "distance", "pii", "quality", "duplicates", "anonymity"):
        assert section in record


def test_claims_are_per_record_and_bounds_state_their_power(nodp_run):
    run, _ = nodp_run
    record = json.loads((run / "report.json").read_text())
    exposure = json.loads((run / "audit" / "exposure.json").read_text())
    once = [c["exposure"] for c in exposure["canaries"] if c["inserted"] and c["repetitions"] == 1]
    check = next(c for c in record["checks"] if c["name"] == "max_canary_exposure")
    assert check["value"] == exposure["max_exposure_single_copy"] == max(once)
    audit = record["audit"]
    assert all("max_attainable" in b and "heuristic" in b for b in audit["bounds"])
    assert [b["heuristic"] for b in audit["bounds"] if b["name"].startswith("mia:")] == [True]
    assert audit["correction"]["family_size"] == 1  # the one-run canaries alone feed the violation
    assert record["duplicates"]["learned"]["n_records"] > 0 and record["duplicates"]["epsilon"] is None
    assert {"singling_out", "linkability", "inference"} <= set(record["anonymity"])


def test_report_leaks_no_canary_secret_and_no_training_pii(nodp_run):
    run, _ = nodp_run
    texts = _texts(run)
    manifest = Manifest.load(run / "canaries.json")
    secrets = {c.secret for c in manifest.canaries}
    # the canary records' full note values (name + PIN) must not appear either
    secrets |= {c.record["note"] for c in manifest.canaries if isinstance(c.record, dict)}
    assert not find_leaks(texts, secrets)
    from auditor.loading import load_frames
    from auditor.rundir import RunDir

    train_frame, _, _ = load_frames(RunDir(run))
    scan = analyze(synthetic=train_frame, config={"ner": False})
    values = {f.text for f in scan.synthetic.findings
              if sum(ch.isalnum() for ch in f.text) >= max(MIN_ALNUM, 6)}
    assert len(values) > 100  # the scanner did find the training PII it is checked against
    assert not find_leaks(texts, values)


def test_model_free_audit_of_any_generator(tmp_path, capsys, nodp_run, demo_small_csv):
    from auditor.data import DEMO_CSV

    run, _ = nodp_run
    lines = DEMO_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    holdout = tmp_path / "holdout.csv"
    holdout.write_text(lines[0] + "".join(lines[301:451]), encoding="utf-8")
    code, out, err = run_cli(capsys, "audit", "--synthetic", run / "synthetic.csv", "--train", demo_small_csv,
                             "--holdout", holdout, "--out", tmp_path / "mf", "--schema", DEMO_SCHEMA, "--no-ner",
                             "-q")
    assert code == 0, err
    record = json.loads((tmp_path / "mf" / "report.json").read_text())
    assert {"distance", "pii", "quality", "duplicates", "anonymity"} <= set(record)
    assert "canaries" not in record and "mia" not in record
    code, out, err = run_cli(capsys, "audit", "--synthetic", run / "synthetic.csv", "--out", tmp_path / "x")
    assert code == 2 and "--train" in err
