"""Replication of the Secret Sharer at small scale (Carlini et al. 2019, Sec. 5 and 9).

A non-DP ``tiny`` model trained on 200 fake rows plus canaries memorizes them in
proportion to their repetitions; the same data trained with DP-SGD at epsilon = 8
leaves single-copy canaries indistinguishable from their held-out twins.
"""

import numpy as np
import pytest
import torch

from auditor.codec import RowCodec
from auditor.dp.ledger import PrivacyLedger
from auditor.dp.secret import SecretSource
from auditor.schema import Column, Schema
from auditor.scoring import ModelScorer
from auditor.config import TrainConfig
from auditor.train import fit
from canaries.exposure_audit import ExposureInputs, run
from canaries.config import CanaryConfig
from canaries.plant import fake_name, plant

pytestmark = pytest.mark.slow

SCHEMA = Schema(columns=[
    Column(name="kind", kind="categorical", categories=["x", "y", "z"]),
    Column(name="name", kind="text", max_tokens=6),
    Column(name="code", kind="pattern", pattern="dddd"),
])
CONFIG = CanaryConfig(column="code", repetitions=(1, 4, 16), per_repetition=3, twins=1, audit_canaries=0,
                      beam_width=4)


def _audit(*, dp: bool) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    real = [{"kind": ["x", "y", "z"][int(rng.integers(3))], "name": fake_name(rng),
             "code": f"{int(rng.integers(10**4)):04d}"} for _ in range(200)]
    codec = RowCodec(SCHEMA)
    planted, manifest = plant(real, SCHEMA, config=CONFIG, rng=np.random.default_rng(2), secret_rng=np.random.default_rng(2 + 100), encoder=codec)
    train = TrainConfig(model="tiny", dp=dp, epsilon=8.0 if dp else None, epochs=5, batch_size=32,
                        physical_batch_size=64, lr=1e-2, device="cpu", checkpoint_every=10**9, seed=0)
    result = fit([codec.encode(r) for r in planted], grammar=codec.grammar, vocab_size=codec.vocab_size,
                 pad_id=codec.pad_id, config=train, ledger=PrivacyLedger.for_training(train, delta=1e-5),
                 max_length=codec.max_length,
                 secret=SecretSource.reproducible_from(0))
    if dp:
        assert result.ledger.epsilon() == pytest.approx(8.0, abs=0.05)
    return run(ExposureInputs(scorer=ModelScorer(result.model, codec), manifest=manifest), CONFIG)


def _mean_exposure(out: dict) -> dict[int, float]:
    return {r["repetitions"]: r["exposure_mean"] for r in out["by_repetition"]}


def test_non_dp_model_memorizes_repeated_canaries():
    out = _audit(dp=False)
    exposure = _mean_exposure(out)
    assert exposure[1] <= exposure[4] <= exposure[16] and exposure[1] < exposure[16]
    assert exposure[16] >= 0.8 * out["log2_space"]
    assert out["extraction"]["greedy_extracted"] >= 1
    assert out["memorization"]["min_detected_repetitions"] is not None


def test_dp_model_keeps_single_copies_indistinguishable():
    out = _audit(dp=True)
    single = next(r for r in out["memorization"]["by_repetition"] if r["repetitions"] == 1)
    assert single["p_value"] >= out["memorization"]["alpha"]
