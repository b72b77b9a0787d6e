"""Epsilon lower bounds and binomial intervals against hand-computed values."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from attacks.bounds import epsilon_lower_bound, one_run_epsilon, one_run_p_value
from attacks.intervals import (
    clopper_pearson_interval,
    clopper_pearson_lower,
    clopper_pearson_upper,
)


def test_clopper_pearson_zero_successes_has_closed_form():
    # With k = 0 the upper bound solves (1 - p)^n = alpha: p = 1 - alpha^(1/n).
    assert clopper_pearson_upper(successes=0, trials=100, alpha=0.025) == pytest.approx(
        1 - 0.025 ** (1 / 100), rel=1e-9
    )
    # With k = n the lower bound solves p^n = alpha: p = alpha^(1/n).
    assert clopper_pearson_lower(successes=20, trials=20, alpha=0.05) == pytest.approx(
        0.05 ** (1 / 20), rel=1e-9
    )


def test_clopper_pearson_edges_and_interval():
    assert clopper_pearson_upper(successes=5, trials=5, alpha=0.05) == 1.0
    assert clopper_pearson_lower(successes=0, trials=5, alpha=0.05) == 0.0
    assert clopper_pearson_upper(successes=0, trials=0, alpha=0.05) == 1.0
    lo, hi = clopper_pearson_interval(successes=50, trials=100, confidence=0.95)
    # Known textbook value for 50/100: (0.3983, 0.6017).
    assert lo == pytest.approx(0.3983, abs=1e-4)
    assert hi == pytest.approx(0.6017, abs=1e-4)


def test_clopper_pearson_rejects_bad_input():
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson_upper(successes=6, trials=5, alpha=0.05)
    with pytest.raises(ValueError, match="alpha"):
        clopper_pearson_upper(successes=1, trials=5, alpha=1.5)
    with pytest.raises(ValueError, match="confidence"):
        clopper_pearson_interval(successes=1, trials=5, confidence=0)


def test_epsilon_lower_bound_perfect_attack():
    # tp=100, fn=0, fp=0, tn=100; each rate bounded at 0.05/2:
    # FNR_hat = FPR_hat = 1 - 0.025^(1/100) = 0.036209...
    # eps = ln(1 - 0.036209) - ln(0.036209) = 3.2815...
    rate = 1 - 0.025 ** (1 / 100)
    expected = math.log(1 - rate) - math.log(rate)
    assert expected == pytest.approx(3.2815, abs=1e-3)
    assert epsilon_lower_bound(tp=100, fn=0, fp=0, tn=100) == pytest.approx(expected, rel=1e-9)


def test_epsilon_lower_bound_with_delta_and_beta_quantiles():
    # tp=90, fn=10, fp=5, tn=95, delta=0.01, significance 0.1 -> each tail 0.05.
    fnr_hat = stats.beta.ppf(0.95, 11, 90)
    fpr_hat = stats.beta.ppf(0.95, 6, 95)
    expected = math.log(1 - fnr_hat - 0.01) - math.log(fpr_hat)
    got = epsilon_lower_bound(tp=90, fn=10, fp=5, tn=95, delta=0.01, significance=0.1)
    assert got == pytest.approx(expected, rel=1e-9)
    # Two-sided: the reverse direction ln(1 - FPR_hat - delta) - ln(FNR_hat) is
    # larger here (FNR 10% vs FPR 5%), so the bound grows.
    reverse = math.log(1 - fpr_hat - 0.01) - math.log(fnr_hat)
    two = epsilon_lower_bound(tp=90, fn=10, fp=5, tn=95, delta=0.01, significance=0.1, two_sided=True)
    assert two == pytest.approx(max(expected, reverse), rel=1e-9)


def test_epsilon_lower_bound_is_zero_for_useless_attacks():
    assert epsilon_lower_bound(tp=50, fn=50, fp=50, tn=50) == 0.0
    assert epsilon_lower_bound(tp=0, fn=0, fp=0, tn=0) == 0.0
    # 1 - FNR_hat <= delta: no bound whatever the false positives.
    assert epsilon_lower_bound(tp=1, fn=9, fp=0, tn=1000, delta=0.9) == 0.0


def test_epsilon_lower_bound_rejects_bad_input():
    with pytest.raises(ValueError, match="fp"):
        epsilon_lower_bound(tp=1, fn=1, fp=-1, tn=1)
    with pytest.raises(ValueError, match="tp"):
        epsilon_lower_bound(tp=1.5, fn=1, fp=1, tn=1)
    with pytest.raises(ValueError, match="delta"):
        epsilon_lower_bound(tp=1, fn=1, fp=1, tn=1, delta=1.0)
    with pytest.raises(ValueError, match="significance"):
        epsilon_lower_bound(tp=1, fn=1, fp=1, tn=1, significance=0.0)


def test_one_run_all_correct_closed_form():
    # r = v = 10, delta = 0: p(eps) = q^10 < 0.05 <=> q < 0.05^(1/10);
    # eps* = ln(q* / (1 - q*)) = 1.0519...
    q_star = 0.05 ** (1 / 10)
    expected = math.log(q_star / (1 - q_star))
    got = one_run_epsilon(num_canaries=20, num_guesses=10, num_correct=10)
    assert got == pytest.approx(expected, abs=2e-5)
    assert got <= expected  # the lower end of the bisection bracket


def test_one_run_delta_term_closed_form():
    # m = r = v = 1, delta = 0.1, significance = 0.9:
    # p = q + 2 * 1 * 0.1 * P[Bin(1, q) = 0] / 1 = q + 0.2 (1 - q) < 0.9
    # <=> q < 0.7 / 0.8 = 0.875 <=> eps < ln(0.875 / 0.125) = ln 7.
    got = one_run_epsilon(num_canaries=1, num_guesses=1, num_correct=1, delta=0.1, significance=0.9)
    assert got == pytest.approx(math.log(7), abs=2e-5)


def test_one_run_p_value_matches_formula():
    # m=100, r=20, v=15, eps=1, delta=1e-3, computed term by term with scipy.
    q = math.exp(1) / (1 + math.exp(1))
    tail = stats.binom.sf(14, 20, q)
    spread = max(
        (stats.binom.cdf(14, 20, q) - stats.binom.cdf(15 - i - 1, 20, q)) / i for i in range(1, 16)
    )
    expected = tail + 2 * 100 * 1e-3 * spread
    got = one_run_p_value(epsilon=1.0, num_canaries=100, num_guesses=20, num_correct=15, delta=1e-3)
    assert got == pytest.approx(expected, rel=1e-9)


def test_one_run_zero_when_guessing_is_chance():
    assert one_run_epsilon(num_canaries=100, num_guesses=50, num_correct=25) == 0.0
    assert one_run_epsilon(num_canaries=100, num_guesses=0, num_correct=0) == 0.0


def test_one_run_rejects_bad_input():
    with pytest.raises(ValueError, match="num_guesses"):
        one_run_epsilon(num_canaries=5, num_guesses=6, num_correct=1)
    with pytest.raises(ValueError, match="num_correct"):
        one_run_epsilon(num_canaries=5, num_guesses=3, num_correct=4)
    with pytest.raises(ValueError, match="num_canaries"):
        one_run_epsilon(num_canaries=-1, num_guesses=0, num_correct=0)


counts = st.integers(min_value=0, max_value=300)


@settings(max_examples=60, deadline=None)
@given(tp=counts, fn=counts, fp=counts, tn=counts, extra=st.integers(1, 50), two_sided=st.booleans())
def test_epsilon_lower_bound_monotone_in_counts(tp, fn, fp, tn, extra, two_sided):
    base = epsilon_lower_bound(tp=tp, fn=fn, fp=fp, tn=tn)
    assert base >= 0 and math.isfinite(base)
    # More right answers never lower the one-sided bound; more errors never raise it.
    assert epsilon_lower_bound(tp=tp + extra, fn=fn, fp=fp, tn=tn) >= base - 1e-12
    assert epsilon_lower_bound(tp=tp, fn=fn, fp=fp, tn=tn + extra) >= base - 1e-12
    assert epsilon_lower_bound(tp=tp, fn=fn + extra, fp=fp, tn=tn) <= base + 1e-12
    assert epsilon_lower_bound(tp=tp, fn=fn, fp=fp + extra, tn=tn) <= base + 1e-12
    both = epsilon_lower_bound(tp=tp, fn=fn, fp=fp, tn=tn, two_sided=two_sided)
    assert both >= base - 1e-12 and math.isfinite(both)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 400),
    frac_r=st.floats(0, 1),
    frac_v=st.floats(0, 1),
    delta=st.sampled_from([0.0, 1e-5, 1e-3]),
)
def test_one_run_epsilon_monotone_in_correct(m, frac_r, frac_v, delta):
    r = int(frac_r * m)
    v = int(frac_v * r)
    base = one_run_epsilon(num_canaries=m, num_guesses=r, num_correct=v, delta=delta)
    assert base >= 0 and math.isfinite(base)
    if v < r:
        more = one_run_epsilon(num_canaries=m, num_guesses=r, num_correct=v + 1, delta=delta)
        assert more >= base - 2 * 1e-5


def test_difference_interval_is_the_corner_of_two_bonferroni_clopper_pearson_intervals():
    from attacks.intervals import difference_interval, two_rate_intervals

    # 0/10 and 10/10 have closed forms: upper(0/n) = 1 - a**(1/n), lower(n/n) = a**(1/n),
    # with a = 0.025 per tail here (confidence 0.9 split over two rates: 0.95 each, two-sided).
    edge = 0.025 ** 0.1
    (t_lo, t_hi), (c_lo, c_hi) = two_rate_intervals(train_successes=10, train_trials=10, control_successes=0,
                                                    control_trials=10, confidence=0.9)
    assert (t_lo, t_hi, c_lo, c_hi) == pytest.approx((edge, 1.0, 0.0, 1 - edge), abs=1e-9)
    lo, hi = difference_interval(train_successes=10, train_trials=10, control_successes=0, control_trials=10,
                                 confidence=0.9)
    assert lo == pytest.approx(2 * edge - 1, abs=1e-9) and hi == pytest.approx(1.0, abs=1e-9)
    assert difference_interval(train_successes=0, train_trials=10, control_successes=0, control_trials=10,
                               confidence=0.9) == pytest.approx([edge - 1, 1 - edge], abs=1e-9)
