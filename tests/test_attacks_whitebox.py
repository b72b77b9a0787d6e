"""attacks.whitebox: the per-step estimates and bounds, against hand-computed values.

Quantiles from tables: z_0.05 = 1.644854, z_0.1 = 1.281552, chi2_0.05(1) = 0.0039321,
chi2_0.1(3) = 0.5843744.
"""

import math

import numpy as np
import pytest
from scipy import stats

from attacks.whitebox import estimate_step, sd_upper, shift_lower


def test_shift_lower_by_hand():
    # d = 2 - 0.5; se = sqrt(1/3 + 0.5/2) = 0.7637626
    d, lo = shift_lower(included=np.array([1.0, 2.0, 3.0]), held_out=np.array([0.0, 1.0]), alpha=0.05)
    assert d == pytest.approx(1.5)
    assert lo == pytest.approx(1.5 - 1.644854 * 0.7637626, abs=1e-5)


def test_sd_upper_by_hand():
    s, hi = sd_upper(np.array([1.0, 3.0]), alpha=0.05)
    assert s == pytest.approx(math.sqrt(2.0))
    assert hi == pytest.approx(math.sqrt(2.0 / 0.0039321), rel=1e-4)  # 22.553


def test_estimate_step_by_hand():
    est = estimate_step(included=np.array([1.0, 2.0, 3.0]), held_out=np.array([0.0, 1.0, 0.0, 1.0]), hits=3,
                        trials=30, alpha=0.3)
    # held-out sd = sqrt(1/3); mu = 1.5 / 0.5773503
    assert est.mu == pytest.approx(1.5 / math.sqrt(1 / 3))
    assert est.shift == pytest.approx(1.5) and est.noise_sd == pytest.approx(math.sqrt(1 / 3))
    # each bound at alpha / 3 = 0.1: d_lo = 1.5 - 1.281552 * sqrt(1/3 + 1/12); sd_hi = sqrt(1 / 0.5843744)
    d_lo = 1.5 - 1.281552 * math.sqrt(1 / 3 + 1 / 12)
    assert est.mu_lower == pytest.approx(d_lo / math.sqrt(1 / 0.5843744), abs=1e-5)  # 0.51428
    assert est.sample_rate == pytest.approx(0.1)
    # Clopper-Pearson: the rate at which 3 or more hits in 30 trials has probability 0.1
    assert stats.binom.sf(2, 30, est.sample_rate_lower) == pytest.approx(0.1, abs=1e-9)
    assert (est.n_included, est.n_held_out, est.hits, est.trials) == (3, 4, 3, 30)


def test_noiseless_step_is_infinite_and_no_shift_is_zero():
    est = estimate_step(included=np.ones(4), held_out=np.zeros(4), hits=4, trials=40)
    assert est.mu == math.inf and est.mu_lower == math.inf
    est = estimate_step(included=np.array([0.0, 1.0]), held_out=np.array([0.0, 1.0, 0.0, 1.0]), hits=2, trials=20)
    assert est.mu == 0.0 and est.mu_lower == 0.0


def test_correct_mechanism_is_bounded_and_bugs_are_not():
    """Simulated steps: the bound stays below the truth; a doubled shift is seen."""
    rng = np.random.default_rng(0)
    sigma, n = 1.5, 20000
    for shift, truth in ((1.0, 1 / 1.5), (2.0, 2 / 1.5)):
        est = estimate_step(included=shift + sigma * rng.standard_normal(n), held_out=sigma * rng.standard_normal(n),
                            hits=n, trials=10 * n)
        assert est.mu_lower < truth < est.mu_lower * 1.1
        assert est.mu == pytest.approx(truth, rel=0.03)


def test_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        estimate_step(included=np.ones(3), held_out=np.ones(3), hits=1, trials=3, alpha=1.0)
    with pytest.raises(ValueError, match="two"):
        shift_lower(included=np.ones(1), held_out=np.ones(3), alpha=0.05)
