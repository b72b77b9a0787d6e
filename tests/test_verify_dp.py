"""`auditor verify-dp`: white-box gradient canaries through the real training path.

Every planted bug of auditor/dp/_faults.py must push the 95% lower bound above a claimed
epsilon of 4 (tiny preset); the correct code, on both clipping engines and with two gloo
processes, must stay below it.
"""

import json

import pytest
import torch
from torch import nn

from auditor.dp import _faults
from auditor.dp.accounting import noise_for_epsilon
from auditor.dp.bookkeeping import BookKeepingClipper
from auditor.dp.gradient_canaries import GradientCanaries
from auditor.dp.verify import Claim, Trial, claim_from_run, verify
from reports.build import build_report
from reports.policy import policy_from_mapping
from tests.cli_helpers import run_cli

Q, STEPS, DELTA = 0.1, 20, 1e-5
CLAIM = Claim(noise_multiplier=noise_for_epsilon(target_epsilon=4.0, delta=DELTA, sample_rate=Q, steps=STEPS),
              sample_rate=Q, steps=STEPS, delta=DELTA)


def _check(monkeypatch, fault=None, **trial):
    if fault is not None:
        monkeypatch.setenv(_faults.ENV, fault)
    settings = dict(model="tiny", records=100, steps=STEPS, physical_batch_size=64, inserted=500, held_out=500, seed=0)
    return verify(CLAIM, Trial(**(settings | trial)))


@pytest.mark.parametrize("fault", [f for f in _faults.FAULTS if f != "rank-skips-noise"])
def test_planted_bug_is_caught(monkeypatch, fault):
    result = _check(monkeypatch, fault)
    assert result["engine"] == "bookkeeping"
    assert result["violation"], result["message"]
    assert result["epsilon_lower_bound"] > result["claimed_epsilon"] == pytest.approx(4.0, abs=0.01)
    assert result["message"].startswith("VIOLATION")


def test_rank_skipping_noise_is_caught(monkeypatch):
    result = _check(monkeypatch, "rank-skips-noise", processes=2)
    assert result["processes"] == 2 and result["violation"]


@pytest.mark.parametrize("clipping,engine", [("bookkeeping", "bookkeeping"), ("opacus", "opacus-hooks")])
def test_correct_engines_pass(monkeypatch, clipping, engine):
    result = _check(monkeypatch, clipping=clipping)
    assert result["engine"] == engine and result["processes"] == 1
    assert not result["violation"]
    # the bound is not vacuous: at least half the claim (docs/verify-dp.md measures the ratio)
    assert 0.5 * result["claimed_epsilon"] < result["epsilon_lower_bound"] <= result["claimed_epsilon"]
    assert result["epsilon_lower_bound"] < result["epsilon_estimate"]
    assert result["sample_rate"]["run"] == Q and result["steps"] == {"claimed": STEPS, "run": STEPS}


def test_two_gloo_processes_pass(monkeypatch):
    result = _check(monkeypatch, processes=2)
    assert result["processes"] == 2 and not result["violation"]
    assert 0.5 * result["claimed_epsilon"] < result["epsilon_lower_bound"]


def test_fewer_steps_are_composed_to_the_claimed_ones(monkeypatch):
    result = _check(monkeypatch, steps=10)
    assert result["steps"] == {"claimed": STEPS, "run": 10}
    assert "ran 10 of the claimed 20 steps" in result["message"]
    assert 0.4 * result["claimed_epsilon"] < result["epsilon_lower_bound"] <= result["claimed_epsilon"]


def test_injected_rows_are_clipped_with_the_batch():
    """Book-keeping clips injected per-sample gradients by the same rule as the batch's."""
    torch.manual_seed(0)
    layer = nn.Linear(3, 2, bias=False)
    x = torch.randn(2, 3)
    clipper = BookKeepingClipper(layer, max_grad_norm=1.0, loss_reduction="sum")
    layer(x).sum().backward()
    canaries = GradientCanaries(inserted=1, held_out=1, support=4, norm_ratio=10.0)
    canaries.attach([layer.weight], max_grad_norm=1.0, expected_batch_size=2)
    canaries.take([2], n_records=2, rank=0, world=1)
    canaries.inject(clipper)
    total = clipper.clipped_sum()[layer.weight]
    clipper.remove()
    # per-sample gradients of sum(W x_i) wrt W: ones(2) outer x_i, clipped to norm 1
    expected = sum(g * min(1.0, 1.0 / (float(g.norm()) + 1e-6)) for g in (torch.ones(2, 1) * x[i] for i in range(2)))
    direction = torch.zeros(6).index_add_(0, canaries._coords[0], canaries._values[0]).view(2, 3)
    assert float(direction.norm()) == pytest.approx(1.0)
    expected = expected + direction * 10.0 / (10.0 + 1e-6)
    assert torch.allclose(total, expected, atol=1e-6)


