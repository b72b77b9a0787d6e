"""A report never mixes numbers about different synthetic data or models (issue 18, points 4 and 5).

Real tiny runs: each audit records keyed digests of what it read, ``generate``
removes what it invalidates, the report refuses (exit 2, one line) any file whose
inputs changed, and a model-free audit never writes into a trained run.
"""

import hashlib
import hmac
import json
import shutil

import pytest

from auditor.data import DEMO_SCHEMA
from cli_helpers import run_cli
from reports.build import build_report
from reports.errors import ReportInputError

DATA_AUDITS = ["distance", "pii", "quality"]


@pytest.fixture(scope="module")
def audited(tmp_path_factory, demo_small_csv):
    """A trained run with 60 synthetic rows and the model-free audits of them (and a report)."""
    from auditor.cli import main

    out = tmp_path_factory.mktemp("stale") / "run"
    for args in (["train", demo_small_csv, "--out", out, "--schema", DEMO_SCHEMA, "--model", "tiny", "--epochs", "1",
                  "--batch-size", "32", "--no-canaries", "--seed", "3", "-q"],
                 ["generate", out, "-n", "60", "--gen-seed", "1", "-q"],
                 ["audit", out, "--only", ",".join(DATA_AUDITS), "--no-ner", "-q"]):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        assert exc.value.code == 0, args
    return out


@pytest.fixture
def run(audited, tmp_path):
    return shutil.copytree(audited, tmp_path / "run")


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _one_line_refusal(code, out, err):
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_audits_record_keyed_digests_of_what_they_read(run):
    salt = (run / ".salt").read_text().strip()
    synthetic = (run / "synthetic.csv").read_bytes()
    expected = hmac.new(salt.encode(), f"synthetic.csv\x00{len(synthetic)}\x00".encode() + synthetic,
                        hashlib.sha256).hexdigest()
    for name in DATA_AUDITS:
        inputs = _json(run / "audit" / f"{name}.json")["provenance"]["inputs"]
        assert inputs["synthetic"] == "hmac-sha256:" + expected
        assert set(inputs) == {"synthetic", "split"} | ({"generation"} if name == "quality" else set())
    assert _json(run / "generation.json")["provenance"]["inputs"]["synthetic"] == "hmac-sha256:" + expected
    # keyed: no plain hash of a private-derived file appears in any artifact
    plain = hashlib.sha256(synthetic).hexdigest()
    assert all(plain not in p.read_text() for p in run.rglob("*.json"))


def test_generate_clears_the_audits_and_report_it_invalidates(run, capsys):
    code, _, err = run_cli(capsys, "generate", run, "-n", "30", "--gen-seed", "2", "-q")
    assert code == 0, err
    assert not any((run / "audit" / f"{name}.json").exists() for name in DATA_AUDITS)
    assert not any((run / f"report.{x}").exists() for x in ("json", "html", "md"))
    code, _, err = run_cli(capsys, "report", run, "-q")
    assert code == 0, err
    record = _json(run / "report.json")
    assert record["generation"]["released"] == 30
    assert set(DATA_AUDITS).isdisjoint(record)  # no section about the 60 earlier rows


def test_generate_keeps_the_model_audits_of_the_same_model(run, capsys):
    from report_runs import dp_run
    from reports.provenance import current_digests, stamp

    salt = (run / ".salt").read_text().strip()
    mia = stamp(dp_run()["audit/mia.json"], current_digests(run, ("model", "split", "canaries"), salt))
    (run / "audit" / "mia.json").write_text(json.dumps(mia))
    assert run_cli(capsys, "generate", run, "-n", "30", "--gen-seed", "2", "-q")[0] == 0
    assert sorted(p.name for p in (run / "audit").iterdir()) == ["mia.json"]
    assert run_cli(capsys, "report", run, "-q")[0] == 0
    assert _json(run / "report.json")["mia"] == mia


def test_report_refuses_an_audit_left_from_older_synthetic_data(run, capsys):
    # a killed audit: after a new generation, only pii and quality were rewritten; distance is the old one
    old_distance = (run / "audit" / "distance.json").read_bytes()
    assert run_cli(capsys, "generate", run, "-n", "30", "--gen-seed", "2", "-q")[0] == 0
    assert run_cli(capsys, "audit", run, "--only", "pii,quality", "--no-ner", "-q")[0] == 0
    (run / "audit" / "distance.json").write_bytes(old_distance)
    written = (run / "report.json").read_bytes()  # by that audit, of pii and quality
    err = _one_line_refusal(*run_cli(capsys, "report", run))
    assert "audit/distance.json (synthetic changed)" in err and "pii" not in err
    assert f"auditor audit {run} --only distance" in err
    assert (run / "report.json").read_bytes() == written
    code, _, err = run_cli(capsys, "audit", run, "--only", "distance", "--no-ner", "-q")
    assert code == 0, err
    assert _json(run / "report.json")["generation"]["released"] == 30


