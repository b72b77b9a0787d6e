"""Linkability through a released synthetic table (Giomi et al. 2023, the Anonymeter paper).

Linkability is the second risk of the Article 29 Working Party (Opinion 05/2014):
linking two records of the same person held by different parties. One party
knows a target's columns ``A``, another its columns ``B`` (disjoint). Each finds
the ``n_neighbors`` synthetic rows nearest to what it knows; the attack links the
two halves when the two sets share a row. Success on training records minus
success on control records (:mod:`attacks.anonymity`) is what the synthetic data
add to linking its training records.

Distances are the mixed-type distance of :mod:`attacks.encoding`, on each half's
columns alone.
"""

from __future__ import annotations

import numpy as np


def nearest_rows(queries: np.ndarray, references: np.ndarray, *, k: int) -> np.ndarray:
    """Indices of the ``k`` references nearest to each query (Euclidean), shape (queries, k).

    Squared distances come from ``||q||^2 - 2 q.r + ||r||^2`` (one matrix product),
    rounded to 1e-9 so that equal rows tie; ties are broken by the lower reference
    index.
    """
    if k < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {k!r}")
    queries = np.asarray(queries, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    k = min(k, len(references))
    distances = (queries * queries).sum(1)[:, None] - 2.0 * queries @ references.T + (references * references).sum(1)
    distances = np.round(np.maximum(distances, 0.0), 9)
    if k == 1:
        return np.argmin(distances, axis=1)[:, None]  # the first minimum: the lower index on ties
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def links(neighbours_a: np.ndarray, neighbours_b: np.ndarray) -> np.ndarray:
    """Whether each target's two neighbour sets share a row: the attack's success per target."""
    if neighbours_a.shape[0] != neighbours_b.shape[0]:
        raise ValueError("linkability: both halves must have one row of neighbours per target")
    return np.array([bool(set(a.tolist()) & set(b.tolist())) for a, b in zip(neighbours_a, neighbours_b)],
                    dtype=bool)


def split_columns(columns: list[str]) -> tuple[list[str], list[str]]:
    """The default halves ``A``, ``B``: alternate columns in order (each half sees every part of the row)."""
    if len(columns) < 2:
        raise ValueError("linkability needs at least 2 columns to split between two parties")
    return columns[0::2], columns[1::2]
