"""auditor.quality: metrics against hand-computed values, and the audit's shape and behaviour."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.quality import (
    QualityConfig,
    conditional_mean_errors,
    contingency_similarity,
    correlation_similarity,
    ks_similarity,
    length_similarity,
    macro_ovr_auc,
    rare_category_shares,
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
    assert t["auc"]["synthetic"] == pytest.approx(0.5)  # constant scores rank nothing
    assert t["balanced_accuracy"]["synthetic"] == t["synthetic"] and t["classes"] == 2
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
    ({"config": {"rare_share": 1.0}}, "rare_share must lie in"),
    ({"config": {"min_support": 0}}, "min_support must be >= 1"),
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


def test_macro_ovr_auc_hand_computed():
    # class a: positives score {.9, .4}, negatives {.6, .1}: 3 of 4 pairs ordered -> .75; b = 1 - a -> .75
    y = ["a", "a", "b", "b"]
    a = [0.9, 0.4, 0.6, 0.1]
    assert macro_ovr_auc(y, {"a": a, "b": [1 - v for v in a]}) == pytest.approx(0.75)
    # a class the model never learned scores 0 everywhere: AUC 1/2 -> (.75 + .5) / 2
    assert macro_ovr_auc(y, {"a": a}) == pytest.approx(0.625)
    # a class the holdout lacks (c) is not averaged; three separable classes -> 1
    assert macro_ovr_auc(["a", "b", "d"], {"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 0], "d": [0, 0, 1]}) == 1.0
    assert macro_ovr_auc(["a", "a"], {"a": [0.1, 0.2]}) is None


def test_rare_category_shares_hand_computed():
    # real: 6 yes in 100 (6%); synthetic: 6 in 200 (3%): halved -> ratio .5, error .5; "no" (94%) is not rare
    real = ["no"] * 94 + ["yes"] * 6
    syn = ["no"] * 194 + ["yes"] * 6
    assert rare_category_shares(real, syn, rare_share=0.1, min_support=5) == [
        {"category": "yes", "real": 0.06, "synthetic": 0.03, "ratio": 0.5, "error": 0.5}]
    # lost entirely -> error 1; below min_support -> not listed
    assert rare_category_shares(real, ["no"] * 10, rare_share=0.1, min_support=5)[0]["error"] == 1.0
    assert rare_category_shares(real, syn, rare_share=0.1, min_support=7) == []
    with pytest.raises(ValueError, match="non-empty"):
        rare_category_shares([], syn, rare_share=0.1, min_support=1)


def test_conditional_mean_errors_hand_computed():
    # real x = 1, 3 | a; 5, 7 | b; 9, 9 | c. Population sd: E[x^2] - E[x]^2 = 246 / 6 - (34 / 6)^2 = 80 / 9
    real_g, real_x = ["a", "a", "b", "b", "c", "c"], [1, 3, 5, 7, 9, 9]
    sd = np.sqrt(80 / 9)
    # synthetic: a mean 3 (real 2), b mean 10 (real 6), c never produced, d (no real rows) ignored
    found, missing = conditional_mean_errors(real_g, real_x, ["a", "a", "b", "d"], [2, 4, 10, 0], min_support=2)
    assert [(e["category"], e["support"]) for e in found] == [("a", 2), ("b", 2)]
    assert found[0]["error"] == pytest.approx(1 / sd) and found[1]["error"] == pytest.approx(4 / sd)
    assert (found[1]["real_mean"], found[1]["synthetic_mean"]) == (6.0, 10.0)
    assert missing == ["c"]
    assert conditional_mean_errors(real_g, real_x, real_g, real_x, min_support=3) == ([], [])  # support 2 < 3
    assert conditional_mean_errors(["a", "a"], [4, 4], ["a"], [5], min_support=1) == ([], [])  # constant x


RARE = {"x": "numeric", "y": "categorical"}


def _rare_table(n_no, n_yes):
    """x in [0, .5) for "no", x in [.9, 1) for "yes": a threshold separates the classes exactly."""
    return pd.DataFrame({"x": np.concatenate([np.arange(n_no) / (2 * n_no), 0.9 + np.arange(n_yes) / (10 * n_yes)]),
                         "y": ["no"] * n_no + ["yes"] * n_yes})


def test_a_synthesizer_halving_the_rare_class_is_caught():
    # 4% rare class: 480 no + 20 yes. The synthesizer keeps the relation but makes 20 yes in 1000 (2%).
    train, holdout = _rare_table(480, 20), _rare_table(96, 4)
    halved = _rare_table(980, 20)
    out = run(synthetic=halved, train=train, holdout=holdout, column_kinds=RARE, target="y", config=FAST)
    t = out["tstr"]
    assert t["real"] == 1.0 and t["auc"]["real"] == 1.0
    assert t["ratio"] == 1.0 and t["auc"]["ratio"] == 1.0  # TSTR alone does not see it ...
    worst = out["rare_categories"]["worst"]
    assert (worst["column"], worst["category"]) == ("y", "yes")  # ... the rare share does
    assert worst["real"] == pytest.approx(0.04) and worst["synthetic"] == pytest.approx(0.02)
    assert worst["ratio"] == pytest.approx(0.5) and worst["error"] == pytest.approx(0.5)
    kept = run(synthetic=train, train=train, holdout=holdout, column_kinds=RARE, target="y", config=FAST)
    assert kept["rare_categories"]["worst"]["error"] == 0.0 and kept["conditional_means"]["worst"]["error"] == 0.0


def test_tstr_learns_a_rare_class_with_balanced_weights():
    # 3% rare class, x ~ N(3, 1) against N(0, 1): the balanced Bayes rule (threshold 1.5) reaches
    # Phi(1.5) = .933 balanced accuracy; a booster that ignores the imbalance stays near .72 here.
    def frame(n, seed):
        rng = np.random.default_rng(seed)
        rare = rng.random(n) < 0.03
        return pd.DataFrame({"x": rng.normal(np.where(rare, 3.0, 0.0), 1.0), "y": np.where(rare, "yes", "no")})
    train, holdout = frame(2000, 0), frame(2000, 1)
    t = run(synthetic=train, train=train, holdout=holdout, column_kinds=RARE, target="y",
            config=QualityConfig(tstr_iterations=30))["tstr"]
    assert t["real"] > 0.85 and t["auc"]["real"] > 0.93


def test_conditional_means_report_the_worst_pair():
    train = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 6, "x": [0.0] * 6 + [2.0] * 6, "z": list(range(12))})
    syn = train.assign(x=[0.0] * 6 + [1.0] * 6)  # E[x | b] 2 -> 1; sd_real(x) = 1 -> error 1
    out = run(synthetic=syn, train=train, holdout=train.iloc[:0], column_kinds={"g": "categorical", "x": "numeric",
              "z": "numeric"}, target=None, config=FAST)["conditional_means"]
    assert out["worst"] == {"column": "g", "numeric": "x", "category": "b", "real_mean": 2.0, "synthetic_mean": 1.0,
                            "support": 6, "error": 1.0}
    assert out["n_scored"] == 4 and out["mean"] == pytest.approx(0.25) and out["missing"] == []
