"""Duplicated training records and the epsilon that covers them (group privacy).

DP-SGD protects one *record*. A person whose record is present k times in the
training data is a group of k records, and an (eps, delta)-DP mechanism is
(k eps, k e^((k-1) eps) delta)-DP for groups of k (group privacy: Dwork & Roth
2014, "The Algorithmic Foundations of Differential Privacy", Theorem 2.2 for
pure DP; for (eps, delta) the chain D_0, ..., D_k of neighbours gives
delta (1 + e^eps + ... + e^((k-1) eps)) <= k e^((k-1) eps) delta, e.g. Vadhan
2017, "The Complexity of Differential Privacy", Lemma 2.2). So duplicates in
the user's data are covered at a weaker epsilon than the claim; this module
counts them and states that epsilon.

Only counts leave this module: no value of any record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def group_privacy(*, epsilon: float, delta: float, copies: int) -> tuple[float, float]:
    """``(k eps, min(1, k e^((k-1) eps) delta))`` for a group of ``copies = k`` records.

    Args:
        epsilon, delta: the per-record guarantee.
        copies: the group size k >= 1.

    Returns:
        The group's (epsilon, delta); delta is capped at 1 (no guarantee left).
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be an integer >= 1, got {copies!r}")
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    if not (math.isfinite(delta) and 0 <= delta <= 1):
        raise ValueError(f"delta must lie in [0, 1], got {delta!r}")
    if delta == 0 or copies == 1:
        return copies * epsilon, delta
    exponent = (copies - 1) * epsilon + math.log(copies * delta)
    return copies * epsilon, 1.0 if exponent >= 0 else math.exp(exponent)


def duplicate_counts(frame: pd.DataFrame, columns: Sequence[str]) -> dict:
    """Records of ``frame`` whose values on ``columns`` occur more than once.

    Values are compared exactly as stored (missing values equal each other).

    Returns:
        ``{"columns", "n_records", "duplicated_records", "duplicate_groups",
        "max_copies", "by_copies": [{"copies": k, "groups": g, "records": k g}]}``,
        where ``duplicated_records`` counts every record of a group of two or more
        and ``by_copies`` lists only k >= 2, ascending.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"duplicates: columns {missing} are not in the data")
    if not columns:
        raise ValueError("duplicates: no columns to compare")
    sizes = frame.groupby(list(columns), dropna=False, sort=False).size() if len(frame) else pd.Series([], dtype=int)
    histogram = sizes[sizes >= 2].value_counts().sort_index()
    by_copies = [{"copies": int(k), "groups": int(g), "records": int(k * g)} for k, g in histogram.items()]
    return {
        "columns": list(columns),
        "n_records": int(len(frame)),
        "duplicated_records": sum(b["records"] for b in by_copies),
        "duplicate_groups": sum(b["groups"] for b in by_copies),
        "max_copies": max((b["copies"] for b in by_copies), default=1),
        "by_copies": by_copies,
    }


def run(*, train: pd.DataFrame, learned_columns: Sequence[str], epsilon: float | None, delta: float | None) -> dict:
    """The ``duplicates`` audit (``duplicates.json``).

    Args:
        train: the user's training split (canaries excluded).
        learned_columns: the columns the model learns (columns filled with fresh
            fakes never reach the model, so they cannot make or break a duplicate).
        epsilon, delta: the run's claim; None for a non-DP run or a model-free audit.

    Returns:
        ``{"learned": duplicate_counts on the learned columns, with "epsilon"/"delta"
        per multiplicity when a claim is given, "exact": the same on all columns,
        "epsilon", "delta"}``.
    """
    learned = duplicate_counts(train, learned_columns)
    exact = duplicate_counts(train, list(train.columns))
    if epsilon is not None:
        for row in learned["by_copies"]:
            row["epsilon"], row["delta"] = group_privacy(epsilon=epsilon, delta=delta or 0.0, copies=row["copies"])
    return {"learned": learned, "exact": exact, "epsilon": epsilon, "delta": delta}
