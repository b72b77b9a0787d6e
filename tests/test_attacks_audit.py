"""The dp_audit audit: split-then-bound MIA, outcomes, one-run canaries, violations."""

import json
import logging
import math

import numpy as np
import pytest

from attacks import dp_audit
from attacks.dp_audit import DpAuditConfig, epsilon_lower_bound, guess_counts, one_run_epsilon


def test_perfect_mia_is_a_heuristic_bound_that_never_makes_a_violation():
    # Members score 1, non-members 0: any threshold in (0, 1] is perfect. The
    # evaluation half has 100 of each: tp=100, fn=0, fp=0, tn=100, so the bound
    # equals epsilon_lower_bound on those counts: logit(0.025^(1/100)) = 3.2814.
    # Clopper-Pearson on one model's scores is not a valid one-run bound, so it is
    # labelled heuristic and kept out of the violation even far above the claim.
    out = dp_audit.run(
        member_scores={"loss": np.ones(200)},
        nonmember_scores={"loss": np.zeros(200)},
        claimed_epsilon=1.0,
        delta=0.0,
    )
    (bound,) = out["bounds"]
    assert bound["details"]["counts"] == {"tp": 100, "fn": 0, "fp": 0, "tn": 100}
    assert bound["epsilon_lower_bound"] == pytest.approx(3.2814, abs=1e-4)
    assert bound["heuristic"] is True and "heuristic" in bound["note"]
    assert bound["max_attainable"] == pytest.approx(3.2814, abs=1e-4)
    assert out["heuristic_max_lower_bound"] == pytest.approx(3.2814, abs=1e-4)
    assert out["violation"] is False and out["max_lower_bound"] == 0.0
    assert out["max_attainable"] is None and out["correction"]["family_size"] == 0
    assert "DP IMPLEMENTATION FAILURE" not in out["message"]
    json.dumps(out, allow_nan=False)


def test_violation_is_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="attacks.dp_audit"):
        dp_audit.run(
            outcomes={"perfect": {"tp": 200, "fn": 0, "fp": 0, "tn": 200}},
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
        out = dp_audit.run(
            member_scores={"loss": rng.normal(size=300), "zlib": rng.normal(size=300)},
            nonmember_scores={"loss": rng.normal(size=300), "zlib": rng.normal(size=300)},
            claimed_epsilon=0.1,
            delta=1e-5,
            config=DpAuditConfig(seed=seed),
        )
        assert out["violation"] is False, out["message"]


def test_outcomes_are_bounded_as_given():
    out = dp_audit.run(
        outcomes={"external": {"tp": 90, "fn": 10, "fp": 5, "tn": 95}},
        claimed_epsilon=8.0,
        delta=0.01,
        config=DpAuditConfig(significance=0.1),
    )
    expected = epsilon_lower_bound(tp=90, fn=10, fp=5, tn=95, delta=0.01, significance=0.1)
    assert out["max_lower_bound"] == pytest.approx(expected)
    assert out["violation"] is False and out["message"].startswith("consistent")


def test_one_run_uses_bonferroni_over_the_grid():
    # 100 canaries, the first 50 included; scores rank all included canaries first.
    inclusion = np.arange(100) < 50
    scores = inclusion.astype(float) + np.linspace(0, 0.1, 100)
    config = DpAuditConfig(guess_fractions=(0.1, 0.5))
    out = dp_audit.run(canary_scores=scores, canary_inclusion=inclusion, claimed_epsilon=None, delta=0.0, config=config)
    (bound,) = out["bounds"]
    assert bound["heuristic"] is False
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
    out = dp_audit.run(
        canary_scores=np.zeros(200), canary_inclusion=inclusion, claimed_epsilon=1.0, delta=0.0
    )
    assert out["max_lower_bound"] < 0.5


def test_guess_counts():
    assert guess_counts(num_canaries=100, fractions=(0.02, 0.05, 0.5)) == [2, 5, 50]
    assert guess_counts(num_canaries=10, fractions=(0.01, 0.05, 1.0)) == [1, 10]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="member_scores and nonmember_scores"):
        dp_audit.run(member_scores={"a": [1, 2]}, claimed_epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="canary_inclusion"):
        dp_audit.run(canary_scores=[1.0, 2.0], canary_inclusion=[1], claimed_epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="claimed_epsilon"):
        dp_audit.run(outcomes={}, claimed_epsilon=-1.0, delta=0.0)
    with pytest.raises(ValueError, match="lacks"):
        dp_audit.run(outcomes={"x": {"tp": 1}}, claimed_epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="finite"):
        dp_audit.run(member_scores={"a": [1, np.nan]}, nonmember_scores={"a": [1, 2]}, claimed_epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="guess_fractions"):
        DpAuditConfig(guess_fractions=(0.0,))


def test_no_evidence():
    out = dp_audit.run(claimed_epsilon=1.0, delta=1e-5)
    assert out["bounds"] == [] and out["max_lower_bound"] == 0.0 and out["violation"] is False


