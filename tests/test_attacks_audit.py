"""The dp_audit audit: split-then-bound MIA, outcomes, one-run canaries, violations."""

import json
import logging
import math

import numpy as np
import pytest

from attacks import audit
from attacks.audit import AuditConfig, epsilon_lower_bound, guess_counts, one_run_epsilon


def test_perfect_mia_gives_the_bound_of_its_evaluation_half():
    # Members score 1, non-members 0: any threshold in (0, 1] is perfect. The
    # evaluation half has 100 of each: tp=100, fn=0, fp=0, tn=100, so the bound
    # equals epsilon_lower_bound on those counts (3.28, see test_attacks_bounds).
    out = audit.run(
        member_scores={"loss": np.ones(200)},
        nonmember_scores={"loss": np.zeros(200)},
        claimed_epsilon=1.0,
        delta=0.0,
    )
    (bound,) = out["bounds"]
    assert bound["details"]["counts"] == {"tp": 100, "fn": 0, "fp": 0, "tn": 100}
    assert bound["epsilon_lower_bound"] == pytest.approx(epsilon_lower_bound(tp=100, fn=0, fp=0, tn=100))
    assert out["violation"] is True
    assert "DP IMPLEMENTATION FAILURE" in out["message"]
    json.dumps(out, allow_nan=False)


def test_violation_is_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="attacks.audit"):
        audit.run(
            member_scores={"loss": np.ones(200)},
            nonmember_scores={"loss": np.zeros(200)},
            claimed_epsilon=0.5,
            delta=1e-5,
        )
    assert any("DP IMPLEMENTATION FAILURE" in r.message for r in caplog.records)


def test_random_scores_never_violate_across_seeds():
    # Scores independent of membership: the selection half overfits a threshold,
    # the evaluation half must not confirm it. At significance 0.05 a false
    # violation of epsilon = 0.1 should essentially never happen.
    for seed in range(20):
        rng = np.random.default_rng(seed)
        out = audit.run(
            member_scores={"loss": rng.normal(size=300), "zlib": rng.normal(size=300)},
            nonmember_scores={"loss": rng.normal(size=300), "zlib": rng.normal(size=300)},
            claimed_epsilon=0.1,
            delta=1e-5,
            config=AuditConfig(seed=seed),
        )
        assert out["violation"] is False, out["message"]


def test_outcomes_are_bounded_as_given():
    out = audit.run(
        outcomes={"external": {"tp": 90, "fn": 10, "fp": 5, "tn": 95}},
        claimed_epsilon=8.0,
        delta=0.01,
        config=AuditConfig(significance=0.1),
    )
    expected = epsilon_lower_bound(tp=90, fn=10, fp=5, tn=95, delta=0.01, significance=0.1)
    assert out["max_lower_bound"] == pytest.approx(expected)
    assert out["violation"] is False and out["message"].startswith("consistent")


def test_one_run_uses_bonferroni_over_the_grid():
    # 100 canaries, the first 50 included; scores rank all included canaries first.
    inclusion = np.arange(100) < 50
    scores = inclusion.astype(float) + np.linspace(0, 0.1, 100)
    config = AuditConfig(guess_fractions=(0.1, 0.5))
    out = audit.run(canary_scores=scores, canary_inclusion=inclusion, claimed_epsilon=None, delta=0.0, config=config)
    (bound,) = out["bounds"]
    # Grid k = 10 and 50, all correct; each tested at 0.05 / 2.
    expected = max(
        one_run_epsilon(num_canaries=100, num_guesses=k, num_correct=k, significance=0.025) for k in (10, 50)
    )
    assert bound["epsilon_lower_bound"] == pytest.approx(expected)
    assert bound["details"]["num_guesses"] == 50 and bound["details"]["num_correct"] == 50
    assert out["claimed_epsilon"] is None and out["violation"] is False
    assert "no DP claim" in out["message"]


def test_one_run_ties_do_not_leak_input_order():
    # All scores equal: a guess is a coin flip whatever the listing order, so
    # listing the included canaries first must not yield a bound.
    inclusion = np.arange(200) < 100
    out = audit.run(
        canary_scores=np.zeros(200), canary_inclusion=inclusion, claimed_epsilon=1.0, delta=0.0
    )
    assert out["max_lower_bound"] < 0.5


def test_guess_counts():
    assert guess_counts(num_canaries=100, fractions=(0.02, 0.05, 0.5)) == [2, 5, 50]
    assert guess_counts(num_canaries=10, fractions=(0.01, 0.05, 1.0)) == [1, 10]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="member_scores and nonmember_scores"):
        audit.run(member_scores={"a": [1, 2]}, claimed_epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="canary_inclusion"):
        audit.run(canary_scores=[1.0, 2.0], canary_inclusion=[1], claimed_epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="claimed_epsilon"):
        audit.run(outcomes={}, claimed_epsilon=-1.0, delta=0.0)
    with pytest.raises(ValueError, match="lacks"):
        audit.run(outcomes={"x": {"tp": 1}}, claimed_epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="finite"):
        audit.run(member_scores={"a": [1, np.nan]}, nonmember_scores={"a": [1, 2]}, claimed_epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="guess_fractions"):
        AuditConfig(guess_fractions=(0.0,))


def test_no_evidence():
    out = audit.run(claimed_epsilon=1.0, delta=1e-5)
    assert out["bounds"] == [] and out["max_lower_bound"] == 0.0 and out["violation"] is False


def test_group_delta_by_hand():
    # k = 4, eps = 1, delta = 1e-5: 4 * e^3 * 1e-5 = 8.0342e-4
    assert audit.group_delta(delta=1e-5, copies=4, epsilon=1.0) == pytest.approx(4 * math.exp(3) * 1e-5)
    assert audit.group_delta(delta=1e-5, copies=1, epsilon=1.0) == 1e-5
    assert audit.group_delta(delta=1e-5, copies=16, epsilon=None) == 1e-5
    assert audit.group_delta(delta=0.1, copies=16, epsilon=2.0) == 1.0


def test_multi_copy_canaries_give_a_per_record_group_bound():
    inclusion = np.arange(100) < 50
    scores = inclusion.astype(float)
    config = AuditConfig(guess_fractions=(0.5,))
    out = audit.run(
        canary_scores=scores, canary_inclusion=inclusion, canary_copies=4,
        claimed_epsilon=1.0, delta=1e-5, config=config,
    )
    (bound,) = out["bounds"]
    group = one_run_epsilon(
        num_canaries=100, num_guesses=50, num_correct=50, delta=4 * math.exp(3) * 1e-5, significance=0.05
    )
    assert bound["details"]["group_epsilon_lower_bound"] == pytest.approx(group)
    assert bound["epsilon_lower_bound"] == pytest.approx(group / 4)
    with pytest.raises(ValueError, match="canary_copies"):
        audit.run(canary_scores=scores, canary_inclusion=inclusion, canary_copies=0, claimed_epsilon=1.0, delta=0.0)


def test_signals_must_score_the_same_records():
    with pytest.raises(ValueError, match="same records"):
        audit.run(
            member_scores={"a": np.zeros(10), "b": np.zeros(12)},
            nonmember_scores={"a": np.zeros(10), "b": np.zeros(10)},
            claimed_epsilon=1.0, delta=0.0,
        )
