"""Leak evidence measured against a control: training records versus held-out records.

A check on synthetic data asks "does the synthetic data reveal this record?"
for each record of the training split ("hit") and, as the control, for each
record of the holdout split, drawn from the same population and never seen by
the generator. Per-record rates do not depend on how many records each split
holds (a record's value reappears in the synthetic data or not, whatever the
split sizes), so a training split four times the holdout's needs no resizing::

    train_rate   = train_hits / n_train
    control_rate = control_hits / n_control
    excess_rate  = train_rate - control_rate
    excess       = n_train * excess_rate      (training records beyond chance)

Interval: the corners of two Clopper–Pearson intervals, each at
``1 - (1 - confidence) / 2`` (Bonferroni), as in :mod:`attacks.inference`::

    excess_rate_ci = [train_lo - control_hi, train_hi - control_lo]

so its lower end is a one-sided lower bound at level ``confidence``.

Test: under the null hypothesis the generator did not look at which records
were in training, so given the pooled records and which of them are hits, the
training split is a uniform random draw of ``n_train`` of the
``n_train + n_control`` pooled records and ``train_hits`` is hypergeometric.
The one-sided p-value is Fisher's exact test::

    p = P[X >= train_hits],  X ~ Hypergeometric(N = n_train + n_control,
                                               K = train_hits + control_hits, n = n_train)

(Fisher 1935; for the control-based design, Giomi et al. 2023, "A Unified
Framework for Quantifying Privacy Risk in Synthetic Data", PoPETs.)
"""

from __future__ import annotations

from scipy import stats

from attacks.intervals import difference_interval


def fisher_one_sided(*, train_hits: int, train_n: int, control_hits: int, control_n: int) -> float:
    """``P[X >= train_hits]`` for ``X ~ Hypergeometric(train_n + control_n, train_hits + control_hits, train_n)``.

    1 when there are no hits at all.
    """
    total = train_n + control_n
    hits = train_hits + control_hits
    if hits == 0:
        return 1.0
    return float(stats.hypergeom.sf(train_hits - 1, total, hits, train_n))


def excess_over_control(
    *, train_hits: int, train_n: int, control_hits: int, control_n: int, confidence: float = 0.95
) -> dict:
    """Rates of both splits, the excess (rate and records) with its interval, and the p-value.

    Returns a dict with ``train_hits``, ``train_n``, ``train_rate``,
    ``control_hits``, ``control_n``, ``control_rate``, ``excess_rate``,
    ``excess_rate_ci``, ``excess`` (records), ``excess_ci`` (records),
    ``excess_lower`` (one-sided lower bound at ``confidence``, in records,
    floored at 0), ``p_value`` and ``confidence`` (formulas in the module docstring).

    Raises:
        ValueError: a split is empty, hits outside ``[0, n]``, or ``confidence`` outside (0, 1).
    """
    for name, hits, n in (("train", train_hits, train_n), ("control", control_hits, control_n)):
        if n < 1:
            raise ValueError(f"{name}_n must be >= 1, got {n!r}")
        if not 0 <= hits <= n:
            raise ValueError(f"{name}_hits must lie in [0, {name}_n={n}], got {hits!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    train_rate = train_hits / train_n
    control_rate = control_hits / control_n
    rate_ci = difference_interval(train_successes=train_hits, train_trials=train_n, control_successes=control_hits,
                                  control_trials=control_n, confidence=confidence)
    return {
        "train_hits": int(train_hits),
        "train_n": int(train_n),
        "train_rate": train_rate,
        "control_hits": int(control_hits),
        "control_n": int(control_n),
        "control_rate": control_rate,
        "excess_rate": train_rate - control_rate,
        "excess_rate_ci": rate_ci,
        "excess": train_n * (train_rate - control_rate),
        "excess_ci": [train_n * rate_ci[0], train_n * rate_ci[1]],
        "excess_lower": max(0.0, train_n * rate_ci[0]),
        "p_value": fisher_one_sided(train_hits=train_hits, train_n=train_n, control_hits=control_hits,
                                    control_n=control_n),
        "confidence": confidence,
    }
