"""Mixed-type distance, nearest neighbours and the distance audit."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from attacks import distance
from attacks.distance import DistanceConfig, closer_share, distance_ratio, histogram
from attacks.encoding import MixedEncoder, datetime_seconds
from attacks.inference import guesses_correct, inference_risk
from attacks.neighbours import nearest_neighbours
from attacks.ngrams import hashed_ngrams

KINDS = {"age": "numeric", "city": "categorical", "joined": "datetime", "note": "text"}


def test_encoder_distance_by_hand():
    train = pd.DataFrame(
        {
            "age": [20, 60],
            "city": ["Oslo", "Rome"],
            "joined": ["2020-01-01", "2020-01-11"],
            "note": ["hello world", "hello world"],
        }
    )
    enc = MixedEncoder(KINDS, text_dim=1024, datetime_formats={"joined": "%Y-%m-%d"}).fit(train)
    x = pd.DataFrame({"age": [30], "city": ["Oslo"], "joined": ["2020-01-06"], "note": ["hello world"]})
    y = pd.DataFrame({"age": [50], "city": ["Rome"], "joined": ["2020-01-01"], "note": ["hello world"]})
    ex, ey = enc.transform(x), enc.transform(y)
    # age: ((30-50)/40)^2 = 0.25; city: 1; joined: (5 days / 10 days)^2 = 0.25; note: 0.
    # d^2 = (0.25 + 1 + 0.25 + 0) / 4 = 0.375
    assert float(((ex - ey) ** 2).sum()) == pytest.approx(0.375, rel=1e-6)


def test_text_term_is_one_minus_cosine_of_hashed_ngrams():
    texts = ["Maple Street 12", "maple  street 13"]
    enc = MixedEncoder({"t": "text"}, text_dim=256, text_ngram=3).fit(pd.DataFrame({"t": texts}))
    e = enc.transform(pd.DataFrame({"t": texts}))
    u, v = hashed_ngrams(["maple street 12", "maple street 13"], n=3, dim=256)
    # One text column (C = 1): ||u/sqrt2 - v/sqrt2||^2 = 1 - u.v for unit u, v.
    assert float(((e[0] - e[1]) ** 2).sum()) == pytest.approx(1 - float(u @ v), rel=1e-5)
    assert 0 < 1 - float(u @ v) < 0.5  # they share most trigrams


def test_missing_values_and_unseen_categories():
    train = pd.DataFrame({"age": [10.0, 20.0, None], "city": ["a", "b", None]})
    other = pd.DataFrame({"age": [15.0], "city": ["zzz"]})
    enc = MixedEncoder({"age": "numeric", "city": "categorical"}).fit(train, other)
    e = enc.transform(pd.concat([train, other], ignore_index=True))
    # Row 2 (age missing -> median 15, flagged; city missing) vs row 3 (age 15, 'zzz'):
    # age term 0, missing flag 1, city 1 -> d^2 = (0 + 1 + 1) / 2 = 1.
    assert float(((e[2] - e[3]) ** 2).sum()) == pytest.approx(1.0)
    # Unseen category 'zzz' differs from 'a' by exactly 1: ((15-10)/10)^2 = 0.25 -> (0.25+1)/2.
    assert float(((e[0] - e[3]) ** 2).sum()) == pytest.approx(0.625)


def test_datetime_strings_and_pandas_datetimes_agree():
    strings = pd.Series(["2021-03-01 10:00", "bad"])
    stamps = pd.Series(pd.to_datetime(["2021-03-01 10:00", None]))
    a = datetime_seconds(strings, format="%Y-%m-%d %H:%M")
    b = datetime_seconds(stamps)
    assert a[0] == b[0] == pd.Timestamp("2021-03-01 10:00").timestamp()
    assert math.isnan(a[1]) and math.isnan(b[1])


def test_nearest_neighbours_match_cdist():
    rng = np.random.default_rng(0)
    query = rng.random((300, 7)).astype(np.float32)
    reference = rng.random((500, 7)).astype(np.float32)
    query[:5] = reference[10:15]
    nn = nearest_neighbours(query, reference, chunk_rows=64, block_rows=128, n_jobs=2)
    full = cdist(query.astype(float), reference.astype(float))
    np.testing.assert_allclose(nn.query_distance, full.min(1), atol=1e-12)
    np.testing.assert_array_equal(nn.query_index, full.argmin(1))
    np.testing.assert_allclose(nn.query_second, np.sort(full, 1)[:, 1], atol=1e-12)
    np.testing.assert_allclose(nn.reference_distance, full.min(0), atol=1e-12)
    assert (nn.query_distance[:5] == 0).all()
    with pytest.raises(ValueError, match="same width"):
        nearest_neighbours(query, reference[:, :3])


def test_closer_share_and_nndr_by_hand():
    # closer, farther, tie, closer -> (2 + 0.5) / 4
    share, (lo, hi) = closer_share(np.array([0.1, 0.5, 0.3, 0.0]), np.array([0.2, 0.4, 0.3, 0.1]))
    assert share == pytest.approx(0.625)
    assert lo < 0.625 < hi
    np.testing.assert_allclose(distance_ratio(np.array([1.0, 0.0, 0.0, 2.0]), np.array([2.0, 0.0, 1.0, np.inf])), [0.5, 1.0, 0.0, 1.0])
    h = histogram(np.array([0.0, 0.1, 0.2]), np.array([0.3, 0.3, 0.3]), bins=3)
    assert sum(h["train"]) == pytest.approx(1.0) and sum(h["holdout"]) == pytest.approx(1.0)


def test_inference_risk_by_hand():
    out = inference_risk(train_successes=60, train_trials=100, control_successes=20, control_trials=100)
    # (0.6 - 0.2) / (1 - 0.2) = 0.5
    assert out["risk"] == pytest.approx(0.5)
    lo, hi = out["risk_ci"]
    assert lo < 0.5 < hi
    none = inference_risk(train_successes=5, train_trials=5, control_successes=5, control_trials=5)
    assert none["risk"] is None
    with pytest.raises(ValueError, match="control_trials"):
        inference_risk(train_successes=1, train_trials=1, control_successes=0, control_trials=0)
    assert guesses_correct(np.array([1.0, 5.0, np.nan]), np.array([1.2, 4.0, 1.0]), numeric=True, tolerance=0.5).tolist() == [True, False, False]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0, 10), min_size=1, max_size=40).flatmap(
        lambda a: st.tuples(st.just(a), st.lists(st.floats(0, 10), min_size=len(a), max_size=len(a)))
    )
)
def test_closer_share_is_a_proportion(pair):
    a, b = pair
    share, (lo, hi) = closer_share(np.array(a), np.array(b))
    assert 0 <= lo <= share <= hi <= 1 and not math.isnan(share)


def _people(n, seed):
    fake = Faker()
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "city": rng.choice(["Oslo", "Rome", "Lima", "Pune"], n),
            "joined": [fake.date_between("-5y", "today").isoformat() for _ in range(n)],
            "note": [fake.sentence(nb_words=5) for _ in range(n)],
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )


def test_run_flags_copied_synthetic_data_and_not_fresh_samples():
    train, holdout = _people(400, 1), _people(400, 2)
    kinds = {**KINDS, "plan": "categorical"}
    config = DistanceConfig(datetime_formats={"joined": "%Y-%m-%d"}, n_bootstrap=50)
    copied = distance.run(
        synthetic=train.sample(300, random_state=0),
        train=train,
        holdout=holdout,
        column_kinds=kinds,
        quasi_identifiers=["age", "city", "joined"],
        secret_column="plan",
        config=config,
    )
    json.dumps(copied, allow_nan=False)
    assert copied["exact_copy_rate"] == 1.0 and copied["exact_copies"] == 300
    assert copied["holdout_copy_rate"] == 0.0
    assert copied["dcr_train_share"] == 1.0
    assert copied["mia"]["auc"] > 0.8
    assert copied["attribute_inference"]["risk"] > 0.5
    assert copied["nndr"]["median"] == 0.0
    for example in copied["examples"]:
        for column, masked in example["row"].items():
            assert masked not in set(train[column].astype(str))
        assert "***" in example["row"]["note"]

    fresh = distance.run(
        synthetic=_people(300, 3), train=train, holdout=holdout, column_kinds=kinds, config=config
    )
    assert fresh["exact_copies"] == 0
    lo, hi = fresh["dcr_train_share_ci"]
    assert lo < 0.5 < hi
    assert 0.35 < fresh["mia"]["auc"] < 0.65
    assert fresh["attribute_inference"] is None


def test_run_names_bad_inputs():
    train = _people(20, 1)
    with pytest.raises(ValueError, match="column 'nope' is missing from the synthetic data"):
        distance.run(synthetic=train, train=train, holdout=train, column_kinds={"nope": "numeric"})
    with pytest.raises(ValueError, match="unknown kind 'blob'"):
        distance.run(synthetic=train, train=train, holdout=train, column_kinds={"age": "blob"})
    with pytest.raises(ValueError, match="holdout must be a non-empty DataFrame"):
        distance.run(synthetic=train, train=train, holdout=train.iloc[:0], column_kinds={"age": "numeric"})
    with pytest.raises(ValueError, match="secret_column 'age' is also a quasi-identifier"):
        distance.run(
            synthetic=train, train=train, holdout=train, column_kinds={"age": "numeric"},
            quasi_identifiers=["age"], secret_column="age",
        )


def test_high_cardinality_categories_get_random_codes():
    values = pd.DataFrame({"zip": [f"{i:05d}" for i in range(400)]})
    enc = MixedEncoder({"zip": "categorical"}, max_onehot_levels=100, code_dim=256).fit(values)
    assert enc.dim == 256
    e = enc.transform(pd.DataFrame({"zip": ["00001", "00001", "00002", "00399"]}))
    assert float(((e[0] - e[1]) ** 2).sum()) == 0.0
    # Different levels: 1 - cos of two random unit vectors in R^256, about 1 +- 1/16.
    for j in (2, 3):
        assert float(((e[0] - e[j]) ** 2).sum()) == pytest.approx(1.0, abs=0.3)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.floats(0, 1), st.floats(0, 0.99))
def test_inference_risk_interval_contains_the_risk(n_train, n_control, train_rate, control_rate):
    out = inference_risk(
        train_successes=int(train_rate * n_train), train_trials=n_train,
        control_successes=int(control_rate * n_control), control_trials=n_control,
    )
    lo, hi = out["risk_ci"]
    if out["risk"] is not None:
        assert not math.isnan(out["risk"]) and out["risk"] <= 1
        assert (lo is None or lo <= out["risk"] + 1e-12) and (hi is None or out["risk"] <= hi + 1e-12)
