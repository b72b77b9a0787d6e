"""The audit and MIA signal registries, and the one stage chain (issue 12, points 3 and 6).

The toy audit and the toy signal are added exactly as docs/architecture.md says
("Add an audit", "Add a membership-inference signal"): one registered function
each, no edit of the pipeline or the audits, on a real tiny trained run.
"""

import json

import pytest

from attacks.signals import SignalInput, mean_loss, signal, unregister_signal
from auditor.audits import AuditContext, audit_names, register_audit, registered_audits, unregister_audit
from auditor.config import AuditConfig
from auditor.errors import UserError
from reports.run_files import PROVENANCE_CHECKED, SOURCES


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_reports_list_of_audit_files_is_the_registry():
    # reports/ may not import auditor: its own list must name the same audits, files and refresh commands
    reports_side = {stage: SOURCES[section][0] for section, stage in PROVENANCE_CHECKED.items() if stage != "generate"}
    assert reports_side == {spec.name: f"audit/{spec.output}" for spec in registered_audits()}


def test_the_registry_refuses_what_would_break_a_run():
    run = registered_audits()[0].run
    with pytest.raises(ValueError, match="already registered"):
        register_audit("mia", inputs=("model",))(run)
    with pytest.raises(ValueError, match="lower-case identifier"):
        register_audit("../x", inputs=())(run)
    with pytest.raises(ValueError, match="unknown input.*weights"):
        register_audit("x", inputs=("weights",))(run)
    assert "x" not in audit_names()
    from auditor.audits import selected_audits

    with pytest.raises(UserError, match=r"unknown audit\(s\): nope \(expected exposure, mia, "):
        selected_audits(AuditConfig(audits=("mia", "nope")))
    assert [s.name for s in selected_audits(AuditConfig(audits=("quality", "mia")))] == ["mia", "quality"]


def test_a_sweep_point_runs_the_chains_stages():
    from auditor.chain import STAGES
    from auditor.sweep import point

    assert point.STAGES == tuple(s.name for s in STAGES) == ("train", "generate", "audit", "report")


# ---------------------------------------------------------------------------- the recipes, followed

@pytest.fixture
def toy_registrations():
    @register_audit("toy_rows", inputs=("synthetic", "split"))
    def toy_rows(ctx: AuditContext) -> dict:
        """Row counts of the synthetic data and the training split (needs no model)."""
        return {"synthetic_rows": len(ctx.synthetic), "train_rows": len(ctx.train), "holdout_rows": len(ctx.holdout)}

    @signal("toy_neg_loss")
    def toy_neg_loss(item: SignalInput) -> float:
        """The loss signal again: its scores, hence its whole summary, must equal the built-in one's."""
        return -mean_loss(item.stats.logprob)

    yield
    unregister_audit("toy_rows")
    unregister_signal("toy_neg_loss")


