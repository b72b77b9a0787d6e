"""Per-step estimates of a DP-SGD step from white-box gradient canaries, with confidence bounds.

A DP-SGD step, seen along a canary's direction ``u`` and in units of the clipping norm
``C``, is a Poisson-subsampled Gaussian mechanism: the observation is

    s = a * b + N(0, sigma^2),        b ~ Bernoulli(q)

with ``a = 1`` (the canary's clipped gradient) when the implementation is correct. Its
privacy, composed over steps by an accountant, depends only on ``mu = a / sigma`` and
``q`` (Dong, Roth & Su 2022; Gopi et al. 2021). We estimate both from the observations
of inserted canaries (``b`` known) and held-out canaries (``b = 0`` always), the per-step
form of the Gaussian-DP fit of Andrew et al. (ICLR 2024, "One-shot Empirical Privacy
Estimation for Federated Learning") with the observed updates of Nasr et al. (USENIX
Security 2023, "Tight Auditing of Differentially Private Machine Learning"):

    mu_hat = (mean(s | b = 1) - mean(s_held_out)) / sd(s_held_out),    q_hat = hits / trials.

One-sided lower confidence bounds, each at level ``alpha / 3`` (Bonferroni: all three
hold together with probability >= 1 - alpha):

- the mean shift ``d``: ``d_hat - z_{1 - alpha/3} * sqrt(var_in / n_in + var_out / n_out)``
  (normal approximation, ``n_in`` in the thousands);
- the noise sd from above: ``sqrt((n_out - 1) s^2 / chi2_{alpha/3, n_out - 1})``;
- ``q`` from below: Clopper-Pearson.

``mu_lower = max(0, d_lower) / sd_upper``. Small ``mu`` or ``q`` mean more privacy,
so an accountant fed ``(1 / mu_lower, q_lower)`` gives a lower confidence bound on the
epsilon of the mechanism as implemented (under the model above: independent steps,
Gaussian noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from attacks.intervals import clopper_pearson_lower


@dataclass(frozen=True)
class StepEstimate:
    """Point estimates and lower confidence bounds of one DP-SGD step along the canaries.

    Attributes:
        mu, mu_lower: signal-to-noise ratio ``a / sigma`` of a sampled canary.
        sample_rate, sample_rate_lower: the rate at which steps sampled a canary.
        shift, noise_sd: ``a`` and ``sigma`` estimated, in clipping norms.
        n_included, n_held_out, hits, trials: the counts behind them.
    """

    mu: float
    mu_lower: float
    sample_rate: float
    sample_rate_lower: float
    shift: float
    noise_sd: float
    n_included: int
    n_held_out: int
    hits: int
    trials: int


def shift_lower(*, included: np.ndarray, held_out: np.ndarray, alpha: float) -> tuple[float, float]:
    """``(d_hat, d_lower)``: the mean of ``included`` minus the mean of ``held_out``, and its
    one-sided lower bound at level ``alpha`` (normal approximation, unequal variances)."""
    if len(included) < 2 or len(held_out) < 2:
        raise ValueError("need at least two included and two held-out observations")
    d = float(np.mean(included) - np.mean(held_out))
    se = math.sqrt(np.var(included, ddof=1) / len(included) + np.var(held_out, ddof=1) / len(held_out))
    return d, d - float(stats.norm.isf(alpha)) * se


def sd_upper(values: np.ndarray, *, alpha: float) -> tuple[float, float]:
    """``(s, s_upper)``: sample sd and its one-sided upper bound at level ``alpha``,
    ``sqrt((n - 1) s^2 / chi2_alpha(n - 1))`` (exact for normal samples)."""
    n = len(values)
    if n < 2:
        raise ValueError("need at least two observations")
    s2 = float(np.var(values, ddof=1))
    return math.sqrt(s2), math.sqrt((n - 1) * s2 / float(stats.chi2.ppf(alpha, n - 1)))


def estimate_step(*, included: np.ndarray, held_out: np.ndarray, hits: int, trials: int,
                  alpha: float = 0.05) -> StepEstimate:
    """Estimate ``mu`` and ``q`` of a subsampled Gaussian step and their lower bounds at
    joint confidence ``1 - alpha`` (see the module docstring).

    Args:
        included: observations of inserted canaries at the steps that sampled them.
        held_out: observations of held-out canaries (never sampled).
        hits, trials: canary samplings counted, out of ``inserted canaries * steps``.
        alpha: ``1 - confidence``.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    included, held_out = np.asarray(included, float).ravel(), np.asarray(held_out, float).ravel()
    d, d_lo = shift_lower(included=included, held_out=held_out, alpha=alpha / 3)
    sd, sd_hi = sd_upper(held_out, alpha=alpha / 3)
    q_lo = clopper_pearson_lower(successes=hits, trials=trials, alpha=alpha / 3)
    return StepEstimate(mu=_ratio(max(0.0, d), sd), mu_lower=_ratio(max(0.0, d_lo), sd_hi), sample_rate=hits / trials,
                        sample_rate_lower=q_lo, shift=d, noise_sd=sd, n_included=len(included),
                        n_held_out=len(held_out), hits=int(hits), trials=int(trials))


def _ratio(shift: float, sd: float) -> float:
    """``shift / sd``; infinite for a positive shift without noise (0 / 0 is 0)."""
    if sd > 0:
        return shift / sd
    return math.inf if shift > 0 else 0.0