def test_report_refuses_an_audit_whose_synthetic_data_changed_while_it_ran(run, capsys):
    from auditor.audits import audit_run
    from auditor.config import AuditConfig
    from auditor.pipeline import generate

    def concurrent_generate(stage):
        if stage == "pii":  # distance was written from the 60 rows; now another process generates 30
            generate(run, num_records=30, device="cpu")

    audit_run(run, config=AuditConfig(audits=tuple(DATA_AUDITS), pii_ner=False), device="cpu",
              stage=concurrent_generate)
    capsys.readouterr()  # the generation's own output
    err = _one_line_refusal(*run_cli(capsys, "report", run))
    assert "audit/pii.json (synthetic changed)" in err and "audit/quality.json (generation, synthetic changed)" in err
    assert "--only pii,quality" in err


def test_report_during_an_audit_refuses_the_files_not_yet_rewritten(run, capsys):
    from auditor.audits import audit_run
    from auditor.config import AuditConfig

    # the synthetic file was replaced without a finished generate (killed before it cleared the audits)
    lines = (run / "synthetic.csv").read_text().splitlines(keepends=True)
    (run / "synthetic.csv").write_text("".join(lines[:31]))
    seen = []

    def report_now(stage):
        if stage == "quality":  # distance and pii are rewritten, quality is still the old one
            with pytest.raises(ReportInputError) as exc:
                build_report(run)
            seen.append(str(exc.value))

    audit_run(run, config=AuditConfig(audits=tuple(DATA_AUDITS), pii_ner=False), device="cpu", stage=report_now)
    assert len(seen) == 1 and "audit/quality.json (synthetic changed)" in seen[0]
    assert "distance" not in seen[0] and "pii.json" not in seen[0]
    assert "generation.json (synthetic changed)" in seen[0]  # and the generation stats are not these rows'


def test_model_free_audit_into_a_trained_run_is_refused(run, capsys, demo_small_csv, tmp_path):
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    holdout = tmp_path / "holdout.csv"
    holdout.write_text("".join(demo_small_csv.read_text().splitlines(keepends=True)[:60]))
    args = ["audit", "--synthetic", run / "synthetic.csv", "--train", demo_small_csv, "--holdout", holdout,
            "--out", run, "--schema", DEMO_SCHEMA, "--no-ner"]
    for force in (["--force"], []):
        err = _one_line_refusal(*run_cli(capsys, *args, *force))
        assert "holds a trained run" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # a model-free directory can still be audited again with --force
    mf = tmp_path / "mf"
    args[args.index(run)] = mf
    for force in ([], ["--force"]):
        code, _, err = run_cli(capsys, *args, "-q", *force)
        assert code == 0, err
    assert _json(mf / "run.json")["input_digests"]["synthetic"] == _json(mf / "audit/pii.json")[
        "provenance"]["inputs"]["synthetic"]


def test_report_refuses_an_audit_file_without_provenance(tmp_path):
    from report_runs import dp_run, write_run

    run = write_run(tmp_path, dp_run())
    content = _json(run / "audit/mia.json")
    del content["provenance"]
    (run / "audit/mia.json").write_text(json.dumps(content))
    with pytest.raises(ReportInputError, match=r"stale audit/mia.json \(no provenance record\).*--only mia`$"):
        build_report(run)


def test_report_refuses_a_model_audit_of_another_model(tmp_path):
    from report_runs import dp_run, write_run

    run = write_run(tmp_path, dp_run())
    (run / "model" / "model.safetensors").write_bytes(b"other weights")
    with pytest.raises(ReportInputError) as exc:
        build_report(run)
    for rel in ("audit/exposure.json", "audit/mia.json", "audit/dp_audit.json"):
        assert f"{rel} (model changed)" in str(exc.value)
    assert "distance" not in str(exc.value)


def test_keyed_digest_frames_each_file_and_depends_on_the_salt(tmp_path):
    from reports.provenance import keyed_digest

    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"xy")
    b.write_bytes(b"z")
    mac = hmac.new(b"s", b"a\x002\x00xyb\x001\x00z", hashlib.sha256).hexdigest()
    assert keyed_digest([a, b], "s") == "hmac-sha256:" + mac
    a.write_bytes(b"x")
    b.write_bytes(b"yz")  # the same bytes in total, split differently
    assert keyed_digest([a, b], "s") != "hmac-sha256:" + mac
    assert keyed_digest([a, b], "s") != keyed_digest([a, b], "t")
    assert keyed_digest([], "s") is None
