"""Tiny end-to-end training and generation through the CLI, and resume after a kill."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from transformers import AutoModelForCausalLM

from auditor.data import DEMO_SCHEMA, load_records
from auditor.schema_inference import require_valid
from auditor.dp.accounting import epsilon_of
from auditor.rundir import RunDir
from auditor.schema import Schema
from cli_helpers import run_cli

TINY = ["--model", "tiny", "--batch-size", "32", "--lr", "0.01", "--canary-repetitions", "1,4",
        "--audit-canaries", "10", "--seed", "3", "--quiet"]


@pytest.fixture(scope="module")
def dp_run(tmp_path_factory, demo_small_csv):
    out = tmp_path_factory.mktemp("runs") / "dp"
    from auditor.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", str(demo_small_csv), "--out", str(out), "--schema", str(DEMO_SCHEMA), "--epochs", "2",
              "--epsilon", "8", *TINY])
    assert exc.value.code == 0
    return out


def test_privacy_record_recomputes(dp_run):
    p = json.loads((dp_run / "model" / "privacy.json").read_text())
    for key in ("dp", "epsilon", "delta", "accountant", "noise_multiplier", "max_grad_norm", "sample_rate",
                "steps", "epochs", "n_records", "outside_guarantee"):
        assert key in p
    assert p["dp"] is True and p["accountant"] == "prv"
    # the numeric magnitudes (not declared) are selected with DP first, then DP-SGD; one epsilon for both
    assert p["domain_selection"]["columns"] == ["age", "cost"]
    assert p["history"] == [[4.0, 1.0, 1], [p["noise_multiplier"], p["sample_rate"], p["steps"]]]
    assert p["epsilon"] == pytest.approx(epsilon_of([tuple(h) for h in p["history"]],
                                                    delta=p["delta_accountant"]), rel=1e-12)
    assert p["delta_accountant"] < p["delta"]
    assert p["epsilon"] <= 8.0 and p["epsilon"] > 7.8
    assert p["sample_rate"] == pytest.approx(32 / p["n_records"])
    # the declared schema leaves only the record count outside the guarantee (treated as public)
    assert len(p["outside_guarantee"]) == 1
    assert p["outside_guarantee"][0].startswith(f"the number of training records (n = {p['n_records']},")
    # epsilon is stated with the delta it holds at, and the split of delta
    assert p["delta_split"] == {"accountant": p["delta_accountant"],
                                "domain_selection": pytest.approx(p["delta"] - p["delta_accountant"])}
    assert p["reproducible_noise"] is False
    assert p["n_canary_rows"] > 0
    assert "secret's field only" in p["canary_rows"]
    assert [item.split(":")[0] for item in p["not_learned"]] == ["name", "email", "phone", "ssn", "card_number",
                                                                 "address"]


def test_secret_files_are_private(dp_run):
    assert (dp_run / "canaries.json").stat().st_mode & 0o777 == 0o600
    assert (dp_run / ".salt").stat().st_mode & 0o777 == 0o600


def test_model_loads_with_transformers(dp_run):
    model = AutoModelForCausalLM.from_pretrained(dp_run / "model", local_files_only=True)
    assert model.config.tie_word_embeddings is False
    assert (dp_run / "model" / "model.safetensors").exists()


def test_generate_writes_valid_rows(dp_run, capsys):
    code, out, err = run_cli(capsys, "generate", dp_run, "-n", "40", "--quiet")
    assert code == 0, err
    gen = json.loads((dp_run / "generation.json").read_text())
    assert gen["requested"] == 40 and gen["validity"] >= 0.9
    frame = load_records(dp_run / "synthetic.csv").frame
    assert len(frame) == gen["released"] >= 1
    require_valid(frame, Schema.load(DEMO_SCHEMA), name="synthetic")  # every row parses under the schema


def test_no_dp_run_is_marked(tmp_path, demo_small_csv, capsys):
    code, out, err = run_cli(capsys, "train", demo_small_csv, "--out", tmp_path / "r", "--schema", DEMO_SCHEMA,
                             "--no-dp", "--epochs", "1", "--no-canaries", *TINY)
    assert code == 0, err
    assert "WITHOUT DP" in out
    p = json.loads((tmp_path / "r" / "model" / "privacy.json").read_text())
    assert p["dp"] is False and p["epsilon"] is None
    assert any("no DP guarantee" in s for s in p["outside_guarantee"])


def test_inferred_schema_and_dp_domains_are_accounted(tmp_path, demo_small_csv, capsys):
    code, out, err = run_cli(capsys, "train", demo_small_csv, "--out", tmp_path / "r", "--epochs", "1",
                             "--no-canaries", *TINY)
    assert code == 0, err
    p = json.loads((tmp_path / "r" / "model" / "privacy.json").read_text())
    sel = p["domain_selection"]
    assert "diagnosis" in sel["columns"]
    # the selection is the first mechanism of the recorded history, charged to the same budget
    assert p["history"][0] == [4.0, 1.0, 1]
    assert p["epsilon"] == pytest.approx(epsilon_of([tuple(h) for h in p["history"]],
                                                    delta=p["delta_accountant"]), rel=1e-12)
    assert p["epsilon"] <= 8.0
    assert any("inferred" in s for s in p["outside_guarantee"])


def _train_cmd(data, out, *extra):
    return [sys.executable, "-m", "auditor", "train", str(data), "--out", str(out), "--schema", str(DEMO_SCHEMA),
            "--epochs", "6", "--epsilon", "8", "--checkpoint-every", "3", "--reproducible-noise", "11", *TINY, *extra]


def test_resume_after_kill_gives_same_epsilon_and_weights(tmp_path, demo_small_csv):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = tmp_path / "ref"
    subprocess.run(_train_cmd(demo_small_csv, ref), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(demo_small_csv, killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = RunDir(killed).checkpoint
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "model" / "privacy.json").exists(), "the run finished before it could be killed"
    done_before = torch.load(ckpt, weights_only=True)["step"]
    subprocess.run(_train_cmd(demo_small_csv, killed, "--resume"), check=True, env=env, capture_output=True)
    p_ref = json.loads((ref / "model" / "privacy.json").read_text())
    p_res = json.loads((killed / "model" / "privacy.json").read_text())
    assert 0 < done_before < p_ref["steps"]
    assert p_res["steps"] == p_ref["steps"]
    assert p_res["epsilon"] == p_ref["epsilon"]
    # the resumed run continues the same (here reproducible) secret streams: the same weights, bit for bit
    assert (ref / "model" / "model.safetensors").read_bytes() == (killed / "model" / "model.safetensors").read_bytes()
    assert not RunDir(killed).private.exists()  # checkpoint and secret state deleted when training ended


def test_dp_and_no_dp_runs_share_the_canary_layout_not_the_secrets(tmp_path, demo_small_csv, capsys):
    """Comparable runs: with an inferred schema the DP run selects domains with noise, the
    baseline does not; the seed still gives both the same split and canary schedule, while
    the secrets (and audit coins) are secret randomness, never derived from the seed."""
    from canaries.manifest import Manifest

    common = ["--epochs", "0.2", "--canary-repetitions", "1,2", "--audit-canaries", "4", *TINY]
    for name, flags in (("dp", []), ("nodp", ["--no-dp"])):
        code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", tmp_path / name, *flags, *common)
        assert code == 0, err
    a, b = (Manifest.load(tmp_path / n / "canaries.json") for n in ("dp", "nodp"))

    def layout(m):
        return [(c.id, c.group, c.field, None if c.group == "audit" else c.repetitions) for c in m.canaries]

    def secrets(m):  # compared as digests: a failing assert must not print a secret
        return {hashlib.sha256(c.secret.encode()).hexdigest() for c in m.canaries}

    assert layout(a) == layout(b)
    assert secrets(a) != secrets(b)
    assert (tmp_path / "dp" / "split.json").read_text() == (tmp_path / "nodp" / "split.json").read_text()
