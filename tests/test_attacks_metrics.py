"""MIA metrics against hand-computed values."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attacks.metrics import (
    TOO_FEW_NONMEMBERS,
    advantage,
    auc,
    auc_confidence_interval,
    log_roc_points,
    roc,
    summarize,
    tpr_at_fpr,
)


def test_auc_by_hand():
    assert auc([3, 4], [1, 2]) == 1.0
    assert auc([1, 2], [3, 4]) == 0.0
    # Pairs (member, nonmember): (1,2) lose, (1,4) lose, (3,2) win, (3,4) lose -> 1/4.
    assert auc([1, 3], [2, 4]) == pytest.approx(0.25)
    # A tie counts 1/2: (2,2) tie, (2,1) win -> (0.5 + 1) / 2.
    assert auc([2], [2, 1]) == pytest.approx(0.75)


def test_roc_tpr_at_fpr_and_advantage_by_hand():
    member = [0.9, 0.8, 0.4, 0.3]
    nonmember = [0.7, 0.2, 0.1, 0.05]
    fpr, tpr = roc(member, nonmember)
    # Threshold 0.8 -> TPR 2/4, FPR 0; 0.7 -> 2/4, 1/4; 0.3 -> 4/4, 1/4.
    assert tpr_at_fpr(fpr, tpr, target=0.0001) == pytest.approx(0.5)
    assert tpr_at_fpr(fpr, tpr, target=0.25) == pytest.approx(1.0)
    # max(TPR - FPR) = 1 - 1/4 at threshold 0.3.
    assert advantage(fpr, tpr) == pytest.approx(0.75)


def test_summarize_reports_too_few_nonmembers():
    rng = np.random.default_rng(0)
    out = summarize(rng.normal(1, 1, 300), rng.normal(0, 1, 150), n_bootstrap=50)
    # 150 non-members resolve FPR 1% (needs 100) and 10%, not 0.1% (needs 1000).
    assert out["tpr_at_fpr"]["0.001"] is None
    assert out["tpr_note"]["0.001"] == TOO_FEW_NONMEMBERS
    assert out["tpr_note"]["0.01"] is None and out["tpr_at_fpr"]["0.01"] is not None
    assert out["auc_ci"][0] <= out["auc"] <= out["auc_ci"][1]
    assert 0.6 < out["auc"] < 0.9  # d' = 1 gives AUC = Phi(1 / sqrt 2) = 0.76
    assert all(f > 0 for f in out["roc"]["fpr"])


def test_auc_interval_contains_truth_for_separated_normals():
    rng = np.random.default_rng(1)
    lo, hi = auc_confidence_interval(rng.normal(1, 1, 2000), rng.normal(0, 1, 2000), n_bootstrap=200)
    truth = 0.5 * (1 + math.erf(1 / 2))  # Phi(1/sqrt 2)
    assert lo < truth < hi and hi - lo < 0.05


def test_log_roc_points_thins_on_the_curve():
    rng = np.random.default_rng(2)
    fpr, tpr = roc(rng.normal(1, 1, 3000), rng.normal(0, 1, 3000))
    xs, ys = log_roc_points(fpr, tpr, max_points=50)
    assert 2 <= len(xs) <= 50
    assert all(np.diff(xs) > 0) and all(np.diff(ys) >= 0)
    for x, y in zip(xs, ys):
        assert y == pytest.approx(tpr_at_fpr(fpr, tpr, target=x))


def test_bad_scores_are_named():
    with pytest.raises(ValueError, match="nonmember: no scores"):
        auc([1.0], [])
    with pytest.raises(ValueError, match="member: scores must be finite"):
        auc([float("nan")], [1.0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=30),
    st.lists(st.floats(-5, 5), min_size=1, max_size=30),
)
def test_auc_symmetry_and_bounds(member, nonmember):
    a = auc(member, nonmember)
    assert 0 <= a <= 1 and not math.isnan(a)
    assert a + auc(nonmember, member) == pytest.approx(1.0)
