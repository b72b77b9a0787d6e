"""`torchrun --nproc_per_node 2 -m auditor train` on CPU (gloo): same epsilon, same model as one process."""

import json
import os
import socket
import subprocess
import sys

from safetensors.torch import load_file

from auditor.data import DEMO_SCHEMA


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path, demo_small_csv):
    args = ["train", str(demo_small_csv), "--schema", str(DEMO_SCHEMA), "--model", "tiny", "--epochs", "1",
            "--batch-size", "32", "--seed", "3", "--canary-repetitions", "1,2", "--audit-canaries", "4", "-q",
            "--reproducible-noise", "5"]  # the same secret streams in both runs, to compare the models
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "auditor", *args, "--out", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                          "-m", "auditor", *args, "--out", str(tmp_path / "two")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    p1, p2 = (json.loads((tmp_path / d / "model" / "privacy.json").read_text()) for d in ("one", "two"))
    assert p2["world_size"] == 2 and p1["world_size"] == 1
    # the accounting sees the same mechanism: the same logical Poisson batches, noise added once
    for key in ("epsilon", "noise_multiplier", "sample_rate", "steps", "history"):
        assert p1[key] == p2[key], key
    w1, w2 = (load_file(tmp_path / d / "model" / "model.safetensors") for d in ("one", "two"))
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-5
    # only rank 0 wrote: one summary line
    assert two.stdout.count("trained ") == 1
