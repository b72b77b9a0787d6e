"""Exact nearest neighbours between two sets of embeddings, in bounded memory.

Squared Euclidean distances come from one matrix product per block, with the
norms folded into the operands::

    ||q - r||^2 = [-2q, 1, ||q||^2] . [r, ||r||^2, 1]

Each block (``chunk_rows`` queries x ``block_rows`` references, float32) is
reduced at once to the nearest and second-nearest reference of every query and
the distance from every reference to its nearest query, so memory stays at a
few blocks per worker whatever the sizes. Workers take query chunks in turn
(BLAS and numpy's reductions release the GIL). Both sets are centred on the
reference mean first, which keeps the cancellation error of the product small
(about 1e-6 in squared distance for embeddings of norm about 1). Each query's
nearest distance is then recomputed exactly in float64 from the vectors; the
references' distances are kept from the product (clipped at 0), since a
column-wise argmin costs as much as the product itself in numpy.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits


@dataclass
class Neighbours:
    """Nearest neighbours of queries among references, and back.

    Attributes:
        query_distance: distance of each query to its nearest reference (exact).
        query_index: index of that reference.
        query_second: distance to the second-nearest reference (from the float32
            product, at least ``query_distance``; inf with one reference).
        reference_distance: distance of each reference to its nearest query (from
            the float32 product).
    """

    query_distance: np.ndarray
    query_index: np.ndarray
    query_second: np.ndarray
    reference_distance: np.ndarray


def _augment(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = reference.mean(axis=0, dtype=np.float64)
    q = query.astype(np.float64) - centre
    r = reference.astype(np.float64) - centre
    qa = np.hstack([-2.0 * q, np.ones((len(q), 1)), (q * q).sum(1, keepdims=True)])
    ra = np.hstack([r, (r * r).sum(1, keepdims=True), np.ones((len(r), 1))])
    return np.ascontiguousarray(qa, dtype=np.float32), np.ascontiguousarray(ra, dtype=np.float32)


def _scan_chunk(qa: np.ndarray, ra: np.ndarray, block_rows: int):
    """Best two references per query of the chunk; best squared distance per reference."""
    n_q, n_r = len(qa), len(ra)
    best = np.full(n_q, np.inf, dtype=np.float32)
    best_index = np.zeros(n_q, dtype=np.int64)
    second = np.full(n_q, np.inf, dtype=np.float32)
    ref_best = np.empty(n_r, dtype=np.float32)
    rows = np.arange(n_q)
    block = np.empty((n_q, min(block_rows, n_r)), dtype=np.float32)
    for start in range(0, n_r, block_rows):
        stop = min(start + block_rows, n_r)
        out = block[:, : stop - start]
        np.matmul(qa, ra[start:stop].T, out=out)
        out.min(axis=0, out=ref_best[start:stop])
        index = out.argmin(axis=1)
        value = out[rows, index]
        out[rows, index] = np.inf
        value2 = out.min(axis=1)
        # Second smallest of {best, second, value, value2} with best <= second, value <= value2.
        second = np.minimum(np.maximum(best, value), np.minimum(second, value2))
        better = value < best
        best = np.where(better, value, best)
        best_index = np.where(better, index + start, best_index)
    return best, best_index, second, ref_best


def nearest_neighbours(
    query: np.ndarray,
    reference: np.ndarray,
    *,
    chunk_rows: int = 512,
    block_rows: int = 4096,
    n_jobs: int = 2,
) -> Neighbours:
    """Exact nearest neighbours (Euclidean) of ``query`` rows among ``reference`` rows and back.

    Args:
        query: (n_q, d) embeddings.
        reference: (n_r, d) embeddings.
        chunk_rows: queries per block.
        block_rows: references per block.
        n_jobs: worker threads (BLAS runs single-threaded inside each).

    Ties go to the lowest index within a block, then to the earliest block.
    """
    query = np.asarray(query)
    reference = np.asarray(reference)
    if query.ndim != 2 or reference.ndim != 2 or query.shape[1] != reference.shape[1]:
        raise ValueError(
            f"query and reference must be 2-D with the same width, got {query.shape} and {reference.shape}"
        )
    if len(query) == 0 or len(reference) == 0:
        raise ValueError(f"query and reference must be non-empty, got {len(query)} and {len(reference)} rows")
    for name, value in (("chunk_rows", chunk_rows), ("block_rows", block_rows), ("n_jobs", n_jobs)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    qa, ra = _augment(query, reference)
    starts = range(0, len(qa), chunk_rows)
    with threadpool_limits(limits=1), ThreadPoolExecutor(max_workers=n_jobs) as pool:
        parts = list(pool.map(lambda s: _scan_chunk(qa[s : s + chunk_rows], ra, block_rows), starts))

    query_index = np.concatenate([p[1] for p in parts])
    second_sq = np.concatenate([p[2] for p in parts]).astype(np.float64)
    ref_best_sq = np.full(len(ra), np.inf, dtype=np.float32)
    for part in parts:
        np.minimum(ref_best_sq, part[3], out=ref_best_sq)

    query_distance = np.linalg.norm(
        query.astype(np.float64) - reference[query_index].astype(np.float64), axis=1
    )
    reference_distance = np.sqrt(np.maximum(ref_best_sq.astype(np.float64), 0.0))
    query_second = np.maximum(np.sqrt(np.maximum(second_sq, 0.0)), query_distance)
    return Neighbours(
        query_distance=query_distance,
        query_index=query_index,
        query_second=query_second,
        reference_distance=reference_distance,
    )
