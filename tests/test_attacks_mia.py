"""The mia audit end to end, on a fake Scorer that returns fixed TokenStats."""

import json
import math

import numpy as np
import pytest

from attacks import mia
from attacks.mia import MiaConfig
from canaries.scorer import Scorer, TokenStats


class FakeScorer:
    """Scores records from a table: record id -> per-token log-probabilities.

    ``encode`` maps a record to ``[BOS, id]``; ``token_stats`` looks the id up.
    Only the two methods the mia audit uses do anything.
    """

    def __init__(self, table: dict[str, np.ndarray]):
        self.ids = {key: i for i, key in enumerate(table)}
        self.rows = list(table.values())
        self.calls = 0

    def _key(self, record):
        return record if isinstance(record, str) else record["id"]

    def encode(self, record):
        return [0, self.ids[self._key(record)]]

    def token_stats(self, sequences):
        self.calls += 1
        out = []
        for seq in sequences:
            logprob = self.rows[seq[1]]
            out.append(TokenStats(logprob=logprob, mean=np.full_like(logprob, -2.0), std=np.ones_like(logprob)))
        return out

    def encode_prefix(self, record, field):
        raise NotImplementedError

    def encode_value(self, field, value):
        raise NotImplementedError

    def decode_value(self, field, ids):
        raise NotImplementedError

    def continuation_logprobs(self, prefix, continuations):
        raise NotImplementedError

    def complete(self, prefix, *, field, beam_width=1, max_new_tokens=64):
        raise NotImplementedError


def _population(rng, n, shift):
    return {f"r{shift}-{i}": rng.normal(-2.0 + shift, 1.0, size=12) for i in range(n)}


def test_fake_scorer_satisfies_protocol():
    assert isinstance(FakeScorer({"a": np.zeros(2)}), Scorer)


def test_run_separates_members_and_writes_contract_shape():
    rng = np.random.default_rng(0)
    members_table = _population(rng, 120, 0.5)  # members: higher log-probabilities
    non_table = _population(rng, 120, 0.0)
    canary_in = {f"cin{i}": np.full(8, -0.1) for i in range(20)}
    canary_out = {f"cout{i}": np.full(8, -3.0) for i in range(20)}
    scorer = FakeScorer({**members_table, **non_table, **canary_in, **canary_out})
    members = [{"id": k, "note": "fake"} for k in members_table]
    config = MiaConfig(n_bootstrap=100, batch_size=50)
    out = mia.run(
        scorer=scorer,
        members=members,
        nonmembers=list(non_table),
        canaries_in=list(canary_in),
        canaries_out=list(canary_out),
        config=config,
    )
    json.dumps(out, allow_nan=False)
    assert set(out["signals"]) == {"loss", "zlib", "min_k", "min_k_pp"}
    assert out["signals_skipped"] == {"reference": mia.NO_REFERENCE}
    assert out["n_members"] == 120 and out["n_nonmembers"] == 120
    # Mean shift 0.5 over 12 tokens with unit noise: loss differs by 0.5 with sd
    # 1/sqrt(12) per record -> AUC = Phi(0.5 / (sqrt(2) / sqrt(12))) = Phi(1.22) = 0.89.
    assert out["signals"]["loss"]["auc"] == pytest.approx(0.5 * (1 + math.erf(1.2247 / math.sqrt(2))), abs=0.07)
    assert out["canary_signals"]["loss"]["auc"] == 1.0
    assert out["best_signal"] in out["signals"]
    loss = out["signals"]["loss"]
    assert set(loss["tpr_at_fpr"]) == {"0.001", "0.01", "0.1"}
    assert loss["tpr_at_fpr"]["0.001"] is None  # 120 non-members < 1000
    # 4 batches of 50 (120 = 50+50+20) for each of members, non-members; 1 each for canaries.
    assert scorer.calls == 3 + 3 + 1 + 1


def test_reference_signal_cancels_record_difficulty():
    # Every record's difficulty varies a lot (offset), members are 0.3 easier
    # under the target only: loss alone barely separates, reference-calibrated
    # loss separates perfectly.
    rng = np.random.default_rng(1)
    offsets = rng.normal(0, 3, size=200)
    target = {f"m{i}": np.full(5, -4.0 + offsets[i] + 0.3) for i in range(100)}
    target |= {f"n{i}": np.full(5, -4.0 + offsets[100 + i]) for i in range(100)}
    reference = {k: np.full(5, -4.0 + offsets[i]) for i, k in enumerate(target)}
    out = mia.run(
        scorer=FakeScorer(target),
        members=[f"m{i}" for i in range(100)],
        nonmembers=[f"n{i}" for i in range(100)],
        reference_scorer=FakeScorer(reference),
        config=MiaConfig(n_bootstrap=50),
    )
    assert out["signals"]["reference"]["auc"] == 1.0
    assert out["signals"]["loss"]["auc"] < 0.7
    assert out["best_signal"] == "reference"
    assert out["signals_skipped"] == {}


def test_score_membership_keeps_raw_scores():
    table = {"a": np.array([-1.0, -1.0]), "b": np.array([-2.0, -4.0])}
    scores = mia.score_membership(
        scorer=FakeScorer(table), members=["a"], nonmembers=["b"], config=MiaConfig(signals=("loss",))
    )
    np.testing.assert_allclose(scores.members["loss"], [-1.0])
    np.testing.assert_allclose(scores.nonmembers["loss"], [-3.0])
    assert scores.canaries_in == {}


def test_bad_inputs_are_named():
    scorer = FakeScorer({"a": np.zeros(2)})
    with pytest.raises(ValueError, match="nonmembers"):
        mia.run(scorer=scorer, members=["a"], nonmembers=[])
    with pytest.raises(ValueError, match="canaries_in and canaries_out"):
        mia.run(scorer=scorer, members=["a"], nonmembers=["a"], canaries_in=["a"])
    with pytest.raises(ValueError, match="reference model"):
        mia.run(scorer=scorer, members=["a"], nonmembers=["a"], config=MiaConfig(signals=("reference",)))
    with pytest.raises(ValueError, match="unknown signal"):
        mia.run(scorer=scorer, members=["a"], nonmembers=["a"], config=MiaConfig(signals=("bogus",)))


def test_non_finite_scores_name_the_signal_and_record():
    table = {"a": np.array([-1.0, -1.0]), "b": np.array([-np.inf, -1.0])}
    with pytest.raises(ValueError, match="signal 'loss' gave a non-finite score for record 1"):
        mia.run(scorer=FakeScorer(table), members=["a", "b"], nonmembers=["a"], config=MiaConfig(signals=("loss",)))
