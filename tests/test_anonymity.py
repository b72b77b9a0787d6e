"""Singling out, linkability and inference against a control (attacks.anonymity and its parts)."""

import json

import numpy as np
import pandas as pd
import pytest

from attacks.anonymity import AnonymityConfig, control_risk, run
from attacks.linkability import links, nearest_rows, split_columns
from attacks.singling_out import multivariate_predicates, predicate_from_row, predicate_mask, singled_out


def test_control_risk_by_hand():
    # 60 of 100 on train, 20 of 100 on control: excess 0.4, risk (0.6 - 0.2) / 0.8 = 0.5.
    out = control_risk(train_successes=60, train_trials=100, control_successes=20, control_trials=100)
    assert out["excess"] == pytest.approx(0.4) and out["risk"] == pytest.approx(0.5)
    # Corners of the 97.5% Clopper-Pearson intervals (Beta quantiles at 0.0125 and 0.9875):
    # train [Beta(60, 41), Beta(61, 40)] = [0.48314, 0.70919], control [Beta(20, 81), Beta(21, 80)]
    # = [0.11810, 0.30515]; excess_ci = [0.48314 - 0.30515, 0.70919 - 0.11810] = [0.17799, 0.59109],
    # risk_ci = [0.17799 / (1 - 0.30515), 0.59109 / (1 - 0.11810)] = [0.25616, 0.67025].
    assert out["excess_ci"] == pytest.approx([0.17799, 0.59109], abs=1e-5)
    assert out["risk_ci"] == pytest.approx([0.25616, 0.67025], abs=1e-5)
    # No difference: excess 0 and an interval around it.
    same = control_risk(train_successes=30, train_trials=100, control_successes=30, control_trials=100)
    assert same["excess"] == 0 and same["risk"] == 0 and same["risk_ci"][0] < 0 < same["risk_ci"][1]


# Canonical frame: numbers as floats, the rest as strings.
FRAME = pd.DataFrame({"age": [20.0, 35.0, 50.0, 65.0, np.nan], "city": ["a", "b", "a", "b", "a"]})


def test_predicates_by_hand():
    assert predicate_mask(FRAME, (("age", ">=", 50.0), ("city", "==", "a"))).tolist() == [False, False, True,
                                                                                          False, False]
    assert predicate_mask(FRAME, (("age", "missing", None),)).tolist() == [False] * 4 + [True]
    # Median of age is 42.5: 65 lies above it, so the predicate asks for ">= 65"; 20 gives "<= 20".
    row = FRAME.iloc[3]
    assert predicate_from_row(row, ["city", "age"], numeric={"age"}, medians={"age": 42.5}) == (
        ("age", ">=", 65.0), ("city", "==", "b"))
    assert predicate_from_row(FRAME.iloc[0], ["age"], numeric={"age"}, medians={"age": 42.5}) == (
        ("age", "<=", 20.0),)
    assert predicate_from_row(FRAME.iloc[4], ["age"], numeric={"age"}, medians={"age": 42.5}) == (
        ("age", "missing", None),)


def test_singled_out_counts_predicates_matching_exactly_one_row():
    predicates = [(("age", ">=", 65.0),), (("city", "==", "a"),), (("age", "<=", 20.0), ("city", "==", "a"))]
    assert singled_out(FRAME, predicates) == 2  # the city predicate matches 3 rows


def test_multivariate_predicates_single_out_one_synthetic_row_each():
    rng = np.random.default_rng(0)
    synthetic = pd.DataFrame({"age": rng.integers(20, 80, 200).astype(float),
                              "city": rng.choice(list("abcdef"), 200)})
    predicates = multivariate_predicates(synthetic, numeric={"age"}, n_predicates=20, n_cols=2,
                                         rng=np.random.default_rng(1))
    assert 0 < len(predicates) <= 20 and len(set(predicates)) == len(predicates)
    assert all(predicate_mask(synthetic, p).sum() == 1 for p in predicates)


def test_linkability_by_hand():
    # Two targets, three synthetic rows on a line at 0, 1, 5.
    references = np.array([[0.0], [1.0], [5.0]])
    assert nearest_rows(np.array([[0.9], [4.0]]), references, k=1).tolist() == [[1], [2]]
    assert nearest_rows(np.array([[0.5]]), references, k=2).tolist() == [[0, 1]]  # tie: lower index first
    assert links(np.array([[1], [2]]), np.array([[1], [0]])).tolist() == [True, False]
    assert links(np.array([[0, 1]]), np.array([[1, 2]])).tolist() == [True]
    assert split_columns(["a", "b", "c"]) == (["a", "c"], ["b"])


def _population(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 90, n).astype(str),
        "zip": rng.integers(10000, 10400, n).astype(str),
        "sex": rng.choice(["f", "m"], n),
        "job": rng.choice([f"j{i}" for i in range(30)], n),
    })


KINDS = {"age": "numeric", "zip": "categorical", "sex": "categorical", "job": "categorical"}


def test_fresh_rows_show_no_risk_and_copies_do():
    people = _population(1500, 0)
    train, holdout, fresh = people.iloc[:500], people.iloc[500:1000], people.iloc[1000:]
    config = AnonymityConfig(n_attacks=200)
    clean = run(synthetic=fresh, train=train, holdout=holdout, column_kinds=KINDS, config=config)
    for key in ("singling_out", "linkability"):
        assert clean[key]["risk_ci"][0] <= 0 <= clean[key]["risk_ci"][1], key
    assert clean["inference"]["worst_risk_ci"][0] <= 0
    copied = run(synthetic=train, train=train, holdout=holdout, column_kinds=KINDS, config=config)
    # The synthetic table is the training table: a predicate that isolates a synthetic row
    # isolates the same training row; the nearest synthetic row on the other columns is the
    # target itself. Linkability succeeds only when both halves are unique among the 500
    # rows (ties go to the lower index), but never on the control.
    assert copied["singling_out"]["train"] == 1.0 and copied["singling_out"]["risk_ci"][0] > 0.9
    assert copied["linkability"]["control"] == 0.0 and copied["linkability"]["risk_ci"][0] > 0.1
    assert copied["inference"]["worst_risk_ci"][0] > 0.9
    assert copied["n_compared"] == 500 and set(copied["inference"]["by_secret"]) == set(KINDS)
    json.dumps(copied, allow_nan=False)


def test_bad_inputs_are_named():
    people = _population(20, 1)
    with pytest.raises(ValueError, match="holdout"):
        run(synthetic=people, train=people, holdout=people.iloc[:0], column_kinds=KINDS)
    with pytest.raises(ValueError, match="secrets"):
        run(synthetic=people, train=people, holdout=people, column_kinds=KINDS,
            config=AnonymityConfig(secrets=("nope",)))
    with pytest.raises(ValueError, match="n_attacks"):
        AnonymityConfig(n_attacks=0)
