"""Attribute inference from a released synthetic dataset (pure math + one attack).

The attacker knows a target's quasi-identifiers, finds the synthetic row nearest
on them and reads off its secret column. Success on training records measures
what the synthetic data reveal about them; success on held-out records of the
same population (the control) measures what it reveals about anyone. Following
Giomi et al. 2023 ("A Unified Framework for Quantifying Privacy Risk in
Synthetic Data", the Anonymeter paper)::

    risk = (train - control) / (1 - control)

0 means no more than population-level inference, 1 a perfect attack.
"""

from __future__ import annotations

import numpy as np

from attacks.intervals import two_rate_intervals


def inference_risk(
    *,
    train_successes: int,
    train_trials: int,
    control_successes: int,
    control_trials: int,
    confidence: float = 0.95,
) -> dict:
    """Success rates, risk and its confidence interval.

    The interval combines Clopper–Pearson intervals of the two rates, each at
    ``1 - (1 - confidence) / 2`` (Bonferroni), at their extreme corners::

        lo = (train_lo - control_hi) / (1 - control_hi)
        hi = (train_hi - control_lo) / (1 - control_lo)

    ``risk`` and an end of the interval are None where ``1 - control`` is 0.
    """
    for name, value in (
        ("train_trials", train_trials),
        ("control_trials", control_trials),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    train = train_successes / train_trials
    control = control_successes / control_trials
    (train_lo, train_hi), (control_lo, control_hi) = two_rate_intervals(
        train_successes=train_successes, train_trials=train_trials, control_successes=control_successes,
        control_trials=control_trials, confidence=confidence)

    def risk(t: float, c: float) -> float | None:
        return None if c >= 1.0 else (t - c) / (1.0 - c)

    return {
        "train": train,
        "control": control,
        "risk": risk(train, control),
        "risk_ci": [risk(train_lo, control_hi), risk(train_hi, control_lo)],
        "n_train": int(train_trials),
        "n_control": int(control_trials),
    }


def guesses_correct(
    guesses: np.ndarray, truths: np.ndarray, *, numeric: bool, tolerance: float = 0.0
) -> np.ndarray:
    """Whether each guess is right: equal, or for numbers within ``tolerance`` (absolute).

    A missing truth is never guessed right.
    """
    if numeric:
        guesses = np.asarray(guesses, dtype=np.float64)
        truths = np.asarray(truths, dtype=np.float64)
        return np.isfinite(truths) & (np.abs(guesses - truths) <= tolerance)
    return np.asarray([g == t for g, t in zip(guesses, truths)], dtype=bool)
