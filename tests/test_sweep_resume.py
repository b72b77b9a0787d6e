"""A tiny 3-point sweep plus the no-DP baseline: killed mid-way, resumed, every point reported once.

One sweep (module fixture) serves every test here: it is started as
``python -m auditor sweep``, its main process is SIGKILLed once the first point
has its report and the second has started training, and the same command is
run again. The point processes of the killed sweep must exit by themselves.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

import chromium
from auditor.data import DEMO_SCHEMA
from auditor.dp.ledger import fact
from auditor.rundir import RunDir

POINTS = ["nm0.8", "nm1.5", "nm3", "nodp"]
CONFIG = {
    "grid": {"noise_multiplier": [0.8, 1.5, 3.0]},
    "no_dp_baseline": True,
    "train": {"model": "tiny", "epochs": 1, "batch_size": 48, "lr": 0.01, "seed": 3, "checkpoint_every": 2},
    "canaries": {"repetitions": [1, 4], "per_repetition": 2, "audit_canaries": 10, "format": "digits:3"},
    "generate": {"num_records": 40},
    "audit": {"pii_ner": False, "reference": False, "max_members": 60},
    "policy": "internal",
    "jobs": 1,
    "threads": 1,  # two OpenMP threads on two busy cores spin for each other (40x slower generation measured)
}


def _wait_for(predicate, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline and (proc is None or proc.poll() is None):
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead too
        return fh.read().split(")")[-1].split()[0] != "Z"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, demo_small_csv):
    root = tmp_path_factory.mktemp("sweep")
    config = root / "sweep.yaml"
    config.write_text(yaml.safe_dump({"data": str(demo_small_csv), "schema": str(DEMO_SCHEMA), **CONFIG}))
    out = root / "out"
    cmd = [sys.executable, "-m", "auditor", "sweep", "--config", str(config), "--out", str(out)]
    with open(root / "killed.log", "w") as log:
        proc = subprocess.Popen([*cmd, "--quiet"], stdout=log, stderr=subprocess.STDOUT)
        first = out / "runs" / "nm0.8" / "report.json"
        assert _wait_for(first.exists, 400, proc), (root / "killed.log").read_text()[-2000:]
        second = RunDir(out / "runs" / "nm1.5")
        _wait_for(lambda: second.checkpoint.exists() or second.privacy.exists(), 120, proc)
        proc.send_signal(signal.SIGKILL)  # the main process only: its point processes must notice
        proc.wait()
    before = {p: _snapshot(out / "runs" / p) for p in POINTS}
    sweep_json_before = (out / "sweep.json").exists()
    second_status = out / "status" / "nm1.5.json"
    status = json.loads(second_status.read_text()) if second_status.exists() else {}
    orphan_exited = status.get("pid") is None or _wait_for(lambda: not _alive(status["pid"]), 10)
    t0 = time.time()
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    return {"out": out, "before": before, "orphan_exited": orphan_exited, "resumed": resumed,
            "resume_seconds": time.time() - t0, "sweep_json_before": sweep_json_before}


def _snapshot(run):
    model = run / "model" / "model.safetensors"
    return {"report": (run / "report.json").exists(),
            "model_mtime": model.stat().st_mtime_ns if model.exists() else None,
            "privacy": (run / "model" / "privacy.json").read_text() if (run / "model" / "privacy.json").exists()
            else None}


def _status(out, point):
    return json.loads((out / "status" / f"{point}.json").read_text())


def test_it_was_killed_mid_way(sweep):
    before = sweep["before"]
    assert before["nm0.8"]["report"]
    assert not all(b["report"] for b in before.values())
    assert not sweep["sweep_json_before"]
    assert sweep["orphan_exited"], "a point process outlived the killed sweep"


def test_resume_finishes_every_point_with_a_report(sweep):
    out, res = sweep["out"], sweep["resumed"]
    assert res.returncode in (0, 1), res.stderr[-2000:]
    assert "4 of 4 finished" in res.stdout
    record = json.loads((out / "sweep.json").read_text())
    assert [p["id"] for p in record["points"]] == POINTS
    assert record["counts"] == {"total": 4, "done": 4, "failed": 0}
    for p in POINTS:
        report = json.loads((out / "runs" / p / "report.json").read_text())
        assert report["verdict"] in ("pass", "fail") and report["policy"]["name"] == "internal"
        assert _status(out, p)["state"] == "done"
    # exit code 1 exactly when no point passes the policy
    assert res.returncode == (1 if record["choice"]["id"] is None else 0)
    assert record["choice"]["text"] in res.stdout


def test_finished_points_were_not_trained_again(sweep):
    out, before = sweep["out"], sweep["before"]
    for p in POINTS:
        if not before[p]["report"]:
            continue
        after = _snapshot(out / "runs" / p)
        assert after["model_mtime"] == before[p]["model_mtime"]
        assert after["privacy"] == before[p]["privacy"]
        assert _status(out, p)["stages"]["train"]["attempts"] == 1
    # the point killed while training resumed from its checkpoint (or had finished training): one more start at most
    assert _status(out, "nm1.5")["stages"]["train"]["attempts"] <= 2
    for p in POINTS:
        assert _status(out, p)["stages"]["report"]["attempts"] >= 1


def test_points_share_split_canary_layout_and_seed(sweep):
    out = sweep["out"]

    def digest(p, name):
        return hashlib.sha256((out / "runs" / p / name).read_bytes()).hexdigest()

    def canaries(p):  # the layout the seed governs; secrets and audit coins are secret randomness of each run
        manifest = json.loads((out / "runs" / p / "canaries.json").read_text())
        return json.dumps([(c["id"], c["group"], c["field"], None if c["group"] == "audit" else c["repetitions"])
                           for c in manifest["canaries"]])

    assert len({digest(p, "split.json") for p in POINTS}) == 1
    assert len({canaries(p) for p in POINTS}) == 1
    seeds = {json.dumps(json.loads((out / "runs" / p / "run.json").read_text())["seeds"]) for p in POINTS}
    assert len(seeds) == 1
    privacy = {p: json.loads((out / "runs" / p / "model" / "privacy.json").read_text()) for p in POINTS}
    assert [privacy[p]["noise_multiplier"] for p in POINTS[:3]] == [0.8, 1.5, 3.0]
    assert privacy["nodp"]["dp"] is False
    # choosing among the points on the private data is outside the guarantee, and says so
    record = json.loads((out / "sweep.json").read_text())
    selection = fact("sweep_selection").sentence
    assert record["outside_guarantee"] == [selection]
    assert all(privacy[p]["outside_guarantee"].count(selection) == 1 for p in POINTS)
    assert "choosing a setting among the points" in (out / "sweep.html").read_text()


def test_progress_shows_points_and_stage(sweep):
    err = sweep["resumed"].stderr
    assert "sweep:" in err and "/4" in err
    assert any(f"{p}: " in err for p in POINTS[1:])  # the running point and its stage
    assert "Full backward hook" not in err


def test_record_rows_match_the_reports(sweep):
    out = sweep["out"]
    record = json.loads((out / "sweep.json").read_text())
    for row in record["points"]:
        report = json.loads((out / row["run_dir"] / "report.json").read_text())
        m = row["metrics"]
        assert m["epsilon"] == (report["privacy"]["epsilon"] if row["dp"] else None)
        assert m["max_exposure"] == report["canaries"]["max_exposure"]
        assert m["fidelity"] == report["quality"]["fidelity"]
        assert row["utility"] == report["quality"]["tstr"]["ratio"]
        assert row["seconds"] > 0
    eps = [r["metrics"]["epsilon"] for r in record["points"][:3]]
    assert eps[0] > eps[1] > eps[2]  # more noise, smaller ε
    assert set(record["frontier"]["epsilon"]) <= set(POINTS[:3])


@pytest.mark.skipif(chromium.find() is None, reason="no chromium (scripts/test.sh installs it)")
def test_html_renders_in_chromium(sweep, tmp_path):
    out = sweep["out"]
    record = json.loads((out / "sweep.json").read_text())
    shot = chromium.screenshot(out / "sweep.html", tmp_path / "sweep.png", height=2600)
    assert shot.console_errors == []
    assert chromium.non_blank(shot.png)
    verdict = f"CHOSEN: {record['choice']['id']}" if record["choice"]["id"] else "NO SETTING PASSES"
    assert f'id="verdict">{verdict}</span>' in shot.dom
    for p in POINTS:
        assert f"<code>{p}</code>" in shot.dom
    assert "MIA AUC" in shot.dom and "TPR at 1% FPR" in shot.dom
    assert shot.dom.count("data:image/png;base64,") == 4


def test_the_data_hash_is_keyed_with_the_sweeps_private_salt(sweep, demo_small_csv):
    from auditor.data import data_hash, load_records

    out = sweep["out"]
    salt = out / ".salt"
    assert salt.stat().st_mode & 0o777 == 0o600
    frame = load_records(demo_small_csv).frame
    recorded = json.loads((out / "sweep_config.json").read_text())["data_hash"]
    assert recorded == data_hash(frame, key=salt.read_text().strip()) != data_hash(frame)
