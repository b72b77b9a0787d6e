"""Duplicated training records and their group-privacy epsilon (attacks.duplicates)."""

import json
import math

import pandas as pd
import pytest

from attacks.duplicates import duplicate_counts, group_privacy, run


def test_group_privacy_by_hand():
    # k = 2, eps = 8, delta = 1e-5: (16, 2 e^8 1e-5) = (16, 2 x 2980.958 x 1e-5) = (16, 0.059619)
    eps, delta = group_privacy(epsilon=8.0, delta=1e-5, copies=2)
    assert eps == 16.0 and delta == pytest.approx(0.059619, abs=1e-6)
    # k = 3, eps = 1, delta = 1e-6: (3, 3 e^2 1e-6) = (3, 2.2167e-5)
    eps, delta = group_privacy(epsilon=1.0, delta=1e-6, copies=3)
    assert eps == 3.0 and delta == pytest.approx(3 * math.exp(2) * 1e-6)
    assert delta == pytest.approx(2.2167e-5, abs=1e-9)
    assert group_privacy(epsilon=8.0, delta=1e-5, copies=3) == (24.0, 1.0)  # 3 e^16 1e-5 > 1: no delta left
    assert group_privacy(epsilon=2.0, delta=1e-5, copies=1) == (2.0, 1e-5)
    assert group_privacy(epsilon=2.0, delta=0.0, copies=4) == (8.0, 0.0)  # pure DP: k eps
    with pytest.raises(ValueError, match="copies"):
        group_privacy(epsilon=1.0, delta=1e-5, copies=0)


# 8 records. On the learned columns (kind, age): (a, 30) x3, (b, 40) x2, and three
# singletons -> 5 duplicated records in 2 groups, max 3 copies. Every name differs,
# so on all columns only the two rows that are identical throughout repeat.
TRAIN = pd.DataFrame({
    "kind": ["a", "a", "a", "b", "b", "c", "a", "b"],
    "age": ["30", "30", "30", "40", "40", "30", "31", None],
    "name": ["Ann", "Bob", "Bob", "Cy", "Di", "Ed", "Fay", "Gil"],
})


def test_duplicates_on_learned_columns_and_exact_by_hand():
    learned = duplicate_counts(TRAIN, ["kind", "age"])
    assert learned == {"columns": ["kind", "age"], "n_records": 8, "duplicated_records": 5,
                       "duplicate_groups": 2, "max_copies": 3,
                       "by_copies": [{"copies": 2, "groups": 1, "records": 2},
                                     {"copies": 3, "groups": 1, "records": 3}]}
    exact = duplicate_counts(TRAIN, list(TRAIN.columns))
    assert exact["duplicated_records"] == 2 and exact["by_copies"] == [{"copies": 2, "groups": 1, "records": 2}]


def test_missing_values_are_equal_to_each_other():
    frame = pd.DataFrame({"x": [None, None, "1"]})
    assert duplicate_counts(frame, ["x"])["duplicated_records"] == 2


def test_run_states_the_epsilon_of_each_multiplicity():
    out = run(train=TRAIN, learned_columns=["kind", "age"], epsilon=8.0, delta=1e-5)
    two, three = out["learned"]["by_copies"]
    assert (two["copies"], two["epsilon"], two["delta"]) == (2, 16.0, pytest.approx(2 * math.exp(8) * 1e-5))
    assert (three["epsilon"], three["delta"]) == (24.0, 1.0)
    assert out["exact"]["duplicated_records"] == 2 and (out["epsilon"], out["delta"]) == (8.0, 1e-5)
    json.dumps(out, allow_nan=False)
    # No claim (non-DP run, model-free audit): counts only.
    bare = run(train=TRAIN, learned_columns=["kind", "age"], epsilon=None, delta=None)
    assert "epsilon" not in bare["learned"]["by_copies"][0] and bare["epsilon"] is None


def test_no_duplicates():
    out = duplicate_counts(pd.DataFrame({"x": ["1", "2"]}), ["x"])
    assert out["duplicated_records"] == 0 and out["max_copies"] == 1 and out["by_copies"] == []


def test_bad_columns_are_named():
    with pytest.raises(ValueError, match="'zzz'"):
        duplicate_counts(TRAIN, ["zzz"])