def test_cli_writes_the_record_and_the_report_gates_on_it(tmp_path, capsys):
    out = tmp_path / "check"
    code, stdout, stderr = run_cli(capsys, "verify-dp", "--model", "tiny", "--noise-multiplier", "1", "--records", "100", "--batch-size", "10", "--steps", "20",
                "--canaries", "300", "--seed", "1", "--out", str(out), "-q")
    assert code == 0, stderr[-2000:]
    assert stdout.startswith("passed: epsilon lower bound")
    record = json.loads((out / "audit" / "dp_verify.json").read_text())
    assert record["violation"] is False and record["confidence"] == 0.95
    assert record["canaries"]["inserted"] == 300 and record["steps"]["claimed"] == 20
    assert record["data"].startswith("public stand-in")
    gate = policy_from_mapping({"require_dp_verified": True}, name="gate")
    report = build_report(out, policy=gate)
    assert report["verdict"] == "pass" and report["checks"][0]["value"] == 1.0
    assert report["dp_verify"] == record
    record["violation"] = True
    (out / "audit" / "dp_verify.json").write_text(json.dumps(record))
    assert build_report(out, policy=gate)["verdict"] == "fail"


def test_policy_requires_a_check_that_ran(tmp_path):
    from report_runs import write_run

    write_run(tmp_path, {"audit/distance.json": {  # with its provenance record, as the audit writes it
        "dcr_train_share": 0.5, "dcr_train_share_ci": [0.4, 0.6], "exact_copy_rate": 0.0, "exact_copies": 0,
        "dcr_hist": {}}})
    report = build_report(tmp_path, policy=policy_from_mapping({"require_dp_verified": True}, name="gate"))
    assert report["verdict"] == "fail"
    assert report["checks"][0]["note"] == "auditor verify-dp did not run (audit/dp_verify.json absent)"
    assert policy_from_mapping({"require_dp_verified": False, "max_epsilon": 8}, name="g").thresholds == {"max_epsilon": 8}


@pytest.mark.parametrize("args,message", [
    (["--records", "100", "--batch-size", "100"], "--batch-size 100 needs more records than the 100 available"),
    (["--records", "100", "--batch-size", "10", "--epsilon", "4", "--noise-multiplier", "1"], "not both"),
    (["--records", "100", "--batch-size", "10", "--model", "gpt2"], "verify-dp runs size presets"),
    (["--records", "100", "--batch-size", "10", "--noise-multiplier", "1", "--steps", "5", "--run-steps", "6"], "--run-steps must be in [1, 5]"),
    ([], "give a RUN directory"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    code, _, stderr = run_cli(capsys, "verify-dp", *args, "--out", tmp_path / "out")
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def _fake_run(root, **privacy):
    """The files `auditor train` writes that verify-dp reads (run.json, model/privacy.json)."""
    (root / "model").mkdir(parents=True)
    (root / "run.json").write_text(json.dumps({"config": {"train": {"model": "tiny", "physical_batch_size": 32,
                                                                     "lr": 0.01}}}))
    base = {"dp": True, "noise_multiplier": 1.1, "sample_rate": 0.05, "steps": 80, "delta": 1e-5,
            "delta_accountant": 9e-6, "max_grad_norm": 0.5, "n_records": 640, "clipping": "opacus-hooks",
            "world_size": 1, "epsilon": 3.5}
    (root / "model" / "privacy.json").write_text(json.dumps(base | privacy))
    return root


def test_claim_from_run_reads_the_recorded_mechanism(tmp_path):
    claim, settings = claim_from_run(_fake_run(tmp_path / "run"))
    assert claim == Claim(noise_multiplier=1.1, sample_rate=0.05, steps=80, delta=9e-6, max_grad_norm=0.5)
    assert settings == {"model": "tiny", "clipping": "opacus", "processes": 1, "physical_batch_size": 32, "lr": 0.01,
                        "records": 640, "run_epsilon": 3.5}


@pytest.mark.parametrize("privacy,args,message", [
    ({"dp": False}, [], "trained without DP"),
    ({}, ["--epsilon", "2"], "with RUN the claim is the run's"),
])
def test_cli_run_mode_bad_input(tmp_path, capsys, privacy, args, message):
    run = _fake_run(tmp_path / "run", **privacy)
    code, _, stderr = run_cli(capsys, "verify-dp", run, *args)
    assert code == 2 and message in stderr and stderr.count("\n") == 1
    assert not (run / "audit").exists()


def test_report_shows_the_check_and_a_violation_loudly(tmp_path):
    from reports.html import render_html
    from reports.markdown import render_markdown

    record = {"claimed_epsilon": 4.0, "delta": 1e-5, "epsilon_lower_bound": 15.4, "epsilon_estimate": 16.9,
              "lower_bound_is_at_least": False, "confidence": 0.95, "violation": True,
              "message": "VIOLATION: the DP-SGD implementation delivers epsilon >= 15.40",
              "canaries": {"inserted": 500, "held_out": 500}, "steps": {"claimed": 20, "run": 20},
              "engine": "bookkeeping", "processes": 1, "method": "white-box gradient canaries"}
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "dp_verify.json").write_text(json.dumps(record))
    report = build_report(tmp_path)
    html, md = render_html(report), render_markdown(report)
    assert 'id="dp-verify-violation"' in html and 'id="dp-verify"' in html and "15.4" in html
    assert "**DP implementation violation:**" in md and "ε lower bound 15.4" in md
    record["violation"] = False
    (tmp_path / "audit" / "dp_verify.json").write_text(json.dumps(record))
    report = build_report(tmp_path)
    assert 'id="dp-verify-violation"' not in render_html(report) and 'id="dp-verify"' in render_html(report)
    assert "violation" not in render_markdown(report).lower()
