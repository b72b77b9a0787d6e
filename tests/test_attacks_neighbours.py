"""Exact nearest neighbours: equal to float64 brute force, ties and chunk edges included."""

import numpy as np
import pandas as pd
import pytest

from attacks import distance
from attacks.distance import DistanceConfig, distance_ratio
from attacks.encoding import MixedEncoder
from attacks.neighbours import (
    _augment,
    distinct_rows,
    exact_distances,
    nearest_neighbours,
    screen_error_coefficient,
)

KINDS = {"age": "numeric", "income": "numeric", "city": "categorical", "joined": "datetime", "note": "text"}


def brute_force(query, reference):
    """Every pair's float64 distance: (n_q, n_r)."""
    diff = query.astype(np.float64)[:, None, :] - reference.astype(np.float64)[None, :, :]
    return np.sqrt(np.square(diff).sum(axis=-1))


def assert_equals_brute_force(query, reference, **blocks):
    nn = nearest_neighbours(query, reference, **blocks)
    full = brute_force(query, reference)
    ordered = np.sort(full, axis=1)
    np.testing.assert_array_equal(nn.query_distance, ordered[:, 0])
    # argmin returns the first (lowest) index among exact ties.
    np.testing.assert_array_equal(nn.query_index, full.argmin(axis=1))
    second = ordered[:, 1] if reference.shape[0] > 1 else np.full(len(query), np.inf)
    np.testing.assert_array_equal(nn.query_second, second)
    np.testing.assert_array_equal(nn.reference_distance, full.min(axis=0))
    return nn


def mixed_table(n, rng, *, pool):
    """Coarse values so that many rows tie or repeat."""
    return pd.DataFrame(
        {
            "age": rng.integers(20, 26, n),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 4, n) * 1000.0),
            "city": rng.choice(["Oslo", "Rome", "Lima"], n),
            "joined": rng.choice(["2020-01-01", "2020-06-01", "bad"], n),
            "note": rng.choice(pool, n),
        }
    )


