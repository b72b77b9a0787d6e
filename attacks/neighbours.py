"""Exact nearest neighbours between two sets of embeddings, in bounded memory.

The distance of a query ``q`` and a reference ``r`` is the float64 Euclidean
norm ``sqrt(sum_i (q_i - r_i)^2)`` of their embeddings (:func:`exact_distances`);
the results are those of brute force over every pair with that formula, ties
included. Brute force in float64 is too slow at a million rows, so a float32
*screen* finds a few candidates per row, which are then re-ranked exactly:

1. Screen. Both sets are centred on the reference mean; squared distances of a
   block (``chunk_rows`` queries x ``block_rows`` references) come from one
   float32 matrix product with the norms folded into the operands::

       ||q - r||^2 = [-2q, 1, ||q||^2] . [r, ||r||^2, 1]

2. Bound. By the standard error bound of a float32 dot product of length ``m``
   (Higham, "Accuracy and Stability of Numerical Algorithms", 2002, eq. 3.5:
   ``|fl(x.y) - x.y| <= gamma_m sum |x_i y_i|``, ``gamma_m = m u / (1 - m u)``,
   ``u = 2^-24``) plus the roundings of the centred vectors and their norms,
   every screened value ``s(q, r)`` is within

       E(q, r) <= c (||q|| + ||r||)^2,   c = 2 (gamma_m + 4u)

   of the true squared distance (factor 2 of slack; norms after centring).
   ``E_q`` uses the largest reference norm, ``E_r`` the largest query norm.

3. Candidates. If two distinct references have screened values at most
   ``S2``, the true second-smallest squared distance is at most ``S2 + E_q``,
   so a reference can be a query's nearest or second nearest only if
   ``s(q, r) <= S2 + 2 E_q``; likewise a query can be a reference's nearest
   only if ``s(q, r) <= S1 + 2 E_r`` for any screened value ``S1`` of that
   reference. Every block keeps the pairs under the running values of these
   thresholds (seeded from a spread sample of rows, so the first block keeps
   few), which only shrink, so what is kept is a superset of what is needed.
   Memory: a few blocks per worker plus the candidates (a handful per row,
   more where many distinct rows tie; repeated rows are searched once).

4. Re-rank. The candidates' distances are recomputed exactly, in slices.

Workers take query chunks in turn (BLAS and numpy's element-wise loops release
the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

#: Unit roundoff of float32.
_U32 = 2.0**-24
#: Rows augmented, and candidate pairs re-ranked, per slice (bounds temporaries).
_SLICE_ROWS = 65_536
#: Rows of the spread sample that seeds the thresholds.
_SEED_ROWS = 1024
#: Blocks scanned between two compactions of a worker's candidates.
_COMPACT_EVERY = 16


@dataclass
class Neighbours:
    """Nearest neighbours of queries among references, and back, all exact.

    Attributes:
        query_distance: distance of each query to its nearest reference.
        query_index: index of that reference (the lowest index among ties).
        query_second: distance to the second-nearest reference (equal to
            ``query_distance`` when two references tie; inf with one reference).
        reference_distance: distance of each reference to its nearest query.
    """

    query_distance: np.ndarray
    query_index: np.ndarray
    query_second: np.ndarray
    reference_distance: np.ndarray


def exact_distances(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Row-wise ``sqrt(sum_i (q_i - r_i)^2)`` in float64 of two (n, d) arrays.

    This formula defines "exact" for :func:`nearest_neighbours`.
    """
    diff = np.asarray(query, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    return np.sqrt(np.square(diff).sum(axis=-1))


def screen_error_coefficient(width: int) -> float:
    """``c`` of the screen's error bound ``E <= c (||q|| + ||r||)^2`` for embeddings of ``width``."""
    m = width + 2
    gamma = m * _U32 / (1.0 - m * _U32)
    return 2.0 * (gamma + 4.0 * _U32)


def _augment(x: np.ndarray, centre: np.ndarray, *, query: bool) -> tuple[np.ndarray, np.ndarray]:
    """Float32 ``[-2x, 1, ||x||^2]`` (query) or ``[x, ||x||^2, 1]`` of centred rows, and their float64 norms."""
    n, d = x.shape
    out = np.empty((n, d + 2), dtype=np.float32)
    norms = np.empty(n, dtype=np.float64)
    for start in range(0, n, _SLICE_ROWS):
        stop = min(start + _SLICE_ROWS, n)
        centred = x[start:stop].astype(np.float64) - centre
        square = np.einsum("ij,ij->i", centred, centred)
        norms[start:stop] = np.sqrt(square)
        if query:
            out[start:stop, :d] = -2.0 * centred
            out[start:stop, d] = 1.0
            out[start:stop, d + 1] = square
        else:
            out[start:stop, :d] = centred
            out[start:stop, d] = square
            out[start:stop, d + 1] = 1.0
    return out, norms


def _upper32(values: np.ndarray) -> np.ndarray:
    """Float32 values no smaller than the float64 ``values`` (inf stays inf)."""
    return np.nextafter(values.astype(np.float32), np.float32(np.inf))


def _two_smallest(rows: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row index in ``range(n)``: smallest and second smallest of ``values`` (inf when absent)."""
    first = np.full(n, np.inf)
    second = np.full(n, np.inf)
    if rows.size == 0:
        return first, second
    order = np.lexsort((values, rows))
    rows, values = rows[order], values[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    first[rows[starts]] = values[starts]
    has_second = np.r_[starts[1:], rows.size] - starts > 1
    second[rows[starts[has_second]]] = values[starts[has_second] + 1]
    return first, second


class _Scan:
    """The screen over every block, collecting candidate pairs (query, reference, screened value)."""

    def __init__(self, qa, ra, query_error, reference_error, reference_seed1, block_rows):
        self.qa, self.ra = qa, ra
        self.query_error, self.reference_error = query_error, reference_error
        self.sample = ra[_spread(len(ra), _SEED_ROWS)]
        # Shared across workers; a lost concurrent update only leaves a larger
        # (still valid) threshold, so it needs no lock.
        self.reference_best = reference_seed1
        self.block_rows = block_rows

    def chunk(self, start: int, stop: int):
        """Candidates of queries ``start:stop`` and their running best two screened values."""
        qa = self.qa[start:stop]
        n_q, n_r = len(qa), len(self.ra)
        best = np.full(n_q, np.inf)
        second = np.full(n_q, np.inf)
        query_error = self.query_error[start:stop]
        # Seed: the second smallest screened value against a spread sample bounds S2(q) from above.
        seed2 = np.full(n_q, np.inf)
        if len(self.sample) > 1:
            seed2 = np.partition(qa @ self.sample.T, 1, axis=1)[:, 1].astype(np.float64)
        block = np.empty((n_q, min(self.block_rows, n_r)), dtype=np.float32)
        # Candidates as (row in chunk int32, reference int32, screened value float32).
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for number, r_start in enumerate(range(0, n_r, self.block_rows)):
            r_stop = min(r_start + self.block_rows, n_r)
            out = block[:, : r_stop - r_start]
            np.matmul(qa, self.ra[r_start:r_stop].T, out=out)
            query_limit = _upper32(np.minimum(second, seed2) + 2.0 * query_error)
            reference_limit = _upper32(
                self.reference_best[r_start:r_stop] + 2.0 * self.reference_error[r_start:r_stop]
            )
            # Row and column minima (cheap) pick the few rows and columns holding a candidate.
            hit_rows = np.flatnonzero(out.min(axis=1) <= query_limit)
            hit_cols = np.flatnonzero(out.min(axis=0) <= reference_limit)
            r1, c1 = np.nonzero(out[hit_rows] <= query_limit[hit_rows, None])
            r1 = hit_rows[r1]
            r2, c2 = np.nonzero(out[:, hit_cols] <= reference_limit[None, hit_cols])
            c2 = hit_cols[c2]
            # A pair under both limits is kept once (a reference counted twice would fake a second).
            once = out[r2, c2] > query_limit[r2]
            rows = np.concatenate([r1, r2[once]]).astype(np.int32)
            cols = np.concatenate([c1, c2[once]])
            values = out[rows, cols]
            cols = (cols + r_start).astype(np.int32)
            parts.append((rows, cols, values))
            first2, second2 = _two_smallest(rows, values, n_q)
            second = np.minimum(np.maximum(best, first2), np.minimum(second, second2))
            best = np.minimum(best, first2)
            np.minimum.at(self.reference_best, cols, values)
            if (number + 1) % _COMPACT_EVERY == 0:
                parts = [self._compact(parts, second, seed2, query_error)]
        return start, self._compact(parts, second, seed2, query_error), second

    def _compact(self, parts, second, seed2, query_error):
        rows = np.concatenate([p[0] for p in parts])
        cols = np.concatenate([p[1] for p in parts])
        values = np.concatenate([p[2] for p in parts])
        keep = (values <= np.minimum(second, seed2)[rows] + 2.0 * query_error[rows]) | (
            values <= self.reference_best[cols] + 2.0 * self.reference_error[cols]
        )
        return rows[keep], cols[keep], values[keep]


def _spread(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` distinct indices spread evenly over ``range(n)`` (no randomness)."""
    return np.unique(np.linspace(0, n - 1, num=min(n, k)).round().astype(np.int64))


def distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of ``x``: the index of each one's first occurrence, each row's label, the counts.

    ``x[first][label]`` equals ``x`` (rows are compared by value; -0.0 and 0.0
    may stay apart, which changes no distance).
    """
    hashes = np.fromiter((hash(row.tobytes()) for row in x), dtype=np.int64, count=len(x))
    label, _ = pd.factorize(hashes)
    _, first, counts = np.unique(label, return_index=True, return_counts=True)
    for start in range(0, len(x), _SLICE_ROWS):
        stop = min(start + _SLICE_ROWS, len(x))
        if not (x[start:stop] == x[first[label[start:stop]]]).all():
            # A hash collision (about 2^-64 per pair): fall back to sorting the rows.
            _, first, label, counts = np.unique(x, axis=0, return_index=True, return_inverse=True, return_counts=True)
            break
    return first, label.reshape(-1), counts


def nearest_neighbours(
    query: np.ndarray,
    reference: np.ndarray,
    *,
    chunk_rows: int = 512,
    block_rows: int = 4096,
    n_jobs: int = 2,
    executor=None,
) -> Neighbours:
    """Exact nearest neighbours (Euclidean) of ``query`` rows among ``reference`` rows and back.

    Equal to brute force with :func:`exact_distances` over every pair: nearest
    distance and index (lowest index among ties), second-nearest distance, and
    each reference's nearest query distance. Repeated rows are searched once
    (:func:`distinct_rows`), so duplicates cost neither time nor candidates.

    Args:
        query: (n_q, d) embeddings.
        reference: (n_r, d) embeddings.
        chunk_rows: queries per block.
        block_rows: references per block.
        n_jobs: worker threads (BLAS runs single-threaded inside each).
        executor: an ``auditor.execution.Executor`` (anything with its ``split`` and
            ``map``): the queries are cut into contiguous parts searched on its
            workers against the whole reference (shared once per worker); the
            result is the same (:func:`_combine_parts`). ``None``: this process only.
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
    if not (np.isfinite(query).all() and np.isfinite(reference).all()):
        raise ValueError("query and reference must be finite (no NaN or inf)")
    query = np.ascontiguousarray(query)
    reference = np.ascontiguousarray(reference)
    n_parts = 1 if executor is None else executor.split(len(query), min_items=MIN_QUERIES_PER_PART)
    if n_parts > 1:
        bounds = np.linspace(0, len(query), n_parts + 1).round().astype(np.int64)
        parts = [query[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        found = executor.map(_neighbours_part, parts, shared=(reference, chunk_rows, block_rows))
        return _combine_parts(found)
    q_first, q_label, q_counts = distinct_rows(query)
    r_first, r_label, r_counts = distinct_rows(reference)
    distinct_query = query if len(q_first) == len(query) else query[q_first]
    distinct_reference = reference if len(r_first) == len(reference) else reference[r_first]
    found = _distinct_neighbours(distinct_query, distinct_reference, r_first, chunk_rows, block_rows, n_jobs)
    query_distance, best, query_second, reference_distance = found
    # A repeated nearest reference is also the second nearest.
    repeated = r_counts[best] > 1
    query_second[repeated] = query_distance[repeated]
    return Neighbours(
        query_distance=query_distance[q_label],
        query_index=r_first[best][q_label],
        query_second=query_second[q_label],
        reference_distance=reference_distance[r_label],
    )


#: Fewest queries worth a part of their own on a worker (each worker receives the whole reference).
MIN_QUERIES_PER_PART = 20_000


def _neighbours_part(shared, query: np.ndarray) -> Neighbours:
    """On a worker: the neighbours of one part of the queries among every reference (one thread)."""
    reference, chunk_rows, block_rows = shared
    return nearest_neighbours(query, reference, chunk_rows=chunk_rows, block_rows=block_rows, n_jobs=1)


def _combine_parts(parts: list[Neighbours]) -> Neighbours:
    """The neighbours of all queries from those of contiguous parts, each searched against every reference.

    A query's nearest and second-nearest references, and the tie to the lowest
    index, do not depend on the other queries, so the parts' query results are
    concatenated; a reference's nearest query is the nearest of each part's, so
    its distance is their minimum. Every distance is :func:`exact_distances` of
    the same pair of rows, so the result equals one search over all queries bit for bit.
    """
    return Neighbours(
        query_distance=np.concatenate([p.query_distance for p in parts]),
        query_index=np.concatenate([p.query_index for p in parts]),
        query_second=np.concatenate([p.query_second for p in parts]),
        reference_distance=np.minimum.reduce([p.reference_distance for p in parts]),
    )


def _distinct_neighbours(query, reference, reference_label, chunk_rows, block_rows, n_jobs):
    """The search over distinct rows: nearest distance, its reference (position in ``reference``;
    ties go to the lowest ``reference_label``), second distance among distinct references, and
    each reference's nearest distance."""
    n_q, n_r = len(query), len(reference)
    centre = reference.mean(axis=0, dtype=np.float64)
    qa, query_norm = _augment(query, centre, query=True)
    ra, reference_norm = _augment(reference, centre, query=False)
    c = screen_error_coefficient(query.shape[1])
    query_error = c * (query_norm + reference_norm.max()) ** 2
    reference_error = c * (query_norm.max() + reference_norm) ** 2

    with threadpool_limits(limits=1):
        # Seed: the smallest screened value against a spread sample of queries bounds S1(r) from above.
        sample_q = qa[_spread(n_q, _SEED_ROWS)]
        reference_seed1 = np.empty(n_r, dtype=np.float64)
        for start in range(0, n_r, block_rows):
            stop = min(start + block_rows, n_r)
            reference_seed1[start:stop] = (sample_q @ ra[start:stop].T).min(axis=0)
        scan = _Scan(qa, ra, query_error, reference_error, reference_seed1, block_rows)
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            starts = range(0, n_q, chunk_rows)
            chunks = list(pool.map(scan.chunk, starts, [min(s + chunk_rows, n_q) for s in starts]))
    del scan, qa, ra

    rows = np.concatenate([start + part[0].astype(np.int64) for start, part, _ in chunks])
    cols = np.concatenate([part[1] for _, part, _ in chunks])
    values = np.concatenate([part[2] for _, part, _ in chunks])
    second = np.concatenate([s for _, _, s in chunks])
    del chunks
    reference_best = np.full(n_r, np.inf)
    np.minimum.at(reference_best, cols, values)
    keep_query = values <= second[rows] + 2.0 * query_error[rows]
    keep_reference = values <= reference_best[cols] + 2.0 * reference_error[cols]
    keep = keep_query | keep_reference
    rows, cols, keep_query, keep_reference = rows[keep], cols[keep], keep_query[keep], keep_reference[keep]
    del values, keep

    distance = np.empty(rows.size, dtype=np.float64)
    for start in range(0, rows.size, _SLICE_ROWS):
        stop = min(start + _SLICE_ROWS, rows.size)
        distance[start:stop] = exact_distances(query[rows[start:stop]], reference[cols[start:stop]])

    # Per query: sort its candidates by (distance, reference label); first two give the answer.
    q_rows, q_cols, q_dist = rows[keep_query], cols[keep_query], distance[keep_query]
    order = np.lexsort((reference_label[q_cols], q_dist, q_rows))
    q_rows, q_cols, q_dist = q_rows[order], q_cols[order], q_dist[order]
    starts = np.flatnonzero(np.r_[True, q_rows[1:] != q_rows[:-1]])
    if starts.size != n_q or not np.array_equal(q_rows[starts], np.arange(n_q)):
        raise AssertionError("screen lost a query's nearest reference (bug)")
    query_distance = q_dist[starts]
    best = q_cols[starts].astype(np.int64)
    has_second = np.r_[starts[1:], q_rows.size] - starts > 1
    query_second = np.full(n_q, np.inf)
    query_second[has_second] = q_dist[starts[has_second] + 1]
    if n_r > 1 and not has_second.all():
        raise AssertionError("screen lost a query's second-nearest reference (bug)")

    reference_distance = np.full(n_r, np.inf)
    np.minimum.at(reference_distance, cols[keep_reference], distance[keep_reference])
    if not np.isfinite(reference_distance).all():
        raise AssertionError("screen lost a reference's nearest query (bug)")
    return query_distance, best, query_second, reference_distance
