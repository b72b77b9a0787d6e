"""The sweep's config, grid, results record and failure records (no training here)."""

import json
import os

import pytest
from report_runs import dp_run, nodp_run, write_run

from auditor.commands.sweep import command as sweep_command
from auditor.commands.sweep import sweep_config
from auditor.data import DEMO_SCHEMA, data_hash, load_records
from auditor.errors import UserError
from auditor.sweep import point as point_mod
from auditor.config import load_yaml
from auditor.sweep.config import SweepConfig, default_jobs, parse_list, threads_per_job
from auditor.sweep.grid import expand, point_id
from auditor.sweep.results import build_record, choose, point_metrics
from cli_helpers import run_cli
from reports.build import build_report
from reports.policy import policy_from_mapping


def _config(**kw):
    return SweepConfig.from_dict({"data": "x.csv", **kw})


# ---------------------------------------------------------------------------- grid

def test_grid_is_the_product_then_the_baseline():
    cfg = _config(grid={"max_grad_norm": [1, 0.5], "noise_multiplier": [0.6, 2]}, no_dp_baseline=True,
                  train={"seed": 5, "epochs": 3})
    points = expand(cfg)
    # axes in AXES order (noise before clip), the first axis slowest
    assert [p.id for p in points] == ["nm0.6-C1", "nm0.6-C0.5", "nm2-C1", "nm2-C0.5", "nodp"]
    nm, base = points[1].config.train, points[-1].config.train
    assert (nm.noise_multiplier, nm.max_grad_norm, nm.epsilon, nm.dp) == (0.6, 0.5, None, True)
    assert (base.dp, base.epsilon, base.noise_multiplier) == (False, None, None)
    # every point shares the seed (hence split, canaries, sampling) and the other settings
    assert {p.config.train.seed for p in points} == {5}
    assert {p.config.train.epochs for p in points} == {3.0}
    assert points[0].config.canaries == points[-1].config.canaries


def test_baseline_keeps_the_axes_that_do_not_concern_dp():
    cfg = _config(grid={"epsilon": [1, 8], "epochs": [1, 2]}, no_dp_baseline=True)
    ids = [p.id for p in expand(cfg)]
    assert ids == ["eps1-ep1", "eps1-ep2", "eps8-ep1", "eps8-ep2", "nodp-ep1", "nodp-ep2"]
    assert expand(cfg)[0].config.train.noise_multiplier is None


def test_point_ids():
    assert point_id({"lr": 0.003, "model": "tiny", "batch_size": 64}, dp=True) == "bs64-lr0.003-tiny"
    assert point_id({}, dp=False) == "nodp"
    assert point_id({}, dp=True) == "default"


@pytest.mark.parametrize("grid, message", [
    ({"epsilon": [1], "noise_multiplier": [1]}, "not both"),
    ({"temperature": [1]}, "unknown grid axis"),
    ({"epsilon": []}, "no values"),
    ({"batch_size": [32.5]}, "int values"),
    ({"max_grad_norm": [1, 1.0]}, "repeats"),
])
def test_bad_grids(grid, message):
    with pytest.raises(UserError, match=message):
        _config(grid=grid)


def test_parse_list_and_jobs():
    assert parse_list("0.6, 1,2.0", "noise_multiplier") == (0.6, 1.0, 2.0)
    assert parse_list("tiny,small", "model") == ("tiny", "small")
    assert default_jobs(7, cores=2) == 1 and default_jobs(7, cores=16) == 7 and default_jobs(3, cores=16) == 3
    assert threads_per_job(1, cores=2) == 2 and threads_per_job(2, cores=2) == 1 and threads_per_job(4, cores=2) == 1


# ---------------------------------------------------------------------------- YAML and flags