def test_a_toy_audit_and_signal_added_through_the_registries_alone(toy_registrations, demo_small_csv, tmp_path,
                                                                    capsys):
    from auditor.chain import ChainJob, run_chain
    from auditor.config import DataConfig, RunConfig, SampleConfig, TrainConfig
    from auditor.data import DEMO_SCHEMA
    from auditor.pipeline import generate
    from canaries.config import CanaryConfig
    from cli_helpers import run_cli

    out = tmp_path / "run"
    cfg = RunConfig(data=DataConfig(schema=str(DEMO_SCHEMA)),
                    train=TrainConfig(model="tiny", epochs=1, batch_size=32, seed=3, device="cpu"),
                    canaries=CanaryConfig(enabled=False), generate=SampleConfig(num_records=40, seed=1),
                    audit=AuditConfig(audits=("mia", "toy_rows"), reference=False, pii_ner=False))
    job = ChainJob(data=demo_small_csv, out=out, config=cfg)
    outcome = run_chain(job)
    assert set(outcome.timings) == {"train", "generate", "audit", "report"}

    toy = _json(out / "audit" / "toy_rows.json")
    split = _json(out / "split.json")
    assert {k: toy[k] for k in ("synthetic_rows", "train_rows", "holdout_rows")} == {
        "synthetic_rows": _json(out / "generation.json")["released"], "train_rows": len(split["train"]),
        "holdout_rows": len(split["holdout"])}
    assert set(toy["provenance"]["inputs"]) == {"synthetic", "split"}
    record = _json(out / "report.json")
    assert record["other_audits"] == {"toy_rows": toy}
    assert sorted(p.name for p in (out / "audit").iterdir()) == ["mia.json", "toy_rows.json"]

    mia = _json(out / "audit" / "mia.json")
    assert mia["signals"]["toy_neg_loss"] == mia["signals"]["loss"]
    assert 0.0 <= mia["signals"]["toy_neg_loss"]["auc"] <= 1.0
    assert record["mia"]["signals"]["toy_neg_loss"] == mia["signals"]["toy_neg_loss"]

    # the toy audit's file is provenance-checked like the built-in ones: new synthetic data clears it
    generate(out, num_records=20, device="cpu")
    assert not (out / "audit" / "toy_rows.json").exists() and (out / "audit" / "mia.json").exists()
    # and `auditor audit --only` knows it
    code, _, err = run_cli(capsys, "audit", out, "--only", "toy_rows", "-q")
    assert code == 0, err
    assert _json(out / "audit" / "toy_rows.json")["synthetic_rows"] == _json(out / "generation.json")["released"]
    assert _json(out / "report.json")["other_audits"]["toy_rows"]["synthetic_rows"] <= 20


def test_a_resumed_chain_skips_what_the_run_holds(toy_registrations, demo_small_csv, tmp_path):
    from auditor.chain import ChainJob, run_chain
    from auditor.config import DataConfig, RunConfig, SampleConfig, TrainConfig
    from auditor.data import DEMO_SCHEMA
    from canaries.config import CanaryConfig

    cfg = RunConfig(data=DataConfig(schema=str(DEMO_SCHEMA)),
                    train=TrainConfig(model="tiny", epochs=1, batch_size=32, seed=3, device="cpu"),
                    canaries=CanaryConfig(enabled=False), generate=SampleConfig(num_records=20),
                    audit=AuditConfig(audits=("toy_rows",)))
    job = ChainJob(data=demo_small_csv, out=tmp_path / "run", config=cfg)
    run_chain(job)
    weights = (tmp_path / "run" / "model" / "model.safetensors").read_bytes()
    (tmp_path / "run" / "audit" / "toy_rows.json").unlink()
    job.resume = True
    again = run_chain(job)
    assert set(again.timings) == {"audit", "report"}  # train and generate were done
    assert (tmp_path / "run" / "model" / "model.safetensors").read_bytes() == weights
    assert (tmp_path / "run" / "audit" / "toy_rows.json").exists()


def test_the_chain_refuses_an_unknown_audit_before_training(demo_small_csv, tmp_path):
    from auditor.chain import ChainJob, run_chain
    from auditor.config import RunConfig

    cfg = RunConfig(audit=AuditConfig(audits=("mia", "nope")))
    with pytest.raises(UserError, match=r"unknown audit\(s\): nope"):
        run_chain(ChainJob(data=demo_small_csv, out=tmp_path / "run", config=cfg))
    assert not (tmp_path / "run").exists()


def test_the_help_names_every_builtin_audit_in_run_order():
    """`auditor audit --help` lists the audits without importing the registry (torch): the list must not drift."""
    import subprocess
    import sys
    from pathlib import Path

    from auditor.commands.audit import BUILTIN_AUDITS

    root = Path(__file__).resolve().parent.parent
    fresh = subprocess.run([sys.executable, "-c", "from auditor.audits import audit_names; print(','.join(audit_names()))"],
                           cwd=root, capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert tuple(fresh.stdout.strip().split(",")) == BUILTIN_AUDITS
    help_text = subprocess.run([sys.executable, "-m", "auditor", "audit", "--help"], cwd=root, capture_output=True,
                               text=True, timeout=300).stdout
    assert all(name in " ".join(help_text.split()) for name in BUILTIN_AUDITS)
