import math

import numpy as np
import pytest
from scipy import stats

from canaries.exposure import exposure_exact, exposure_extrapolation, exposure_interpolation

REFS = [1.0, 2.0, 3.0, 4.0]


def test_interpolation_below_all_references_is_log2_n():
    assert exposure_interpolation({1: [0.5]}, REFS) == {1: [2.0]}


def test_interpolation_ties_count_against_the_secret():
    # rank = 1 + #{1, 2} = 3
    out = exposure_interpolation({1: [2.0, 2.5]}, REFS)
    assert out[1] == pytest.approx([2 - math.log2(3), 2 - math.log2(3)])


def test_interpolation_above_all_references_is_negative():
    out = exposure_interpolation({4: [10.0]}, REFS)
    assert out[4] == pytest.approx([2 - math.log2(5)])


def test_interpolation_keeps_keys_and_input_order():
    out = exposure_interpolation({16: [10.0, 0.5, 3.0], 1: [1.0]}, [4.0, 3.0, 1.0, 2.0])
    assert list(out) == [16, 1]
    assert out[16] == pytest.approx([2 - math.log2(5), 2.0, 2 - math.log2(4)])
    assert out[1] == pytest.approx([2 - math.log2(2)])


def test_exact_rank_includes_the_secret_itself():
    space = [1.0, 2.0, 2.0, 3.0]
    out = exposure_exact({1: [1.0, 2.0, 3.0]}, space)
    assert out[1] == pytest.approx([2.0, 2 - math.log2(3), 0.0])


def test_exact_rejects_a_secret_outside_the_space():
    with pytest.raises(ValueError, match="below every element"):
        exposure_exact({1: [0.0]}, [1.0, 2.0])


def test_bad_references_are_named():
    with pytest.raises(ValueError, match="non-empty"):
        exposure_interpolation({1: [1.0]}, [])
    with pytest.raises(ValueError, match="NaN"):
        exposure_interpolation({1: [1.0]}, [1.0, float("nan")])
    with pytest.raises(ValueError, match="-inf"):
        exposure_exact({1: [1.0]}, [1.0, -math.inf])
    with pytest.raises(ValueError, match="3 distinct finite"):
        exposure_extrapolation({1: [1.0]}, [1.0, 1.0, 2.0, math.inf])


def test_impossible_candidates_rank_last_and_count():
    # +inf: probability 0 under the grammar. N = 4, rank of 2.0 = 2.
    assert exposure_exact({1: [2.0]}, [1.0, 2.0, math.inf, math.inf])[1] == pytest.approx([1.0])
    assert exposure_interpolation({1: [0.5]}, [1.0, math.inf, math.inf, math.inf])[1] == [2.0]


def test_extrapolation_matches_normal_tail_for_normal_references():
    refs = np.random.default_rng(0).standard_normal(20000)
    out = exposure_extrapolation({1: [-3.0, 0.0, 3.0]}, refs)
    expected = [-math.log2(stats.norm.cdf(x)) for x in (-3.0, 0.0, 3.0)]
    assert out[1] == pytest.approx(expected, abs=0.15)


def test_extrapolation_is_finite_and_monotone_far_in_the_tail():
    refs = np.random.default_rng(1).standard_normal(2000) * 2 + 40
    out = exposure_extrapolation({1: [0.0, 10.0, 30.0, 40.0]}, refs)[1]
    assert all(math.isfinite(x) for x in out)
    assert out[0] > out[1] > out[2] > out[3] > 0
    assert out[0] > 100  # far beyond log2(2000): the point of extrapolating
