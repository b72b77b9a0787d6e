import os

# Tests never reach the Hugging Face hub: a --model that is neither a preset nor a local
# directory fails at once instead of retrying a download (set before transformers loads).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

# Two cores: keep intra-op threads fixed so runs are reproducible and CI is not oversubscribed.
torch.set_num_threads(int(os.environ.get("AUDITOR_TEST_THREADS", "2")))


@pytest.fixture(scope="session")
def demo_small_csv(tmp_path_factory):
    """The first 300 demo records (fake data) as a CSV."""
    from auditor.data import DEMO_CSV

    path = tmp_path_factory.mktemp("data") / "demo300.csv"
    lines = DEMO_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:301]), encoding="utf-8")
    return path