def test_yaml_paths_resolve_beside_the_file_and_flags_win(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("data: d.csv\nschema: s.yaml\ngrid: {noise_multiplier: [1.0]}\n"
                    "train: {model: tiny, noise_multiplier: 2.0}\ngenerate: {num_records: 50}\npolicy: internal\n")
    d = load_yaml(path)
    assert d["data"] == str(tmp_path / "d.csv") and d["schema"] == str(tmp_path / "s.yaml")
    ctx = sweep_command.make_context("sweep", ["--out", str(tmp_path / "out"), "--config", str(path),
                                               "--max-grad-norm", "0.5,1", "-n", "20", "--seed", "9", "--no-ner",
                                               "--canary-repetitions", "1,4", "--scrub-pii", "replayed"])
    cfg = sweep_config(ctx, None, ctx.params)
    assert cfg.grid == {"noise_multiplier": (1.0,), "max_grad_norm": (0.5, 1.0)}
    assert cfg.generate.num_records == 20 and cfg.train.seed == 9 and cfg.audit.pii_ner is False
    assert cfg.generate.scrub_pii == "replayed"
    assert cfg.canaries.repetitions == (1, 4) and cfg.policy.name == "internal"
    # a fixed noise multiplier in train replaces the default target epsilon
    assert cfg.train.epsilon is None and cfg.train.noise_multiplier == 2.0
    assert SweepConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_unknown_yaml_keys_are_refused():
    with pytest.raises(UserError, match="unknown key"):
        _config(grids={})
    with pytest.raises(UserError, match="unknown train key"):
        _config(train={"epoch": 3})
    with pytest.raises(UserError, match="no input data"):
        SweepConfig.from_dict({})


@pytest.mark.parametrize("args, message", [
    (["--epsilon", "1", "--noise-multiplier", "2"], "not both"),
    (["--model", "huge"], "not a size preset"),
    (["--policy", "nosuch"], "unknown policy"),
    (["--batch-size", "5000"], "needs more records"),
    (["--noise-multiplier", "x"], "needs float values"),
    (["--temperature", "0"], "'--temperature': must be a finite number in (0, 100]"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, demo_small_csv, capsys, args, message):
    out = tmp_path / "sweep"
    code, _, err = run_cli(capsys, "sweep", demo_small_csv, "--out", out, "--schema", DEMO_SCHEMA, *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_a_sweep_dir_with_other_shared_settings_is_refused(tmp_path, demo_small_csv, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    saved = _config(data=str(demo_small_csv.resolve()), train={"seed": 1, "epochs": 3})
    (out / "sweep_config.json").write_text(json.dumps({"config": saved.to_dict(), "data_hash": "x"}))
    code, _, err = run_cli(capsys, "sweep", demo_small_csv, "--out", out, "--seed", "1")
    assert code == 2 and "differs in" in err and "train.epochs" in err
    assert sorted(p.name for p in out.iterdir()) == ["sweep_config.json"]


# ---------------------------------------------------------------------------- results

def _record(tmp_path, files, name, policy):
    return build_report(write_run(tmp_path / name, files), policy=policy)


def test_point_metrics_copy_the_report(tmp_path):
    m = point_metrics(_record(tmp_path, dp_run(), "dp", None))
    assert (m["dp"], m["epsilon"], m["validity"], m["fidelity"], m["tstr_ratio"]) == (True, 7.93, 0.967, 0.874,
                                                                                      0.871)
    # strongest record-level attack: reference signal 0.531 beats loss 0.512 and the distance attack 0.508
    assert m["mia_auc"] == 0.531 and m["mia_tpr_at_1pct_fpr"] == 0.017
    assert (m["max_exposure"], m["epsilon_lower_bound"], m["replayed_pii"]) == (3.71, 0.41, 3)
    nodp = point_metrics(_record(tmp_path, nodp_run(), "nodp", None))
    assert nodp["epsilon"] is None and nodp["mia_auc"] == 0.78 and nodp["replayed_pii"] == 26


def _row(pid, metrics, *, dp=True, state="done", error=None):
    return {"id": pid, "settings": {}, "dp": dp, "state": state, "run_dir": f"runs/{pid}", "error": error,
            "seconds": 10.0, "metrics": metrics}


def test_record_frontiers_and_choice(tmp_path):
    policy = policy_from_mapping({"max_epsilon": 10, "max_mia_auc": 0.6}, name="t")
    dp = point_metrics(_record(tmp_path, dp_run(), "dp", policy))  # eps 7.93, AUC .531, TSTR .871: passes
    low = dict(dp, epsilon=2.0, tstr_ratio=0.5, mia_auc=0.52)  # more private, less useful: passes too
    nodp = point_metrics(_record(tmp_path, nodp_run(), "nodp", policy))  # TSTR .871, AUC .78: fails
    died = {"type": "WorkerDied", "message": "the point's process ended (killed by signal 9)", "stage": "train"}
    rows = [_row("a", dp), _row("b", low), _row("c", nodp, dp=False), _row("d", None, state="failed", error=died)]
    rec = build_record(rows=rows, config={"k": 1}, policy=policy.to_dict(), utility="tstr", wall_seconds=3.0)
    assert rec["frontier"] == {"epsilon": ["b", "a"], "attack": ["b", "a"]}  # c: as useful as a, larger AUC
    assert rec["choice"]["id"] == "a"
    assert rec["choice"]["text"].startswith("a: the best utility (0.871, ε = 7.93) among the 2 point(s) of 4")
    assert rec["choice"]["blockers"] == {
        "c": ["max_epsilon: n/a (trained without DP: no guarantee)", "max_mia_auc = 0.78 (limit <= 0.6)"],
        "d": ["point did not finish: WorkerDied the point's process ended (killed by signal 9)"]}
    assert rec["counts"] == {"total": 4, "done": 3, "failed": 1}
    assert rec["time"] == {"wall_seconds": 3.0, "point_seconds": 40.0}
    by_fidelity = build_record(rows=rows, config={}, policy=None, utility="fidelity", wall_seconds=1.0)
    assert [r["utility"] for r in by_fidelity["points"]] == [0.874, 0.874, 0.874, None]
    assert by_fidelity["choice"]["id"] is None and "--policy" in by_fidelity["choice"]["text"]


def test_no_point_passes():
    failing = {"epsilon": 9.0, "tstr_ratio": 0.9, "verdict": "fail", "mia_auc": 0.7,
               "failing_checks": [{"name": "max_epsilon", "value": 9.0, "op": "<=", "threshold": 3.0, "note": None}]}
    rows = [dict(_row("a", failing), utility=0.9)]
    choice = choose(rows, [9.0], {"name": "external"})
    assert choice == {"id": None, "text": "No point passes policy external.",
                      "blockers": {"a": ["max_epsilon = 9 (limit <= 3)"]}}


# ---------------------------------------------------------------------------- failures

def test_failure_records_type_and_place_never_the_text():
    def tstr():
        raise ValueError("could not convert 'Quentin Abernathy-Vole 555-013-7788'")

    try:
        tstr()
    except ValueError as exc:
        f = point_mod.failure(exc, "audit")
    assert f["type"] == "ValueError" and f["stage"] == "audit"
    assert f["message"].startswith("raised at ") and "in tstr" in f["message"]
    assert "Quentin" not in json.dumps(f) and "555" not in json.dumps(f)
    user = point_mod.failure(UserError("demo.csv: the data changed\n since training"), "train")
    assert user["message"] == "demo.csv: the data changed since training"


def test_a_failing_point_is_recorded(tmp_path):
    job = point_mod.PointJob(id="p", run_dir=str(tmp_path / "runs" / "p"), status_path=str(tmp_path / "p.json"),
                             data=str(tmp_path / "missing.csv"),
                             config=expand(_config(generate={"num_records": 5}))[0].config.to_dict(), threads=1)
    seen = []
    status = point_mod.run_stages(job, seen.append)
    assert status["state"] == "failed" and status["error"]["stage"] == "train"
    assert status["stages"]["train"]["attempts"] == 1 and not status["stages"]["train"]["done"]
    assert seen == ["train"]
    assert point_mod.read_status(job.status_path) == status


def test_a_dead_worker_is_recorded(tmp_path):
    from auditor.sweep.runner import _final_status

    job = point_mod.PointJob(id="p", run_dir=str(tmp_path), status_path=str(tmp_path / "p.json"), data="",
                             config={}, threads=1)
    status = point_mod.new_status("p")
    status.update(state="running", stage="audit")
    point_mod.write_status(job.status_path, status)
    final = _final_status(job, -9)
    assert final["state"] == "failed" and final["error"]["type"] == "WorkerDied"
    assert "signal 9" in final["error"]["message"] and final["error"]["stage"] == "audit"
    assert os.path.exists(job.status_path)


def test_a_reused_run_must_have_the_points_settings(tmp_path, demo_small_csv, capsys):
    out = tmp_path / "sweep"
    cfg = _config(data=str(demo_small_csv.resolve()), grid={"noise_multiplier": [1.0]}, train={"seed": 1})
    (out / "runs" / "nm1").mkdir(parents=True)
    digest = data_hash(load_records(demo_small_csv).frame)
    (out / "sweep_config.json").write_text(json.dumps({"config": cfg.to_dict(), "data_hash": digest}))
    other = expand(cfg)[0].config.to_dict()
    # lr, left to the fitted defaults (None), would match whatever they gave; a set setting must match
    other["train"]["max_grad_norm"] = 0.5
    (out / "runs" / "nm1" / "run.json").write_text(json.dumps({"config": other}))
    code, _, err = run_cli(capsys, "sweep", demo_small_csv, "--out", out, "--seed", "1", "--noise-multiplier", "1")
    assert code == 2 and "trained with other settings than point nm1" in err and "train.max_grad_norm" in err


def test_a_second_sweep_in_the_same_directory_is_refused(tmp_path, demo_small_csv, capsys):
    import fcntl

    out = tmp_path / "sweep"
    out.mkdir()
    with open(out / ".sweep.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _, err = run_cli(capsys, "sweep", demo_small_csv, "--out", out, "--seed", "1")
    assert code == 2 and "another sweep is running" in err
    assert [p.name for p in out.iterdir()] == [".sweep.lock"]


def test_html_names_the_choice_and_the_failed_points(tmp_path):
    from auditor.sweep.html import render_html

    policy = policy_from_mapping({"max_epsilon": 10, "max_mia_auc": 0.6}, name="t")
    dp = point_metrics(_record(tmp_path, dp_run(), "dp", policy))
    died = {"type": "WorkerDied", "message": "the point's process ended (killed by signal 9)", "stage": "train"}
    rows = [dict(_row("nm1-C1", dp), settings={"noise_multiplier": 1.0, "max_grad_norm": 1.0}),
            dict(_row("nm1-C2", dp), settings={"noise_multiplier": 1.0, "max_grad_norm": 2.0}),
            _row("nm3-C1", None, state="failed", error=died)]
    page = render_html(build_record(rows=rows, config={"train": {"seed": 4}}, policy=policy.to_dict(),
                                    utility="tstr", wall_seconds=2.0))
    assert 'id="verdict">CHOSEN: nm1-C1</span>' in page
    assert "1 point(s) did not finish" in page and "WorkerDied in train" in page
    assert page.count("data:image/png;base64,") == 4 and "<script" not in page
    page = render_html(build_record(rows=rows, config={"train": {"seed": 4}}, policy=None, utility="tstr",
                                    wall_seconds=2.0))
    assert 'id="verdict">NO POLICY</span>' in page


def test_equal_points_share_a_plot_label():
    from auditor.sweep.plots import _label_clusters

    # x spans 4 and y spans 1, so points within 0.06 and 0.015 of a cluster's first point join it
    pts = [(1.0, 1.0, "a"), (1.05, 1.01, "b"), (1.1, 1.0, "c"), (5.0, 2.0, "d")]
    assert _label_clusters(pts) == [((1.0, 1.0), ["a", "b"]), ((1.1, 1.0), ["c"]), ((5.0, 2.0), ["d"])]
    assert _label_clusters([]) == []


def test_a_sweep_started_with_a_plain_data_hash_resumes_keyed(tmp_path, demo_small_csv):
    """Sweeps before the salt stored a plain SHA-256: it is still checked, then replaced by an HMAC."""
    from auditor.sweep.runner import prepare

    out = tmp_path / "sweep"
    out.mkdir()
    cfg = _config(data=str(demo_small_csv.resolve()), grid={"noise_multiplier": [1.0]}, train={"seed": 1})
    frame = load_records(demo_small_csv).frame
    (out / "sweep_config.json").write_text(json.dumps({"config": cfg.to_dict(), "data_hash": data_hash(frame)}))
    prep = prepare(cfg, out)
    assert prep.data_hash == data_hash(frame, key=prep.salt) != data_hash(frame)
    (out / "sweep_config.json").write_text(json.dumps({"config": cfg.to_dict(), "data_hash": "0" * 64}))
    with pytest.raises(UserError, match="the data changed since this sweep started"):
        prepare(cfg, out)


def test_a_misspelled_audit_name_is_refused_before_any_training(tmp_path, demo_small_csv, capsys):
    import yaml

    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"data": str(demo_small_csv), "schema": str(DEMO_SCHEMA),
                                      "grid": {"noise_multiplier": [1.0]}, "train": {"seed": 1},
                                      "audit": {"audits": ["distance", "pii_typo"]}}))
    out = tmp_path / "sweep"
    code, _, err = run_cli(capsys, "sweep", "--config", config, "--out", out)
    assert code == 2 and "unknown audit(s): pii_typo" in err and err.count("\n") == 1
    assert not out.exists()
