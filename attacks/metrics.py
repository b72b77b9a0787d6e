"""Metrics of a membership-inference attack (pure functions).

Convention: a higher score means "more likely a member". Members are the
positives. Following Carlini et al. 2022 ("Membership Inference Attacks From
First Principles"), the headline numbers are the TPR at low FPR, read off the
ROC curve, next to the AUC and the attacker advantage ``max_t (TPR - FPR)``
(Yeom et al. 2018, "Privacy Risk in Machine Learning").
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import roc_curve

#: FPRs at which the TPR is reported.
DEFAULT_FPRS: tuple[float, ...] = (0.001, 0.01, 0.1)
TOO_FEW_NONMEMBERS = "too few non-members"
_BOOTSTRAP_CELLS = 4_000_000


def _scores(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name}: no scores")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: scores must be finite (found NaN or inf)")
    return array


def roc(member, nonmember) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve (``fpr``, ``tpr``) of the rule "member when score >= t", via scikit-learn."""
    member = _scores("member", member)
    nonmember = _scores("nonmember", nonmember)
    labels = np.concatenate([np.ones(member.size), np.zeros(nonmember.size)])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([member, nonmember]), drop_intermediate=False)
    return fpr, tpr


def auc(member, nonmember) -> float:
    """Area under the ROC curve, ``P[S_member > S_nonmember] + P[tie] / 2``.

    Computed from ranks (Mann–Whitney U): ``(R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0)``
    with ``R_1`` the sum of the members' mid-ranks in the pooled sample.
    """
    member = _scores("member", member)
    nonmember = _scores("nonmember", nonmember)
    ranks = stats.rankdata(np.concatenate([member, nonmember]))
    n1, n0 = member.size, nonmember.size
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def auc_confidence_interval(
    member, nonmember, *, n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC.

    Members and non-members are resampled separately (stratified), so each
    replicate keeps both class sizes.
    """
    member = _scores("member", member)
    nonmember = _scores("nonmember", nonmember)
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    rng = np.random.default_rng(seed)
    n1, n0 = member.size, nonmember.size
    # Replicates in batches of about _BOOTSTRAP_CELLS scores keep memory bounded.
    batch = max(1, _BOOTSTRAP_CELLS // (n1 + n0))
    aucs = []
    for start in range(0, n_bootstrap, batch):
        size = min(batch, n_bootstrap - start)
        pooled = np.concatenate(
            [
                member[rng.integers(0, n1, size=(size, n1))],
                nonmember[rng.integers(0, n0, size=(size, n0))],
            ],
            axis=1,
        )
        ranks = stats.rankdata(pooled, axis=1)
        aucs.append((ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2.0) / (n1 * n0))
    aucs = np.concatenate(aucs)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(aucs, [tail, 1.0 - tail])
    return float(low), float(high)


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, *, target: float) -> float:
    """Largest TPR on the ROC curve at an FPR of at most ``target``."""
    if not 0 < target <= 1:
        raise ValueError(f"target FPR must lie in (0, 1], got {target!r}")
    fpr = np.asarray(fpr, dtype=np.float64)
    tpr = np.asarray(tpr, dtype=np.float64)
    allowed = fpr <= target + 1e-12
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def advantage(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Attacker advantage ``max_t (TPR(t) - FPR(t))`` (Yeom et al. 2018), >= 0."""
    return float(max(0.0, np.max(np.asarray(tpr) - np.asarray(fpr))))


def log_roc_points(fpr: np.ndarray, tpr: np.ndarray, *, max_points: int = 200) -> tuple[list, list]:
    """ROC points for a log-log plot: at most ``max_points``, spread evenly in log FPR.

    Points with FPR = 0 or TPR = 0 cannot be drawn on log axes and are left out.
    Each kept point is the highest TPR at or below a log-spaced FPR grid value, so
    the thinned curve stays on the true (step) ROC.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points!r}")
    fpr = np.asarray(fpr, dtype=np.float64)
    tpr = np.asarray(tpr, dtype=np.float64)
    keep = (fpr > 0) & (tpr > 0)
    fpr, tpr = fpr[keep], tpr[keep]
    if fpr.size <= max_points:
        return fpr.tolist(), tpr.tolist()
    grid = np.geomspace(fpr.min(), 1.0, max_points)
    # roc_curve returns fpr ascending, tpr ascending: the last index with fpr <= g.
    index = np.searchsorted(fpr, grid + 1e-12, side="right") - 1
    index = np.unique(index[index >= 0])
    return fpr[index].tolist(), tpr[index].tolist()


def summarize(
    member,
    nonmember,
    *,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    max_roc_points: int = 200,
) -> dict:
    """The ``mia.json`` entry of one signal.

    ``tpr_at_fpr[f]`` is ``None`` with the note "too few non-members" when there
    are fewer than ``1 / f`` non-members: the ROC cannot resolve that FPR.
    """
    member = _scores("member", member)
    nonmember = _scores("nonmember", nonmember)
    fpr, tpr = roc(member, nonmember)
    tprs: dict[str, float | None] = {}
    notes: dict[str, str | None] = {}
    for target in fprs:
        key = f"{target:g}"
        if nonmember.size < math.ceil(1.0 / target - 1e-9):
            tprs[key], notes[key] = None, TOO_FEW_NONMEMBERS
        else:
            tprs[key], notes[key] = tpr_at_fpr(fpr, tpr, target=target), None
    lo, hi = auc_confidence_interval(
        member, nonmember, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
    )
    roc_fpr, roc_tpr = log_roc_points(fpr, tpr, max_points=max_roc_points)
    return {
        "auc": auc(member, nonmember),
        "auc_ci": [lo, hi],
        "tpr_at_fpr": tprs,
        "tpr_note": notes,
        "advantage": advantage(fpr, tpr),
        "roc": {"fpr": roc_fpr, "tpr": roc_tpr},
        "n_members": int(member.size),
        "n_nonmembers": int(nonmember.size),
    }
