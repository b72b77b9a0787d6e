"""`auditor release`: an allow-listed, public bundle, refused when anything private is in it."""

import csv
import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from cli_helpers import run_cli
from report_runs import dp_run, write_run

from auditor.data import DEMO_SCHEMA
from auditor.release import gather, scan_bundle
from auditor.release.leaks import SALTED_HASH
from auditor.release.matcher import SecretMatcher
from auditor.release.traces import PrivateTraces, logged_losses, run_seeds
from auditor.rundir import RunDir
from canaries.manifest import Canary, Manifest
from reports.html import render_html
from reports.markdown import render_markdown
from reports.public import public_record

SEED = 918273645  # long enough to be told from other numbers in the report
PUBLIC = {"synthetic.csv", "report.json", "report.html", "report.md"}
PUBLIC_MODEL = {"model/model.safetensors", "model/config.json", "model/codec.json", "model/privacy.json"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, demo_small_csv):
    """One tiny DP run (train, generate, report) whose audit files are report_runs' hand-made ones."""
    from auditor.cli import main

    run = tmp_path_factory.mktemp("release") / "run"
    for args in (["train", demo_small_csv, "--out", run, "--schema", DEMO_SCHEMA, "--model", "tiny", "--epochs", "1",
                  "--batch-size", "32", "--seed", SEED, "--canary-repetitions", "1,2", "--audit-canaries", "4",
                  "--checkpoint-every", "2", "--keep-checkpoints", "--keep-train-log", "--quiet"],
                 ["generate", run, "-n", "40", "--quiet"]):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        assert exc.value.code == 0
    audits = {rel: data for rel, data in dp_run().items() if rel.startswith("audit/")}
    audits["audit/distance.json"]["examples"] = [{"dcr_train": 0.12, "dcr_holdout": 0.41, "row": {"name": "Q*** A***"}}]
    write_run(run, audits)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run), "--quiet"])
    assert exc.value.code == 0
    return run


@pytest.fixture(scope="module")
def traces(tiny_run):
    return gather(RunDir(tiny_run), ner=False)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_clean_run_releases_exactly_the_public_files(tmp_path, capsys, tiny_run):
    out = tmp_path / "bundle"
    code, stdout, err = run_cli(capsys, "release", tiny_run, "--out", out, "--no-ner")
    assert code == 0, stdout + err
    assert _files(out) == PUBLIC
    assert {oct(p.stat().st_mode & 0o777) for p in out.rglob("*")} == {"0o644"}
    assert (out / "synthetic.csv").read_bytes() == (tiny_run / "synthetic.csv").read_bytes()
    record = json.loads((out / "report.json").read_text())
    assert record["release"]["form"] == "public"
    assert "seeds" not in record["reproducibility"] and "data_hash" not in record["reproducibility"]
    # the run's own report has the (non-DP) seed in its config
    assert json.loads((tiny_run / "report.json").read_text())["reproducibility"]["config"]["train"]["seed"] == SEED
    assert record["pii"]["examples"] == record["distance"]["examples"] == []
    assert all("hash" not in c for c in record["canaries"]["canaries"])
    assert _leftovers(out) == []


def test_with_model_bundles_weights_config_codec_privacy_only(tmp_path, capsys, tiny_run):
    assert RunDir(tiny_run).checkpoint.is_file()  # what must stay behind exists (kept on request)
    assert RunDir(tiny_run).train_log.is_file()
    out = tmp_path / "bundle"
    code, stdout, err = run_cli(capsys, "release", tiny_run, "--out", out, "--with-model", "--no-ner")
    assert code == 0, stdout + err
    assert _files(out) == PUBLIC | PUBLIC_MODEL
    from auditor.model import load_model

    assert load_model(out / "model") is not None  # the bundled model loads without anything else


