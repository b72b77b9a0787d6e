"""Exposure of canary secrets (Carlini et al., "The Secret Sharer", USENIX Security 2019).

Pure functions, same conventions as TensorFlow Privacy's ``secret_sharer``:
a *score* is a log-perplexity ``-log p(secret | prefix)`` (lower = more likely;
any strictly decreasing function of the likelihood gives the same ranks), ranks
count ties against the secret (pessimistic for privacy), logarithms are base 2.
A score of ``+inf`` is a candidate the model can never produce (probability 0
under its grammar): it ranks after every secret and still counts in ``N``.

``secret_scores`` maps a key (usually the repetition count) to a list of
scores; every function returns a dict with the same keys, each a list in the
input order.
"""

from __future__ import annotations

import math
from typing import Hashable, Mapping, Sequence

import numpy as np
from scipy import stats


def _references(reference_scores: Sequence[float]) -> np.ndarray:
    ref = np.asarray(reference_scores, dtype=float)
    if ref.ndim != 1 or ref.size == 0:
        raise ValueError("reference_scores must be a non-empty 1-d list of scores")
    if np.any(np.isnan(ref)) or np.any(ref == -np.inf):
        raise ValueError("reference_scores contains NaN or -inf scores")
    return np.sort(ref)


def exposure_interpolation(
    secret_scores: Mapping[Hashable, Sequence[float]], reference_scores: Sequence[float]
) -> dict[Hashable, list[float]]:
    """Exposure by rank among references that were not trained on.

    ``rank = 1 + #{r in references : score(r) <= score(secret)}`` and
    ``exposure = log2(len(references)) - log2(rank)``.

    A secret scored below every reference gets ``log2 N``; one above every
    reference gets ``log2 N - log2(N + 1) < 0``. Ties count against the secret.
    """
    ref = _references(reference_scores)
    n = ref.size
    out = {}
    for key, scores in secret_scores.items():
        s = np.asarray(scores, dtype=float)
        rank = 1 + np.searchsorted(ref, s, side="right")
        out[key] = [float(math.log2(n) - math.log2(r)) for r in rank]
    return out


def exposure_exact(
    secret_scores: Mapping[Hashable, Sequence[float]], space_scores: Sequence[float]
) -> dict[Hashable, list[float]]:
    """Exposure by rank in the whole space R, the secret included (Carlini et al., Def. 4).

    ``space_scores`` holds the score of every element of R, the secret among them
    (scored in the same computation, so its own entry is bit-identical);
    ``rank = #{r in R : score(r) <= score(secret)}`` (>= 1) and
    ``exposure = log2 |R| - log2(rank)``, at most ``log2 |R|``.
    """
    space = _references(space_scores)
    n = space.size
    out = {}
    for key, scores in secret_scores.items():
        s = np.asarray(scores, dtype=float)
        rank = np.searchsorted(space, s, side="right")
        if np.any(rank < 1):
            raise ValueError(f"secret_scores[{key!r}]: a secret scores below every element of the space; "
                             "its own score must be in space_scores")
        out[key] = [float(math.log2(n) - math.log2(r)) for r in rank]
    return out


def exposure_extrapolation(
    secret_scores: Mapping[Hashable, Sequence[float]], reference_scores: Sequence[float]
) -> dict[Hashable, list[float]]:
    """Exposure from a skew-normal fit of the reference scores (Carlini et al., Sec. 4.3).

    ``exposure = -log2 CDF(score(secret))`` with the CDF of
    ``scipy.stats.skewnorm`` fitted to the references by maximum likelihood.
    The tail is evaluated with ``logcdf``, so exposures far beyond the sample
    size stay finite. The fit uses the finite references and needs at least 3
    distinct ones.
    """
    ref = _references(reference_scores)
    ref = ref[np.isfinite(ref)]
    if np.unique(ref).size < 3:
        raise ValueError("reference_scores needs at least 3 distinct finite scores to fit a skew-normal")
    a, loc, scale = stats.skewnorm.fit(ref)
    out = {}
    for key, scores in secret_scores.items():
        s = np.asarray(scores, dtype=float)
        logcdf = stats.skewnorm.logcdf(s, a, loc=loc, scale=scale)
        out[key] = [float(-lc / math.log(2)) for lc in logcdf]
    return out
