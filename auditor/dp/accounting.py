"""Privacy accounting on top of Opacus' accountants.

The whole private computation is a history of (noise multiplier, sample rate,
steps) Gaussian mechanisms, the form Opacus' accountants compose:

- DP-SGD: ``(sigma, q, T)``, Poisson sampling with rate ``q`` for ``T`` steps;
- DP domain selection (noisy thresholded counts of categorical values, see
  ``select_domains``): one Gaussian mechanism with ``q = 1``.

epsilon is computed from the recorded history with the PRV accountant (Gopi et
al. 2021) by default and RDP (Mironov 2017) is also reported, so anyone can
recompute it from ``privacy.json``. Nothing here depends on how the clipped
gradient sum is computed (Opacus hooks, ghost clipping, book-keeping).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Sequence

import numpy as np
from opacus.accountants import PRVAccountant, RDPAccountant
from scipy.stats import norm

History = list[tuple[float, float, int]]
ACCOUNTANTS = {"prv": PRVAccountant, "rdp": RDPAccountant}


def default_delta(n_records: int) -> float:
    """delta = min(1e-5, 0.1 / n): always an order of magnitude below 1/n."""
    if n_records < 1:
        raise ValueError("n_records must be >= 1")
    return min(1e-5, 0.1 / n_records)


def epsilon_of(history: Sequence[tuple[float, float, int]], *, delta: float, accountant: str = "prv") -> float:
    """epsilon of a composed history of Poisson-subsampled Gaussian mechanisms at ``delta``."""
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {accountant!r} (expected prv or rdp)")
    if not history:
        return 0.0
    acc = ACCOUNTANTS[accountant]()
    acc.history = [(float(s), float(q), int(t)) for s, q, t in history]
    with warnings.catch_warnings():
        # PRV logs log(0) warnings for q = 1 mechanisms; the result is exact.
        warnings.simplefilter("ignore", RuntimeWarning)
        # PRV sizes its domain with RDP, which warns when alpha's range is tight.
        warnings.simplefilter("ignore", UserWarning)
        return float(acc.get_epsilon(delta))


def noise_for_epsilon(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    prior: Iterable[tuple[float, float, int]] = (),
    accountant: str = "prv",
    tolerance: float = 0.002,
) -> float:
    """The smallest DP-SGD noise multiplier whose composed epsilon is <= target.

    Bisection on sigma, like ``opacus.accountants.utils.get_noise_multiplier``,
    but over the whole history (``prior`` mechanisms, e.g. domain selection,
    come first). Raises ValueError when the prior mechanisms alone exceed the target.
    """
    if target_epsilon <= 0:
        raise ValueError("target_epsilon must be > 0")
    prior = list(prior)
    if prior and epsilon_of(prior, delta=delta, accountant=accountant) >= target_epsilon:
        raise ValueError("the domain selection alone spends the whole epsilon budget")

    def eps(sigma: float) -> float:
        return epsilon_of(prior + [(sigma, sample_rate, steps)], delta=delta, accountant=accountant)

    lo, hi = 0.0, 10.0
    while eps(hi) > target_epsilon:
        lo, hi = hi, hi * 2
        if hi > 1e4:
            raise ValueError("no noise multiplier reaches the target epsilon")
    while hi - lo > tolerance * hi:
        mid = (lo + hi) / 2
        if eps(mid) <= target_epsilon:
            hi = mid
        else:
            lo = mid
    return hi


def selection_threshold(*, sigma: float, delta_selection: float, columns: int) -> float:
    """Release threshold tau for noisy counts with Gaussian noise of std ``sigma``.

    A value held by a single record is released only if ``1 + N(0, sigma^2) > tau``;
    with ``tau = 1 + sigma * Phi^{-1}(1 - delta_selection / columns)`` the chance
    that any of one record's ``columns`` values leaks this way is at most
    ``delta_selection`` (union bound), the delta paid on top of the Gaussian
    mechanism for the unknown domain (Korolova et al. 2009; Gopi et al. 2020).
    """
    return 1.0 + sigma * float(norm.isf(delta_selection / max(1, columns)))


def select_domains(
    values: dict[str, Sequence[str]],
    *,
    noise_multiplier: float,
    delta_selection: float,
    rng: np.random.Generator,
) -> tuple[dict[str, list[str]], dict]:
    """Select categorical domains with DP: noisy thresholded counts.

    Each record holds one value per column, so removing it changes ``k`` counts by
    1: the L2 sensitivity is sqrt(k). Counts get N(0, sigma^2) noise with
    ``sigma = noise_multiplier * sqrt(k)`` and values whose noisy count passes
    ``selection_threshold`` are kept (sorted by noisy count). As a mechanism this
    is one Gaussian with noise multiplier ``noise_multiplier`` (sample rate 1) plus
    ``delta_selection``; both go into the accounting.

    Returns:
        (domains, record) where record has the mechanism's parameters for privacy.json.
    """
    k = len(values)
    if k == 0:
        return {}, {}
    sigma = noise_multiplier * math.sqrt(k)
    tau = selection_threshold(sigma=sigma, delta_selection=delta_selection, columns=k)
    domains = {}
    for name, column in values.items():
        uniques, counts = np.unique(np.asarray([str(v) for v in column if str(v) != ""]), return_counts=True)
        noisy = counts + rng.normal(0.0, sigma, size=len(counts))
        keep = np.flatnonzero(noisy > tau)
        order = keep[np.argsort(-noisy[keep], kind="stable")]
        domains[name] = [str(uniques[i]) for i in order]
    record = {
        "mechanism": "gaussian-thresholded-counts",
        "columns": sorted(values),
        "noise_multiplier": noise_multiplier,
        "sigma": sigma,
        "threshold": tau,
        "delta": delta_selection,
    }
    return domains, record