def _plant(run: Path, *, policy_name: str, synthetic_row: dict | None = None) -> None:
    report = json.loads((run / "report.json").read_text())
    report["policy"] = {"name": policy_name, "thresholds": {}}
    (run / "report.json").write_text(json.dumps(report))
    if synthetic_row is not None:
        with open(run / "synthetic.csv", "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=list(synthetic_row)).writerow(synthetic_row)


def _training_email(data: Path) -> str:
    with open(data, newline="", encoding="utf-8") as fh:
        return next(csv.DictReader(fh))["email"]


def test_release_refuses_planted_canary_seed_and_email(tmp_path, capsys, tiny_run, demo_small_csv):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    canary = next(c for c in Manifest.load(run / "canaries.json").canaries if c.inserted)
    email = _training_email(demo_small_csv)
    with open(run / "synthetic.csv", newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    row[canary.field] = f"{canary.context}{canary.secret}"
    _plant(run, policy_name=f"internal {canary.secret} {email} {SEED}", synthetic_row=row)
    out = tmp_path / "bundle"
    code, stdout, err = run_cli(capsys, "release", run, "--out", out, "--no-ner")
    assert code == 1
    lines = stdout.splitlines()
    assert all(line.startswith("leak: ") for line in lines)
    for detector, path in [("canary_secret", "report.md"), ("canary_secret", "synthetic.csv"),
                           ("seed", "report.json"), ("training_pii", "report.html")]:
        assert any(line.startswith(f"leak: {path}: ") and line.endswith(f"[{detector}]") for line in lines), detector
    assert canary.secret not in stdout + err and email not in stdout + err and str(SEED) not in stdout + err
    assert not out.exists() and _leftovers(out) == []


@pytest.mark.parametrize("plant", ["canary", "email", "seed"])
def test_each_planted_secret_alone_is_refused(tmp_path, tiny_run, traces, demo_small_csv, plant):
    from auditor.release import release

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    value = {"canary": next(c.secret for c in traces.canaries), "email": _training_email(demo_small_csv),
             "seed": str(SEED)}[plant]
    _plant(run, policy_name=f"internal {value}")
    out = tmp_path / "bundle"
    result = release(run, out, traces=traces)
    detector = {"canary": "canary_secret", "email": "training_pii", "seed": "seed"}[plant]
    assert {f.detector for f in result.findings} == {detector}
    assert {f.path for f in result.findings} == {"report.json", "report.html", "report.md"}
    assert not out.exists() and _leftovers(out) == []


def test_mode_0666_file_is_flagged(tmp_path, tiny_run, traces):
    from auditor.release import release

    out = tmp_path / "bundle"
    assert release(tiny_run, out, traces=traces).ok
    assert scan_bundle(out, traces) == []
    os.chmod(out / "report.md", 0o666)
    assert [(f.detector, f.path) for f in scan_bundle(out, traces)] == [("file_mode", "report.md")]


def test_bad_out_is_refused_and_nothing_is_written(tmp_path, capsys, tiny_run):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (tiny_run, tiny_run / "bundle", tiny_run / "model", full, afile):
        before = _files(tiny_run)
        code, stdout, err = run_cli(capsys, "release", tiny_run, "--out", out, "--no-ner")
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, out
        assert _files(tiny_run) == before and _files(full) == {"x"}


def test_an_error_midway_leaves_nothing_behind(tmp_path, monkeypatch, tiny_run, traces):
    import auditor.release.bundle as bundle

    def broken_scan(root, traces):
        assert _files(Path(root)) == PUBLIC  # the bundle was complete in its temporary folder
        raise OSError("disk full")

    monkeypatch.setattr(bundle, "scan_bundle", broken_scan)
    out = tmp_path / "bundle"
    with pytest.raises(OSError, match="disk full"):
        bundle.release(tiny_run, out, traces=traces)
    assert not out.exists() and _leftovers(out) == []


@pytest.mark.parametrize("damage", ["no report", "bad report", "no synthetic data"])
def test_incomplete_run_is_refused(tmp_path, capsys, tiny_run, damage):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    if damage == "no report":
        (run / "report.json").unlink()
    elif damage == "bad report":
        (run / "report.json").write_text("{not json")
    else:
        (run / "synthetic.csv").unlink()
    code, _, err = run_cli(capsys, "release", run, "--out", tmp_path / "bundle", "--no-ner")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "bundle").exists() and _leftovers(tmp_path / "bundle") == []


# ---------------------------------------------------------------------------- detectors on hand-made bundles

def _bundle(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(0o644)
    return root


def _found(root: Path, traces: PrivateTraces) -> set[tuple[str, str]]:
    return {(f.detector, f.path) for f in scan_bundle(root, traces)}


def test_exact_loss_is_found_at_six_digits_not_five(tmp_path):
    traces = PrivateTraces(losses={"model/train_log.json [0].loss": 3.382485284})
    root = _bundle(tmp_path, {"a.md": "loss 3.38249 here", "b.md": "loss 3.3825 here", "c.json": '{"x": 3.382485284}'})
    assert _found(root, traces) == {("exact_loss", "a.md"), ("exact_loss", "c.json")}


def test_seed_keys_values_hashes_and_pickles_are_found(tmp_path):
    digest = "999efccfe330020950e670586ee69b6b3ea470443d1b4da0de57008671f942c2"
    traces = PrivateTraces(seeds={"run.json seeds.run": 5, "run.json seeds.noise": 712345678},
                           hashes={"run.json data_hmac": "hmac-sha256:" + digest})
    header = json.dumps({"__metadata__": {"format": "pt", "rng_state": "x"}}).encode()
    root = _bundle(tmp_path, {
        "a.json": '{"config": {"gen_seed": 1}}', "b.md": "noise 712345678", "c.md": "seed = 5",
        "d.html": f"<code>{digest[:16]}</code>", "e.md": "epochs 5, seed-free", "state.pkl": b"\x80\x04K\x05.",
        "model/model.safetensors": struct.pack("<Q", len(header)) + header,
        "f.md": "h:0a1b2c3d4e5f", "model/checkpoint/x.txt": "",
    })
    assert _found(root, traces) == {
        ("seed", "a.json"), ("seed", "b.md"), ("seed", "c.md"), ("private_hash", "d.html"),
        ("rng_state", "state.pkl"), ("rng_state", "model/model.safetensors"), ("salted_hash", "f.md"),
        ("private_file", "model/checkpoint")}


def test_secrets_match_across_separators_but_not_inside_runs_or_across_texts():
    matcher = SecretMatcher([("ssn", "481-29-5531"), ("pin", "Ann Lee PIN 4081")])
    assert matcher.found(["481 29 5531"]) == {"ssn"} and matcher.found(["ANN LEE, pin: 4081"]) == {"pin"}
    assert matcher.found(["1481295531", "481-29-55310"]) == set()
    assert matcher.found(["0.481, 29", "5531"]) == set()  # a match never spans two texts
    with pytest.raises(ValueError, match="fewer than 6"):
        SecretMatcher([("short", "4081")])


def test_short_canary_secrets_are_found_with_their_context(tmp_path):
    canary = Canary(id="c0001", group="schedule", format="digits:4", secret="4081", repetitions=1, field="note",
                    context="Ann Lee PIN ", record={"note": "Ann Lee PIN 4081", "age": "40"})
    traces = PrivateTraces(canaries=(canary,))
    root = _bundle(tmp_path, {"a.md": "note: Ann Lee PIN 4081", "b.md": "e^eps = 4081, 0.4081", "c.json": '{"n": 4081}'})
    assert _found(root, traces) == {("canary_secret", "a.md")}


def test_run_seeds_and_logs_are_read_wherever_they_are(tmp_path):
    assert run_seeds({"seeds": {"run": 5, "split": [1, 2]}, "config": {"train": {"seed": 9, "lr": 3}}}) == {
        "run.json seeds.run": 5, "run.json seeds.split[0]": 1, "run.json seeds.split[1]": 2,
        "run.json config.train.seed": 9}
    (tmp_path / ".private").mkdir()
    (tmp_path / ".private" / "train_log.jsonl").write_text('{"step": 0, "loss": 2.5}\n{"step": 1, "loss": 2.25}\n')
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "train_log.json").write_text('[{"step": 0, "loss": 3.0}]')
    assert logged_losses(tmp_path) == {".private/train_log.jsonl [0].loss": 2.5, ".private/train_log.jsonl [1].loss": 2.25,
                                       "model/train_log.json [0].loss": 3.0}


def test_public_record_drops_private_keys_and_still_renders(tmp_path):
    from reports.build import build_report

    record = build_report(write_run(tmp_path, dp_run()))
    public = public_record(record)
    text = json.dumps(public)
    assert "seed" not in json.dumps({k: v for k, v in public.items() if k != "release"})
    assert "sha256:1f2e3d" not in text and not SALTED_HASH.search(text) and "Q*** A***" not in text
    assert "pii.examples" in public["release"]["removed"]
    assert "hmac-sha256:" in json.dumps(record) and "hmac-sha256:" not in text  # keyed provenance digests
    assert "canaries.provenance" in public["release"]["removed"]
    # the owner's record itself never holds the seeds, the data hash or the config hash (reports.record)
    assert {"seeds", "data_hash", "config_hash"}.isdisjoint(record["reproducibility"])
    assert public["canaries"]["max_exposure"] == record["canaries"]["max_exposure"]
    assert SALTED_HASH.search(json.dumps(record))  # the owner's record has them
    assert not SALTED_HASH.search(render_html(public)) and not SALTED_HASH.search(render_markdown(public))
    assert record["pii"]["examples"]  # the input record is unchanged
