"""Hashed character n-gram vectors against a plain-Python reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attacks.ngrams import hashed_ngrams, ngram_hash


def reference_vector(text: str, *, n: int, dim: int) -> np.ndarray:
    """The definition, one n-gram at a time."""
    padded = f" {text} "
    vector = np.zeros(dim)
    for i in range(len(padded) - n + 1):
        h = int(ngram_hash(np.array([[ord(c) for c in padded[i : i + n]]]))[0])
        vector[h % dim] += 1.0 if h >> 63 == 0 else -1.0
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def test_matches_reference_over_mixed_lengths():
    texts = ["", "a", "ab", "maple street 12", "Zoë's café", "x" * 300, "hello world"]
    got = hashed_ngrams(texts, n=3, dim=32)
    for text, row in zip(texts, got):
        np.testing.assert_allclose(row, reference_vector(text, n=3, dim=32), atol=1e-6)


def test_empty_text_is_zero_and_others_unit():
    got = hashed_ngrams(["", "abc"], n=3, dim=16)
    assert not got[0].any()
    assert np.linalg.norm(got[1]) == pytest.approx(1.0)
    assert hashed_ngrams([], n=3, dim=8).shape == (0, 8)


def test_hash_is_order_sensitive():
    a, b = ngram_hash(np.array([[97, 98, 99], [99, 98, 97]]))
    assert a != b


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        hashed_ngrams(["a"], dim=0)
    with pytest.raises(ValueError, match="n must"):
        hashed_ngrams(["a"], n=0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=8), st.integers(1, 4))
def test_vectors_are_finite_unit_or_zero(texts, n):
    got = hashed_ngrams(texts, n=n, dim=64)
    norms = np.linalg.norm(got, axis=1)
    assert np.isfinite(got).all()
    assert all(v == pytest.approx(1.0, abs=1e-5) or v == 0 for v in norms)
    same = hashed_ngrams(texts, n=n, dim=64)
    np.testing.assert_array_equal(got, same)
