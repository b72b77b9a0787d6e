"""auditor.quality: metrics against hand-computed values, and the audit's shape and behaviour."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.quality import (
    QualityConfig,
    contingency_similarity,
    correlation_similarity,
    ks_similarity,
    length_similarity,
    run,
    tv_similarity,
    vocabulary_overlap,
)


def test_ks_similarity_hand_computed():
    # ECDFs of {1,2,3,4} and {3,4,5,6} differ most at x in [2, 3): 0.5 - 0 = 0.5
    assert ks_similarity([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(0.5)
    assert ks_similarity([1, 2], [5, 6]) == pytest.approx(0.0)
    assert ks_similarity([1, 2, 3], [3, 2, 1]) == pytest.approx(1.0)


def test_tv_similarity_hand_computed():
    # p = (a .5, b .5), q = (a .25, b .75): TV = (.25 + .25) / 2
    assert tv_similarity("aabb", "abbb") == pytest.approx(0.75)
    # a category only on one side counts fully: p = (a 1), q = (a .5, c .5): TV = (.5 + .5) / 2
    assert tv_similarity("aa", "ac") == pytest.approx(0.5)


def test_correlation_similarity_hand_computed():
    assert correlation_similarity([1, 2, 3], [1, 2, 3], [1, 2, 3], [3, 2, 1]) == pytest.approx(0.0)
    assert correlation_similarity([1, 2, 3], [1, 2, 3], [1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    # rho_real = 1, rho_syn = 0 (x = 1,2,3; y = 1,0,1 -> cov 0): 1 - 1/2
    assert correlation_similarity([1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 0, 1]) == pytest.approx(0.5)
    assert correlation_similarity([1, 1, 1], [1, 2, 3], [1, 2, 3], [1, 2, 3]) is None


def test_contingency_similarity_hand_computed():
    # real: (a,x) .5, (b,y) .5; synthetic: (a,x) .25, (a,y) .25, (b,y) .5 -> TV = (.25 + .25) / 2
    assert contingency_similarity("aabb", "xxyy", "aabb", "xyyy") == pytest.approx(0.75)


def test_text_scores_hand_computed():
    # words: real the .5 cat .25 dog .25; synthetic the .5 cat .5 -> 1 - (.25 + .25) / 2
    assert vocabulary_overlap(["The cat", "the dog"], ["the cat"]) == pytest.approx(0.75)
    assert vocabulary_overlap(["a b"], [None]) == 0.0
    # lengths {2, 2} vs {2, 4}: ECDFs differ by .5 on [2, 4)
    assert length_similarity(["a b", "c d"], ["a b", "c d e f"]) == pytest.approx(0.5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=30), st.lists(st.integers(-5, 5), min_size=1, max_size=30))
def test_scores_lie_in_the_unit_interval_and_are_symmetric(a, b):
    for metric in (ks_similarity, tv_similarity):
        value = metric(a, b)
        assert 0.0 <= value <= 1.0
        assert value == pytest.approx(metric(b, a))
        assert metric(a, a) == pytest.approx(1.0)


def test_empty_samples_are_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        ks_similarity([], [1])
    with pytest.raises(ValueError, match="non-empty"):
        tv_similarity([1], [])


KINDS = {"age": "numeric", "income": "numeric", "dx": "categorical", "visit": "datetime", "notes": "text",
         "ssn": "pattern"}
FAST = QualityConfig(tstr_iterations=10)


def _frame(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + shift, 10, n).round()
    return pd.DataFrame({
        "age": age,
        "income": age * 1000 + rng.normal(0, 4000, n),
        "dx": np.where(age + rng.normal(0, 4, n) > 45, "flu", "cold"),
        "visit": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")).strftime("%Y-%m-%d"),
        "notes": [f"reports {w} pain" for w in rng.choice(["mild", "severe", "no"], n)],
        "ssn": [f"{x:03d}-00-0000" for x in rng.integers(0, 999, n)],
    })


def test_identical_data_scores_one():
    train = _frame(300, 0)
    out = run(synthetic=train, train=train, holdout=_frame(150, 1), column_kinds=KINDS, target="dx", config=FAST)
    assert out["fidelity"] == pytest.approx(1.0)
    assert set(out["column_shapes"]) == {"age", "income", "dx", "visit", "notes"}
    assert all(v == pytest.approx(1.0) for v in out["column_shapes"].values())
    assert "ssn" in out["skipped_columns"]
    assert out["tstr"]["ratio"] == pytest.approx(1.0)
    assert out["validity"] is None


def test_fidelity_is_the_mean_of_shapes_and_pair_trends():
    out = run(synthetic=_frame(300, 2, shift=8), train=_frame(300, 0), holdout=_frame(150, 1),
              column_kinds=KINDS, target=None, config=FAST)
    shapes = np.mean(list(out["column_shapes"].values()))
    pairs = np.mean([p["score"] for p in out["pair_trends"]["pairs"]])
    assert out["pair_trends"]["score"] == pytest.approx(pairs)
    assert out["fidelity"] == pytest.approx((shapes + pairs) / 2)
    assert out["fidelity"] < out["reference_fidelity"] <= 1.0
    assert out["tstr"] is None
    methods = {tuple(p["columns"]): p["method"] for p in out["pair_trends"]["pairs"]}
    assert methods[("age", "income")] == "correlation" and methods[("age", "dx")] == "contingency"
    assert len(methods) == 6  # 4 compared columns (text and pattern excluded)


def test_tstr_drops_when_the_synthetic_target_is_noise():
    train, holdout = _frame(400, 0), _frame(200, 1)
    noisy = train.copy()
    noisy["dx"] = np.random.default_rng(3).permutation(noisy["dx"].to_numpy())
    out = run(synthetic=noisy, train=train, holdout=holdout, column_kinds=KINDS, target="dx", config=FAST)
    t = out["tstr"]
    assert t["metric"] == "balanced_accuracy" and t["real"] > 0.75
    assert t["synthetic"] < t["real"] and t["ratio"] == pytest.approx(t["synthetic"] / t["real"])


def test_tstr_single_class_and_regression():
    train, holdout = _frame(200, 0), _frame(100, 1)
    one_class = train.assign(dx="flu")
    t = run(synthetic=one_class, train=train, holdout=holdout, column_kinds=KINDS, target="dx", config=FAST)["tstr"]
    assert t["synthetic"] == pytest.approx(0.5)  # constant prediction: balanced accuracy of one class in two
    reg = run(synthetic=train, train=train, holdout=holdout, column_kinds=KINDS, target="income", config=FAST)["tstr"]
    assert reg["metric"] == "r2" and 0.0 <= reg["synthetic"] <= 1.0


def test_empty_holdout_skips_reference_and_tstr():
    train = _frame(100, 0)
    out = run(synthetic=train, train=train, holdout=train.iloc[:0], column_kinds=KINDS, target="dx", config=FAST)
    assert out["reference_fidelity"] is None and out["tstr"] is None


@pytest.mark.parametrize("kwargs, message", [
    ({"column_kinds": {"nope": "numeric"}}, "synthetic lacks column"),
    ({"column_kinds": {"age": "float"}}, "unknown kind"),
    ({"column_kinds": {}}, "column_kinds is empty"),
    ({"target": "missing"}, "target 'missing' is not one of the columns"),
    ({"target": "notes"}, "must be categorical or numeric"),
    ({"config": {"bins": 1}}, "bins must be >= 2"),
    ({"config": {"bin": 3}}, "unknown key"),
    ({"config": 3}, "must be a QualityConfig"),
    ({"synthetic": [[1]]}, "synthetic must be a pandas DataFrame"),
])
def test_bad_input_is_a_clear_value_error(kwargs, message):
    frame = _frame(20, 0)
    args = {"synthetic": frame, "train": frame, "holdout": frame, "column_kinds": KINDS, "target": None,
            "config": FAST}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        run(**args)
