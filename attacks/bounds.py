"""Empirical lower bounds on the epsilon of a DP training run (pure math).

Two estimators, both returning natural-logarithm epsilons, never negative:

- :func:`epsilon_lower_bound`: from the confusion counts of one membership test
  with exact Clopper–Pearson bounds on its error rates (Nasr, Song, Thakurta,
  Papernot & Carlini 2021, "Adversary Instantiation: Lower Bounds for
  Differentially Private Machine Learning"; Jagielski, Ullman & Oprea 2020).
- :func:`one_run_epsilon`: from guesses on canaries each included with probability
  1/2 in a single training run (Steinke, Nasr & Jagielski 2023, "Privacy Auditing
  with One (1) Training Run", Theorem 3.1 and its Appendix D code).
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
from scipy import stats

from attacks.intervals import clopper_pearson_upper

#: Tolerance of the bisection in :func:`one_run_epsilon`.
EPSILON_TOLERANCE = 1e-5


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _check_delta_significance(delta: float, significance: float) -> None:
    if not (math.isfinite(delta) and 0 <= delta < 1):
        raise ValueError(f"delta must lie in [0, 1), got {delta!r}")
    if not 0 < significance < 1:
        raise ValueError(f"significance must lie in (0, 1), got {significance!r}")


def _log_ratio(numerator: float, denominator: float) -> float:
    """``ln(numerator) - ln(denominator)``, or 0 when the numerator is not positive."""
    if numerator <= 0:
        return 0.0
    return math.log(numerator) - math.log(denominator)


def epsilon_lower_bound(
    *,
    tp: int,
    fn: int,
    fp: int,
    tn: int,
    delta: float = 0.0,
    significance: float = 0.05,
    two_sided: bool = False,
) -> float:
    """Lower bound on epsilon from one membership test's confusion counts.

    For an (epsilon, delta)-DP mechanism every test satisfies
    ``1 - FNR - delta <= e^eps * FPR`` (and, symmetrically,
    ``1 - FPR - delta <= e^eps * FNR``). With one-sided Clopper–Pearson upper
    bounds ``FNR_hat`` on ``fn / (tp + fn)`` and ``FPR_hat`` on ``fp / (fp + tn)``,
    each at level ``significance / 2`` (so the bound holds with probability at
    least ``1 - significance``)::

        eps = max(0, ln(1 - FNR_hat - delta) - ln(FPR_hat))

    and 0 when ``1 - FNR_hat <= delta``. ``two_sided=True`` also tries
    ``ln(1 - FPR_hat - delta) - ln(FNR_hat)`` and keeps the larger.

    Args:
        tp, fn: members guessed "in" / "out".
        fp, tn: non-members guessed "in" / "out".
        delta: the delta of the DP claim.
        significance: probability that the bound is wrong.
        two_sided: also test in the opposite direction.

    Returns:
        The bound, a float >= 0.
    """
    tp, fn, fp, tn = (_count(n, v) for n, v in (("tp", tp), ("fn", fn), ("fp", fp), ("tn", tn)))
    _check_delta_significance(delta, significance)
    alpha = significance / 2.0
    fnr_hat = clopper_pearson_upper(successes=fn, trials=tp + fn, alpha=alpha)
    fpr_hat = clopper_pearson_upper(successes=fp, trials=fp + tn, alpha=alpha)
    bound = _log_ratio(1.0 - fnr_hat - delta, fpr_hat)
    if two_sided:
        bound = max(bound, _log_ratio(1.0 - fpr_hat - delta, fnr_hat))
    return max(0.0, bound)


def one_run_p_value(
    *, epsilon: float, num_canaries: int, num_guesses: int, num_correct: int, delta: float = 0.0
) -> float:
    """p-value of ``num_correct`` right guesses under (epsilon, delta)-DP.

    With ``q = e^eps / (1 + e^eps)``, ``m`` canaries, ``r`` guesses, ``v`` correct::

        p = P[Bin(r, q) >= v] + 2 m delta * max_{i=1..v} P[v - i <= Bin(r, q) <= v - 1] / i

    (the delta term is absent when ``delta = 0``), capped at 1.
    """
    m, r, v = num_canaries, num_guesses, num_correct
    q = 1.0 / (1.0 + math.exp(-epsilon))
    tail = float(stats.binom.sf(v - 1, r, q))
    if delta == 0 or v == 0:
        return min(1.0, tail)
    # window[i-1] = P[v - i <= Bin <= v - 1] for i = 1..v
    window = np.cumsum(stats.binom.pmf(np.arange(v - 1, -1, -1), r, q))
    spread = float(np.max(window / np.arange(1, v + 1)))
    return min(1.0, tail + 2.0 * m * delta * spread)


def one_run_epsilon(
    *,
    num_canaries: int,
    num_guesses: int,
    num_correct: int,
    delta: float = 0.0,
    significance: float = 0.05,
) -> float:
    """Lower bound on epsilon from one training run (Steinke, Nasr & Jagielski 2023).

    Each of ``num_canaries`` canaries was included independently with probability
    1/2; the auditor guessed inclusion for ``num_guesses`` of them (abstaining on
    the rest) and ``num_correct`` guesses were right. The bound is the largest
    epsilon whose :func:`one_run_p_value` is below ``significance`` (0 if none),
    found by bisection to :data:`EPSILON_TOLERANCE`; the lower end of the final
    bracket is returned, so the result never overstates the bound.

    Returns:
        The bound, a float >= 0.
    """
    m = _count("num_canaries", num_canaries)
    r = _count("num_guesses", num_guesses)
    v = _count("num_correct", num_correct)
    if r > m:
        raise ValueError(f"num_guesses ({r}) must not exceed num_canaries ({m})")
    if v > r:
        raise ValueError(f"num_correct ({v}) must not exceed num_guesses ({r})")
    _check_delta_significance(delta, significance)

    def rejected(eps: float) -> bool:
        p = one_run_p_value(epsilon=eps, num_canaries=m, num_guesses=r, num_correct=v, delta=delta)
        return p < significance

    if not rejected(0.0):
        return 0.0
    low, high = 0.0, 1.0
    while rejected(high):
        low, high = high, high * 2.0
    while high - low > EPSILON_TOLERANCE:
        mid = (low + high) / 2.0
        if rejected(mid):
            low = mid
        else:
            high = mid
    return low


def max_attainable_epsilon(
    *,
    n_members: int,
    n_nonmembers: int,
    delta: float = 0.0,
    significance: float = 0.05,
    two_sided: bool = False,
) -> float:
    """The largest :func:`epsilon_lower_bound` a test on these sizes can give: its power.

    A perfect attacker (``tp = n_members``, ``fp = 0``) has Clopper–Pearson upper
    bounds ``FNR_hat = 1 - (s/2)^(1/n_m)`` and ``FPR_hat = 1 - (s/2)^(1/n_n)`` at
    ``s = significance``, so::

        eps_max = ln((s/2)^(1/n_m) - delta) - ln(1 - (s/2)^(1/n_n))

    (0 when the first logarithm's argument is not positive). No attacker, however
    strong, makes the audit report more; a claimed epsilon above ``eps_max``
    cannot be shown wrong by this audit.
    """
    return epsilon_lower_bound(
        tp=_count("n_members", n_members), fn=0, fp=0, tn=_count("n_nonmembers", n_nonmembers),
        delta=delta, significance=significance, two_sided=two_sided,
    )


def one_run_max_attainable(
    *, num_canaries: int, num_guesses: int, num_included: int, delta: float = 0.0, significance: float = 0.05
) -> float:
    """The largest :func:`one_run_epsilon` for ``num_guesses`` guesses: a perfect attacker's.

    A perfect attacker ranks the ``num_included`` inserted canaries first, so
    ``min(num_guesses, num_included)`` of its top ``num_guesses`` guesses are right.
    With every guess right and ``delta = 0`` the bound has a closed form
    (``P[Bin(r, q) >= r] = q^r``)::

        eps_max = logit(significance^(1/r)) = ln(q / (1 - q)),  q = significance^(1/r)
    """
    included = _count("num_included", num_included)
    if included > num_canaries:
        raise ValueError(f"num_included ({included}) must not exceed num_canaries ({num_canaries})")
    return one_run_epsilon(num_canaries=num_canaries, num_guesses=num_guesses,
                           num_correct=min(_count("num_guesses", num_guesses), included),
                           delta=delta, significance=significance)