def test_group_delta_by_hand():
    # k = 4, eps = 1, delta = 1e-5: 4 * e^3 * 1e-5 = 8.0342e-4
    assert dp_audit.group_delta(delta=1e-5, copies=4, epsilon=1.0) == pytest.approx(4 * math.exp(3) * 1e-5)
    assert dp_audit.group_delta(delta=1e-5, copies=1, epsilon=1.0) == 1e-5
    assert dp_audit.group_delta(delta=1e-5, copies=16, epsilon=None) == 1e-5
    assert dp_audit.group_delta(delta=0.1, copies=16, epsilon=2.0) == 1.0


def test_multi_copy_canaries_give_a_per_record_group_bound():
    inclusion = np.arange(100) < 50
    scores = inclusion.astype(float)
    config = DpAuditConfig(guess_fractions=(0.5,))
    out = dp_audit.run(
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
        dp_audit.run(canary_scores=scores, canary_inclusion=inclusion, canary_copies=0, claimed_epsilon=1.0, delta=0.0)


def test_signals_must_score_the_same_records():
    with pytest.raises(ValueError, match="same records"):
        dp_audit.run(
            member_scores={"a": np.zeros(10), "b": np.zeros(12)},
            nonmember_scores={"a": np.zeros(10), "b": np.zeros(10)},
            claimed_epsilon=1.0, delta=0.0,
        )


def test_one_run_max_attainable_by_hand():
    # Perfect attacker, delta = 0, every guess right: P[Bin(r, q) >= r] = q^r = s,
    # so eps_max = logit(s^(1/r)). m = 100 with 50 included, default grid of 6
    # k's (2, 5, 10, 20, 30, 50), each at 0.05 / 6; the best is k = 50:
    # q = (0.05/6)^(1/50) = e^(-4.78749/50) = 0.908690, eps = ln(0.908690/0.091310) = 2.2977.
    inclusion = np.arange(100) < 50
    out = dp_audit.run(canary_scores=np.zeros(100), canary_inclusion=inclusion, claimed_epsilon=8.0, delta=0.0)
    (bound,) = out["bounds"]
    assert bound["max_attainable"] == pytest.approx(2.2977, abs=1e-4)
    q = (0.05 / 6) ** (1 / 50)
    assert bound["max_attainable"] == pytest.approx(math.log(q / (1 - q)), abs=2e-5)
    assert out["max_attainable"] == bound["max_attainable"]
    # 2.30 < 8: no attacker could make this audit speak against the claim.
    assert out["power_note"].startswith("this audit cannot detect a violation above 2.298:")
    assert "cannot detect a violation above 2.298:" in out["message"]


def test_one_run_max_attainable_with_fewer_included_than_guesses():
    # 10 canaries, 3 included, grid k = 5 only: a perfect attacker gets 3 of 5.
    # delta = 0: at eps = 0 (q = 1/2) p = P[Bin(5, 1/2) >= 3] = (10 + 5 + 1) / 32 = 0.5,
    # not below 0.05: 3 right of 5 proves nothing, so even a perfect attacker reports 0.
    from attacks.bounds import one_run_max_attainable
    assert one_run_max_attainable(num_canaries=10, num_guesses=5, num_included=3, significance=0.05) == 0.0
    # 60 included, k = 50: all 50 right, so logit(0.05^(1/50)).
    assert one_run_max_attainable(num_canaries=100, num_guesses=50, num_included=60, significance=0.05) == \
        pytest.approx(math.log(0.05 ** (1 / 50) / (1 - 0.05 ** (1 / 50))), abs=2e-5)


def test_mia_max_attainable_by_hand():
    # tp = n_m, fp = 0: FNR_hat = 1 - (s/2)^(1/n_m), FPR_hat = 1 - (s/2)^(1/n_n).
    # n_m = n_n = 100, s = 0.05, delta = 0: ln(0.963783) - ln(0.036217) = 3.2814.
    from attacks.bounds import max_attainable_epsilon
    assert max_attainable_epsilon(n_members=100, n_nonmembers=100) == pytest.approx(3.2814, abs=1e-4)
    # n_m = 250, n_n = 250, delta = 1e-5: (0.025)^(1/250) = 0.985351,
    # ln(0.985351 - 1e-5) - ln(0.014649) = 4.2087
    assert max_attainable_epsilon(n_members=250, n_nonmembers=250, delta=1e-5) == pytest.approx(4.2087, abs=1e-4)
    a = 0.025 ** (1 / 250)
    assert max_attainable_epsilon(n_members=250, n_nonmembers=250, delta=1e-5) == pytest.approx(
        math.log(a - 1e-5) - math.log(1 - a))


def test_valid_bounds_are_bonferroni_corrected_across_bounds_and_guess_counts():
    # Two valid bounds (an outcome and the one-run audit) share significance 0.05:
    # each gets 0.025, and the one-run audit splits its share over its 2 k's: 0.0125.
    inclusion = np.arange(100) < 50
    scores = inclusion.astype(float)
    counts = {"tp": 90, "fn": 10, "fp": 5, "tn": 95}
    out = dp_audit.run(
        member_scores={"loss": np.ones(40)}, nonmember_scores={"loss": np.zeros(40)},
        outcomes={"ext": counts}, canary_scores=scores, canary_inclusion=inclusion,
        claimed_epsilon=1.0, delta=0.0, config=DpAuditConfig(guess_fractions=(0.1, 0.5)),
    )
    assert out["correction"] == {"method": "bonferroni", "family_size": 2, "per_bound_significance": 0.025}
    mia, outcome, one_run = out["bounds"]
    assert mia["heuristic"] and mia["significance"] == 0.05  # the heuristic bound is not in the family
    assert outcome["significance"] == 0.025 and one_run["significance"] == 0.025
    assert outcome["epsilon_lower_bound"] == pytest.approx(epsilon_lower_bound(**counts, significance=0.025))
    assert one_run["details"]["per_test_significance"] == 0.0125
    # all 50 right at 0.0125: q = e^(ln 0.0125 / 50) = e^(-0.0876406) = 0.916090, ln(q / (1 - q)) = 2.3904;
    # uncorrected across bounds (0.05 / 2 per k) it would be 2.5696
    assert one_run["epsilon_lower_bound"] == pytest.approx(
        one_run_epsilon(num_canaries=100, num_guesses=50, num_correct=50, significance=0.0125))
    q = 0.0125 ** (1 / 50)
    assert one_run["epsilon_lower_bound"] == pytest.approx(math.log(q / (1 - q)), abs=2e-5)
    assert one_run["epsilon_lower_bound"] == pytest.approx(2.3904, abs=1e-4)
    assert out["max_lower_bound"] == pytest.approx(max(outcome["epsilon_lower_bound"], one_run["epsilon_lower_bound"]))
    assert out["violation"] is True  # 2.12 > 1 from valid bounds only


def test_bonferroni_keeps_the_family_error_rate_under_null():
    # Under the null (scores independent of inclusion, claim eps = 0), the family
    # of 3 valid bounds must exceed 0 in at most ~5% of runs. 400 runs, each with
    # 3 one-sided-null outcomes and a one-run audit: the count stays below the
    # 99.9% binomial quantile of 400 x 0.05 (= 35).
    rng = np.random.default_rng(0)
    false = 0
    for seed in range(400):
        outcomes = {f"o{i}": dict(zip(("tp", "fn", "fp", "tn"),
                                      (int(x), 50 - int(x), int(y), 50 - int(y))))
                    for i, (x, y) in enumerate(rng.binomial(50, 0.5, size=(2, 2)))}
        out = dp_audit.run(outcomes=outcomes, canary_scores=rng.normal(size=60),
                        canary_inclusion=rng.integers(0, 2, size=60), claimed_epsilon=0.0, delta=0.0,
                        config=DpAuditConfig(seed=seed, guess_fractions=(0.1, 0.5)))
        false += out["violation"]
    assert out["correction"]["family_size"] == 3
    assert false <= 35


def test_canaries_needed_by_hand_and_saturation():
    from attacks.dp_audit import canaries_needed, perfect_one_run_epsilon
    config = DpAuditConfig()
    # delta = 0, m = 200 (100 included), grid 4, 10, 20, 40, 60, 100 at 0.05/6: the best is k = 100:
    # q = (0.05/6)^(1/100) = e^(-0.0478749) = 0.953253, ln(0.953253 / 0.046747) = 3.0151.
    assert perfect_one_run_epsilon(num_canaries=200, delta=0.0, config=config) == pytest.approx(3.0151, abs=1e-4)
    # m = 100 reaches 2.298 < 3, m = 200 reaches 3.015 > 3: 200 is the first doubling that does.
    assert canaries_needed(target_epsilon=3.0, delta=0.0, config=config) == 200
    # With delta = 1e-5 the 2 m delta term caps the audit near 5.7: a claim of 10 is out of reach.
    assert canaries_needed(target_epsilon=10.0, delta=1e-5, config=config) is None


def test_power_note_says_how_many_canaries_or_none():
    inclusion = np.arange(100) < 50
    out = dp_audit.run(canary_scores=inclusion.astype(float), canary_inclusion=inclusion, claimed_epsilon=3.0,
                    delta=0.0)
    assert out["canaries_needed"] == 200 and "about 200 audit canaries would" in out["power_note"]
    out = dp_audit.run(canary_scores=inclusion.astype(float), canary_inclusion=inclusion, claimed_epsilon=10.0,
                    delta=1e-5)
    assert out["canaries_needed"] is None and "no number of audit canaries would" in out["power_note"]
    out = dp_audit.run(canary_scores=inclusion.astype(float), canary_inclusion=inclusion, claimed_epsilon=1.0,
                    delta=0.0)
    assert out["power_note"] is None and out["canaries_needed"] is None  # 2.30 >= 1: the audit can speak
