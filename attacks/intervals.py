"""Exact (Clopper–Pearson) confidence bounds for a binomial proportion.

Clopper, C. J. & Pearson, E. S. (1934). "The use of confidence or fiducial limits
illustrated in the case of the binomial." Biometrika 26(4).

With ``k`` successes in ``n`` trials, the one-sided upper bound at level ``alpha``
is the ``1 - alpha`` quantile of ``Beta(k + 1, n - k)`` (1 when ``k = n``) and the
lower bound the ``alpha`` quantile of ``Beta(k, n - k + 1)`` (0 when ``k = 0``).
``k`` may be fractional (a count where ties score 1/2); the Beta quantiles are
defined for any real ``0 <= k <= n``.
"""

from __future__ import annotations

import math

from scipy import stats


def _check(successes: float, trials: float, alpha: float) -> None:
    if not (math.isfinite(trials) and trials >= 0):
        raise ValueError(f"trials must be a finite number >= 0, got {trials!r}")
    if not (math.isfinite(successes) and 0 <= successes <= trials):
        raise ValueError(f"successes must lie in [0, trials={trials}], got {successes!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")


def clopper_pearson_upper(*, successes: float, trials: float, alpha: float) -> float:
    """One-sided upper confidence bound on a proportion at level ``alpha``.

    ``P[p <= upper] >= 1 - alpha``. Returns 1 with no trials or when ``k = n``.
    """
    _check(successes, trials, alpha)
    if trials == 0 or successes >= trials:
        return 1.0
    return float(stats.beta.ppf(1.0 - alpha, successes + 1, trials - successes))


def clopper_pearson_lower(*, successes: float, trials: float, alpha: float) -> float:
    """One-sided lower confidence bound on a proportion at level ``alpha``.

    Returns 0 with no trials or when ``k = 0``.
    """
    _check(successes, trials, alpha)
    if trials == 0 or successes <= 0:
        return 0.0
    return float(stats.beta.ppf(alpha, successes, trials - successes + 1))


def clopper_pearson_interval(
    *, successes: float, trials: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Two-sided interval with ``(1 - confidence) / 2`` in each tail."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    alpha = (1.0 - confidence) / 2.0
    return (
        clopper_pearson_lower(successes=successes, trials=trials, alpha=alpha),
        clopper_pearson_upper(successes=successes, trials=trials, alpha=alpha),
    )


def two_rate_intervals(
    *, train_successes: float, train_trials: float, control_successes: float, control_trials: float,
    confidence: float = 0.95,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Clopper–Pearson intervals of a training rate and its control rate that hold together.

    Each is taken at ``1 - (1 - confidence) / 2`` (Bonferroni), so both cover their
    rate at once with probability at least ``confidence``; any function of the two
    rates monotone in each is then bounded at the corners, e.g. the excess
    ``[train_lo - control_hi, train_hi - control_lo]`` (:func:`difference_interval`).

    Returns:
        ``((train_lo, train_hi), (control_lo, control_hi))``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    each = 1.0 - (1.0 - confidence) / 2.0
    return (clopper_pearson_interval(successes=train_successes, trials=train_trials, confidence=each),
            clopper_pearson_interval(successes=control_successes, trials=control_trials, confidence=each))


def difference_interval(
    *, train_successes: float, train_trials: float, control_successes: float, control_trials: float,
    confidence: float = 0.95,
) -> list[float]:
    """Interval of ``train rate - control rate`` at ``confidence``: the corners of :func:`two_rate_intervals`."""
    (t_lo, t_hi), (c_lo, c_hi) = two_rate_intervals(
        train_successes=train_successes, train_trials=train_trials, control_successes=control_successes,
        control_trials=control_trials, confidence=confidence)
    return [t_lo - c_hi, t_hi - c_lo]
