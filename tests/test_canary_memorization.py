import pytest

from canaries.memorization import memorization_test, rank_test_p_value


def test_rank_test_exact_p_value():
    # U = 4 is the largest of C(4, 2) = 6 equally likely splits: p = 1/6.
    assert rank_test_p_value([3.0, 4.0], [1.0, 2.0]) == pytest.approx(1 / 6)
    # U = 1: P(U >= 1) = 5/6.
    assert rank_test_p_value([0.5, 1.5], [1.0, 2.0]) == pytest.approx(5 / 6)


def test_memorization_test_reports_smallest_detected_count():
    out = memorization_test({16: [3.0, 4.0], 1: [0.5, 1.5]}, [1.0, 2.0], alpha=0.2)
    assert [r["repetitions"] for r in out["by_repetition"]] == [1, 16]
    assert out["by_repetition"][0]["p_value"] == pytest.approx(5 / 6)
    assert out["by_repetition"][1]["p_value"] == pytest.approx(1 / 6)
    assert out["min_detected_repetitions"] == 16
    assert memorization_test({1: [0.5, 1.5]}, [1.0, 2.0])["min_detected_repetitions"] is None


def test_memorization_test_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        rank_test_p_value([], [1.0])
    with pytest.raises(ValueError, match="alpha"):
        memorization_test({1: [1.0]}, [1.0], alpha=0.0)
