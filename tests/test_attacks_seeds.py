"""The attacks against real tiny models: DP runs stay under their claim, non-DP runs leak.

Records are fake rows ``{kind, code}`` (a 6-digit code). A coin-flip canary set
of 64 fake rows is drawn; each canary goes into training with probability 1/2.

- Non-DP: included canaries are inserted 16 times each; the canary MIA must
  separate inserted from held-out canaries and the one-run audit must give a
  positive bound.
- DP (epsilon = 2, three seeds): included canaries are inserted once, as the
  planted audit set is; no bound may exceed the claimed epsilon.
"""

import numpy as np
import pytest
import torch

from attacks import dp_audit, mia
from attacks.mia import MiaConfig
from auditor.codec import RowCodec
from auditor.dp.ledger import PrivacyLedger
from auditor.dp.secret import SecretSource
from auditor.schema import Column, Schema
from auditor.scoring import ModelScorer
from auditor.config import TrainConfig
from auditor.train import fit

pytestmark = pytest.mark.slow

SCHEMA = Schema(
    columns=[
        Column(name="kind", kind="categorical", categories=["a", "b", "c"]),
        Column(name="code", kind="pattern", pattern="dddddd"),
    ]
)
N_RECORDS = 256
N_CANARIES = 64
DELTA = 1e-3


@pytest.fixture(scope="module")
def codec():
    torch.set_num_threads(1)
    return RowCodec(SCHEMA)


def fake_records(rng, n):
    return [
        {"kind": str(rng.choice(["a", "b", "c"])), "code": "".join(map(str, rng.integers(0, 10, 6)))}
        for _ in range(n)
    ]


def train_and_attack(codec, *, seed, dp, copies, epochs):
    rng = np.random.default_rng(seed)
    train, holdout = fake_records(rng, N_RECORDS), fake_records(rng, N_RECORDS)
    canaries = fake_records(rng, N_CANARIES)
    inclusion = rng.integers(0, 2, N_CANARIES).astype(bool)
    inserted = [c for c, used in zip(canaries, inclusion) if used]
    rows = train + [c for c in inserted for _ in range(copies)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    config = TrainConfig(
        model="tiny", dp=dp, epsilon=2.0 if dp else None, epochs=epochs, batch_size=64,
        physical_batch_size=256, lr=1e-2, seed=seed, device="cpu",
    )
    result = fit(
        [codec.encode(r) for r in rows], grammar=codec.grammar, vocab_size=codec.vocab_size,
        pad_id=codec.pad_id, config=config, ledger=PrivacyLedger.for_training(config, delta=DELTA),
        max_length=codec.max_length,
        secret=SecretSource.reproducible_from(seed),
    )
    scorer = ModelScorer(result.model, codec, batch_size=256)
    mia_config = MiaConfig(signals=("loss", "min_k"), n_bootstrap=100)
    scores = mia.score_membership(
        scorer=scorer, members=train, nonmembers=holdout, canaries_in=inserted,
        canaries_out=[c for c, used in zip(canaries, inclusion) if not used], config=mia_config,
    )
    canary_scores = mia.score_records(scorer=scorer, records=canaries, config=MiaConfig(signals=("loss",)))
    claimed = result.ledger.epsilon() if dp else None
    audit_result = dp_audit.run(
        member_scores=scores.members, nonmember_scores=scores.nonmembers,
        canary_scores=canary_scores["loss"], canary_inclusion=inclusion, canary_copies=copies,
        claimed_epsilon=claimed, delta=DELTA if dp else 0.0,
    )
    return mia.report(scores, config=mia_config), audit_result, claimed


def test_non_dp_run_with_16_copy_canaries_leaks(codec):
    report, dp_audit, claimed = train_and_attack(codec, seed=0, dp=False, copies=16, epochs=6)
    assert claimed is None
    canary_auc = report["canary_signals"]["loss"]["auc"]
    one_run = next(b for b in dp_audit["bounds"] if b["method"] == "one-run")
    print(f"non-DP: canary AUC {canary_auc:.3f}, one-run bound {one_run['epsilon_lower_bound']:.3f} "
          f"(group {one_run['details']['group_epsilon_lower_bound']:.3f}), member AUC {report['signals']['loss']['auc']:.3f}")
    assert canary_auc > 0.8
    assert one_run["epsilon_lower_bound"] > 0
    assert dp_audit["violation"] is False  # no claim, no violation


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dp_runs_never_exceed_their_claim(codec, seed):
    report, dp_audit, claimed = train_and_attack(codec, seed=seed, dp=True, copies=1, epochs=2)
    print(f"DP seed {seed}: claimed {claimed:.3f}, bounds "
          f"{[(b['name'], round(b['epsilon_lower_bound'], 3)) for b in dp_audit['bounds']]}")
    assert 0 < claimed <= 2.0 + 1e-6
    assert dp_audit["max_lower_bound"] <= claimed
    assert dp_audit["violation"] is False
