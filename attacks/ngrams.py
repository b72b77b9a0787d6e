"""Hashed character n-gram vectors of texts, vectorised with numpy.

The hashing trick (Weinberger et al. 2009, "Feature Hashing for Large Scale
Multitask Learning"): each character n-gram ``g`` of ``" " + text + " "`` adds
``sign(g)`` to bucket ``bucket(g)`` of a ``dim``-vector, where a 64-bit hash
``h(g)`` gives ``bucket = h mod dim`` and ``sign = +1`` if bit 63 of ``h`` is 0
else ``-1``; the vector is then L2-normalised (all-zero for a text shorter than
``n - 2`` characters). The signs make ``u . v`` an unbiased estimate of the
cosine of the exact n-gram count vectors.

``h`` folds the n code points ``c_1..c_n`` as ``x = x * M + c_i`` (mod 2^64) from
``x = SEED`` and finishes with the splitmix64 mixer. All strings of a batch are
laid out as one code-point matrix, so no Python loop runs per n-gram.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SEED = np.uint64(0x9E3779B97F4A7C15)
_M = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Code-point cells laid out per batch (bounds the memory of long texts).
_BATCH_CELLS = 4_000_000


def ngram_hash(codes: np.ndarray) -> np.ndarray:
    """64-bit hashes of n-grams given as an (..., n) array of code points."""
    codes = np.asarray(codes, dtype=np.uint64)
    x = np.full(codes.shape[:-1], SEED, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(codes.shape[-1]):
            x = x * _M + codes[..., i]
        x ^= x >> np.uint64(30)
        x *= _MIX1
        x ^= x >> np.uint64(27)
        x *= _MIX2
        x ^= x >> np.uint64(31)
    return x


def hashed_ngrams(texts: Sequence[str], *, n: int = 3, dim: int = 64) -> np.ndarray:
    """L2-normalised signed hashed n-gram vectors, float32 of shape (len(texts), dim)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim!r}")
    padded = [f" {t} " for t in texts]
    out = np.zeros((len(padded), dim), dtype=np.float32)
    if not padded:
        return out
    lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
    order = np.argsort(lengths, kind="stable")
    start = 0
    while start < len(order):
        # Rows sorted by length: each batch pads to its own longest text.
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= _BATCH_CELLS:
            stop += 1
        rows = order[start:stop]
        width = int(lengths[rows[-1]])
        batch = np.array([padded[i] for i in rows], dtype=f"<U{width}")
        codes = batch.view(np.uint32).reshape(len(rows), width)
        positions = width - n + 1
        if positions > 0:
            windows = np.lib.stride_tricks.sliding_window_view(codes, n, axis=1)
            hashes = ngram_hash(windows)
            valid = np.arange(positions)[None, :] <= (lengths[rows] - n)[:, None]
            bucket = (hashes % np.uint64(dim)).astype(np.int64)
            sign = np.where((hashes >> np.uint64(63)) == 0, 1.0, -1.0) * valid
            flat = (np.arange(len(rows))[:, None] * dim + bucket).ravel()
            counts = np.bincount(flat, weights=sign.ravel(), minlength=len(rows) * dim)
            out[rows] = counts.reshape(len(rows), dim)
        start = stop
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out
