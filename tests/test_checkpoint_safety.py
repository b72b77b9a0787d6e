"""Checkpoints are private, never unpickled, deleted after training; -q is quiet; no
remote-code pointer in our config.json (issue 18, points 2, 7 and 15)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from auditor.codec import load_text_tokenizer
from auditor.data import DEMO_SCHEMA
from auditor.rundir import RunDir
from cli_helpers import run_cli

TINY = ["--model", "tiny", "--batch-size", "32", "--lr", "0.01", "--no-canaries", "--epochs", "0.5",
        "--epsilon", "8", "--schema", str(DEMO_SCHEMA), "--seed", "3", "--checkpoint-every", "2", "--quiet"]


def _checkpoint_files(run) -> list:
    """Where this version keeps the checkpoint and the secret state (older versions: model/checkpoint/)."""
    rd = RunDir(run)
    paths = [rd.checkpoint if rd.checkpoint.suffix == ".pt" else rd.checkpoint / "state.pt"]
    if hasattr(rd, "secret_state"):
        paths.append(rd.secret_state)
    return paths


class _Payload:
    """Unpickling this creates ``marker``: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_never_unpickles_a_crafted_checkpoint(tmp_path, demo_small_csv, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", out, *TINY)
    assert code == 0, err
    marker = tmp_path / "marker"
    for path in _checkpoint_files(out):
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": _Payload(marker), "step": 1}, path)
    resumed = subprocess.run([sys.executable, "-m", "auditor", "train", str(demo_small_csv), "--out", str(out),
                              "--resume", *TINY], env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                             text=True)
    assert not marker.exists()  # no code from the file ran
    assert resumed.returncode == 2
    err = resumed.stderr
    assert len(err.strip().splitlines()) == 1 and "refusing to load it" in err and "Traceback" not in err


def test_checkpoints_are_private_and_deleted_after_training(tmp_path, demo_small_csv, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", out, *TINY)
    assert code == 0, err
    assert [p for p in out.rglob("*") if p.suffix in (".pt", ".tmp")] == []
    kept = tmp_path / "kept"
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", kept, *TINY, "--keep-checkpoints")
    assert code == 0, err
    ckpt = RunDir(kept).checkpoint
    assert ckpt.stat().st_mode & 0o777 == 0o600 and RunDir(kept).private.stat().st_mode & 0o777 == 0o700
    assert not (kept / "model" / "checkpoint").exists()


def test_checkpoint_writes_use_unique_temp_names(tmp_path):
    """Two writers never share a temp name: a stale (or concurrent) file at the old fixed
    name ``state.tmp`` does not stop a write, and no temp file is left behind."""
    from auditor.train import _save_private, load_private_state

    path = tmp_path / "ckpt" / "state.pt"
    path.parent.mkdir()
    (path.parent / "state.tmp").mkdir()  # what a second training's fixed temp name would hit
    _save_private(path, {"step": 3, "w": torch.ones(2)})
    _save_private(path, {"step": 4, "w": torch.zeros(2)})
    assert load_private_state(path)["step"] == 4
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.pt", "state.tmp"]


def test_quiet_silences_the_transformers_bars(tmp_path, demo_small_csv):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "run"
    trained = subprocess.run([sys.executable, "-m", "auditor", "train", str(demo_small_csv), "--out", str(out),
                              *TINY], env=env, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-2000:]
    generated = subprocess.run([sys.executable, "-m", "auditor", "generate", str(out), "-n", "5", "-q"], env=env,
                               capture_output=True, text=True)
    assert generated.returncode == 0, generated.stderr[-2000:]
    for proc in (trained, generated):
        for bar in ("Writing model shards", "Loading weights"):
            assert bar not in proc.stderr + proc.stdout


def test_a_pretrained_models_auto_map_is_not_copied(tmp_path, demo_small_csv, capsys):
    base = tmp_path / "pretrained"
    tok = PreTrainedTokenizerFast(tokenizer_object=load_text_tokenizer(), bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>")
    tok.save_pretrained(base)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 num_key_value_heads=2, intermediate_size=64, max_position_embeddings=256,
                                 tie_word_embeddings=False)).save_pretrained(base)
    config = json.loads((base / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "remote_model.RemoteForCausalLM"}
    (base / "config.json").write_text(json.dumps(config))
    out = tmp_path / "run"
    flags = [f for f in TINY if f != "tiny"]
    flags[flags.index("--model") + 1:flags.index("--model") + 1] = [str(base)]
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", out, *flags)
    assert code == 0, err
    saved = json.loads((out / "model" / "config.json").read_text())
    assert saved["model_type"] == "llama" and "auto_map" not in saved
