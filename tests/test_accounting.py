"""Privacy accounting: epsilon recomputed from the record, noise search, DP domain selection."""

import numpy as np
import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from scipy.stats import norm

from auditor.dp.accounting import (default_delta, epsilon_of, noise_for_epsilon, select_domains,
                                   selection_threshold)


def test_default_delta_is_below_one_over_n():
    assert default_delta(2000) == 1e-5
    assert default_delta(50_000) == pytest.approx(2e-6)
    for n in (10, 100, 10_000, 10**7):
        assert default_delta(n) < 1 / n


def test_epsilon_matches_opacus_accountants():
    hist = [(1.1, 0.064, 300)]
    prv, rdp = PRVAccountant(), RDPAccountant()
    for _ in range(300):
        prv.step(noise_multiplier=1.1, sample_rate=0.064)
        rdp.step(noise_multiplier=1.1, sample_rate=0.064)
    assert epsilon_of(hist, delta=1e-5, accountant="prv") == pytest.approx(prv.get_epsilon(1e-5), rel=1e-9)
    assert epsilon_of(hist, delta=1e-5, accountant="rdp") == pytest.approx(rdp.get_epsilon(1e-5), rel=1e-9)


def test_noise_search_reaches_target_from_below():
    sigma = noise_for_epsilon(target_epsilon=4.0, delta=1e-5, sample_rate=0.05, steps=200)
    eps = epsilon_of([(sigma, 0.05, 200)], delta=1e-5)
    assert eps <= 4.0
    assert eps > 3.9
    # a prior mechanism costs budget: more noise is needed for the same target
    sigma2 = noise_for_epsilon(target_epsilon=4.0, delta=1e-5, sample_rate=0.05, steps=200, prior=[(4.0, 1.0, 1)])
    assert sigma2 > sigma
    assert epsilon_of([(4.0, 1.0, 1), (sigma2, 0.05, 200)], delta=1e-5) <= 4.0


def test_selection_threshold_formula():
    # tau = 1 + sigma * Phi^{-1}(1 - delta / k)
    assert selection_threshold(sigma=2.0, delta_selection=1e-6, columns=2) == pytest.approx(
        1 + 2.0 * norm.isf(5e-7))
    assert selection_threshold(sigma=2.0, delta_selection=1e-6, columns=2) == pytest.approx(1 + 2 * 4.8916, abs=1e-3)


def test_select_domains_keeps_frequent_drops_rare():
    rng = np.random.default_rng(0)
    col = ["flu"] * 500 + ["asthma"] * 300 + ["rare-one"] * 1 + [f"u{i}" for i in range(50)]
    other = ["x"] * 851
    domains, record = select_domains({"d": col, "o": other}, noise_multiplier=2.0, delta_selection=1e-6, rng=rng)
    assert set(domains["d"]) == {"flu", "asthma"}
    assert domains["o"] == ["x"]
    assert record["sigma"] == pytest.approx(2.0 * np.sqrt(2))
    assert record["threshold"] == pytest.approx(selection_threshold(sigma=2.0 * np.sqrt(2), delta_selection=1e-6,
                                                                    columns=2))