def test_exact_distances_is_the_float64_formula():
    q = np.array([[0.0, 3.0], [1.0, 1.0]], dtype=np.float32)
    r = np.array([[4.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(exact_distances(q, r), [5.0, 0.0])


@pytest.mark.parametrize("seed", range(4))
def test_mixed_tables_with_ties_and_duplicates_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    pool = ["hello world", "Hello  World", "maple street", "", "x"]
    train = mixed_table(301, rng, pool=pool)
    synthetic = pd.concat([mixed_table(150, rng, pool=pool), train.iloc[:40]], ignore_index=True)
    train = pd.concat([train, train.iloc[:25]], ignore_index=True)  # duplicated records
    encoder = MixedEncoder(KINDS, text_dim=16, datetime_formats={"joined": "%Y-%m-%d"}).fit(train, synthetic)
    s, t = encoder.transform(synthetic), encoder.transform(train)
    nn = assert_equals_brute_force(s, t, chunk_rows=37, block_rows=53, n_jobs=2)
    assert (nn.query_distance[150:] == 0).all()
    assert (nn.query_second[150:] == 0).any()  # a copy of a duplicated record has two at 0


@pytest.mark.parametrize(
    ("n_q", "n_r", "chunk_rows", "block_rows"),
    [(1, 1, 1, 1), (1, 7, 3, 2), (7, 1, 2, 3), (100, 100, 100, 100), (101, 99, 50, 33), (64, 130, 1, 129)],
)
def test_chunk_boundaries_equal_brute_force(n_q, n_r, chunk_rows, block_rows):
    rng = np.random.default_rng(n_q * 1000 + n_r)
    query = rng.random((n_q, 5)).astype(np.float32)
    reference = rng.random((n_r, 5)).astype(np.float32)
    assert_equals_brute_force(query, reference, chunk_rows=chunk_rows, block_rows=block_rows, n_jobs=2)


def test_identical_references_tie_to_the_lowest_index():
    reference = np.tile(np.array([[0.25, 0.5, 0.75]], dtype=np.float32), (50, 1))
    query = np.array([[0.25, 0.5, 0.75], [0.0, 0.0, 0.0]], dtype=np.float32)
    nn = assert_equals_brute_force(query, reference, chunk_rows=1, block_rows=7)
    np.testing.assert_array_equal(nn.query_index, [0, 0])
    np.testing.assert_array_equal(nn.query_second, nn.query_distance)
    np.testing.assert_array_equal(distance_ratio(nn.query_distance, nn.query_second), [1.0, 1.0])


def test_near_ties_below_float32_resolution_are_ranked_exactly():
    # Far-away references make the float32 screen coarse (large norms after
    # centring); the two candidates near the origin differ by one float32 ulp.
    half_up = np.nextafter(np.float32(0.5), np.float32(1.0))
    reference = np.zeros((40, 4), dtype=np.float32)
    reference[:36] = np.random.default_rng(0).uniform(-3000, 3000, (36, 4))
    reference[36] = [0.0, half_up, 0.0, 0.0]  # farther by one ulp, lower index
    reference[37] = [0.0, 0.0, 0.5, 0.0]
    reference[38] = [0.5, 0.0, 0.0, 0.0]  # exact tie with 37, higher index
    reference[39] = [0.0, 0.0, 0.0, 0.5]
    query = np.zeros((3, 4), dtype=np.float32)
    nn = assert_equals_brute_force(query, reference, chunk_rows=2, block_rows=5)
    np.testing.assert_array_equal(nn.query_index, [37, 37, 37])
    np.testing.assert_array_equal(nn.query_second, [0.5, 0.5, 0.5])


def test_screen_stays_within_its_error_bound():
    rng = np.random.default_rng(1)
    query = (rng.standard_normal((200, 30)) * 50 + 10).astype(np.float32)
    reference = (rng.standard_normal((300, 30)) * 50 - 10).astype(np.float32)
    centre = reference.mean(axis=0, dtype=np.float64)
    qa, q_norm = _augment(query, centre, query=True)
    ra, r_norm = _augment(reference, centre, query=False)
    screened = (qa @ ra.T).astype(np.float64)
    error = np.abs(screened - brute_force(query, reference) ** 2)
    bound = screen_error_coefficient(30) * (q_norm[:, None] + r_norm[None, :]) ** 2
    assert (error <= bound).all()
    assert error.max() > 0  # the screen is inexact, so the re-rank matters


def test_bad_input_is_refused():
    x = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="non-empty"):
        nearest_neighbours(x, x[:0])
    with pytest.raises(ValueError, match="finite"):
        nearest_neighbours(np.full((1, 2), np.nan), x)
    with pytest.raises(ValueError, match="chunk_rows"):
        nearest_neighbours(x, x, chunk_rows=0)


def test_distance_audit_dcr_and_nndr_equal_brute_force():
    rng = np.random.default_rng(7)
    pool = ["alpha beta", "beta gamma", "gamma", "delta epsilon zeta"]
    train, holdout = mixed_table(120, rng, pool=pool), mixed_table(120, rng, pool=pool)
    synthetic = pd.concat([mixed_table(90, rng, pool=pool), train.iloc[:10]], ignore_index=True)
    config = DistanceConfig(text_dim=16, datetime_formats={"joined": "%Y-%m-%d"}, chunk_rows=16, block_rows=24,
                            n_bootstrap=10, n_examples=0)
    out = distance.run(synthetic=synthetic, train=train, holdout=holdout, column_kinds=KINDS, config=config)
    encoder = MixedEncoder(KINDS, text_dim=16, datetime_formats={"joined": "%Y-%m-%d"}).fit(train, synthetic, holdout)
    s = encoder.transform(synthetic)
    to_train, to_holdout = brute_force(s, encoder.transform(train)), brute_force(s, encoder.transform(holdout))
    dcr_train, dcr_holdout = to_train.min(axis=1), to_holdout.min(axis=1)
    expected = {f"{q:g}": float(v) for q, v in zip(config.quantiles, np.quantile(dcr_train, config.quantiles))}
    assert out["dcr_quantiles"]["train"] == expected
    share, _ = distance.closer_share(dcr_train, dcr_holdout)
    assert out["dcr_train_share"] == share
    nndr = distance_ratio(dcr_train, np.sort(to_train, axis=1)[:, 1])
    assert out["nndr"]["median"] == float(np.median(nndr))
    assert out["exact_copies"] >= 10


def test_distance_audit_refuses_an_empty_holdout():
    rng = np.random.default_rng(0)
    table = mixed_table(20, rng, pool=["a b", "c"])
    with pytest.raises(ValueError, match="holdout must be a non-empty DataFrame"):
        distance.run(synthetic=table, train=table, holdout=table.iloc[:0], column_kinds=KINDS)


def test_query_partitions_combine_to_the_whole():
    # An engine may split the queries: concatenate the query side, take the
    # minimum of the reference side.
    rng = np.random.default_rng(3)
    query = rng.integers(0, 3, (90, 4)).astype(np.float32)
    reference = rng.integers(0, 3, (70, 4)).astype(np.float32)
    whole = nearest_neighbours(query, reference, chunk_rows=16, block_rows=16)
    parts = [nearest_neighbours(part, reference, chunk_rows=16, block_rows=16) for part in np.array_split(query, 3)]
    for field in ("query_distance", "query_index", "query_second"):
        np.testing.assert_array_equal(getattr(whole, field), np.concatenate([getattr(p, field) for p in parts]))
    np.testing.assert_array_equal(whole.reference_distance, np.minimum.reduce([p.reference_distance for p in parts]))


def test_distinct_rows_by_hand():
    x = np.array([[1, 0], [0, 1], [1, 0], [2, 2], [0, 1], [1, 0]], dtype=np.float32)
    first, label, counts = distinct_rows(x)
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(label, [0, 1, 0, 2, 1, 0])
    np.testing.assert_array_equal(counts, [3, 2, 1])


def test_repeated_rows_keep_lowest_index_and_second_distance():
    a, b = [1.0, 0.0], [0.0, 1.0]
    reference = np.array([b, a, b, [5.0, 5.0], a], dtype=np.float32)
    query = np.array([[0.5, 0.5], a, [5.0, 5.0], [0.5, 0.5]], dtype=np.float32)
    nn = assert_equals_brute_force(query, reference, chunk_rows=3, block_rows=2)
    # Equidistant from a and b: index 0 (a b); a itself: index 1, and its repeat at 4 is second (0).
    np.testing.assert_array_equal(nn.query_index, [0, 1, 3, 0])
    np.testing.assert_array_equal(nn.query_second[1:3], [0.0, np.sqrt(np.float64(41.0))])
    # Thousands of copies of one row cost no candidates: same answer as one copy.
    many = np.repeat(reference, 2000, axis=0)
    copies = nearest_neighbours(query, many)
    np.testing.assert_array_equal(copies.query_index, [0, 2000, 6000, 0])
    np.testing.assert_array_equal(copies.query_second, [nn.query_distance[0], 0.0, 0.0, nn.query_distance[0]])
