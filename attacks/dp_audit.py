"""The ``dp_audit`` audit: empirical epsilon lower bounds next to the claimed epsilon.

Three sources of evidence, each turned into a bound by :mod:`attacks.bounds`:

- **MIA scores** (members vs non-members, per signal): the scores are split at
  random in halves; the signal and threshold ("member when score >= t") that
  give the largest bound on the *selection* half are applied once to the
  *evaluation* half, and the Clopper–Pearson bound is computed there. This bound
  is **heuristic**: Clopper–Pearson assumes independent trials, which many
  training runs give (Jagielski et al. 2020; Nasr et al. 2021) but one model's
  scores on a fixed-size member/non-member split do not. It is reported, never
  counted for ``violation``.
- **Outcomes**: confusion counts of an attack whose rule was fixed without the
  data they count, each bounded as is.
- **Coin-flip canaries** (one-run audit, Steinke, Nasr & Jagielski 2023): each
  canary was inserted with probability 1/2, its inclusion bit recorded. Guess
  "in" for the top-k scores and abstain elsewhere, for every k of a small grid;
  each k is tested at ``significance / len(grid)`` (Bonferroni), so the maximum
  over the grid is a valid bound. A canary inserted as ``k`` copies is a group
  of ``k`` records: an (eps, delta)-DP run is (k eps, k e^((k-1) eps) delta)-DP
  for it (group privacy), so the audit bounds the group's epsilon with that
  delta and reports ``group bound / k`` as the per-record bound.

Only the valid bounds (outcomes, one-run) feed ``violation``, and they are
corrected for multiple testing: with F valid bounds each is computed at
``significance / F`` (Bonferroni; the one-run grid then splits its share again),
so "the largest bound is below the true epsilon" holds with probability at least
``1 - significance`` for the maximum, as the message states.

Every bound states its power, ``max_attainable``: the largest value it could have
reported at its sizes with a perfect attacker (:func:`attacks.bounds.max_attainable_epsilon`,
:func:`attacks.bounds.one_run_max_attainable`). When the largest attainable valid
bound is below the claimed epsilon, the audit cannot detect a violation of the
claim at all, and ``power_note`` says so in words.

A lower bound above the claimed epsilon means the DP implementation is broken
(DESIGN.md, privacy rule 5): the result says ``violation: true``, the message
says so loudly, and the error is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from attacks.bounds import epsilon_lower_bound, max_attainable_epsilon, one_run_epsilon, one_run_max_attainable
from attacks.duplicates import group_privacy
from reports.summary import fmt_epsilon

__all__ = ["DpAuditConfig", "epsilon_lower_bound", "one_run_epsilon", "run"]

logger = logging.getLogger(__name__)


@dataclass
class DpAuditConfig:
    """Settings of the ``dp_audit`` audit.

    Attributes:
        significance: probability that the largest valid bound is wrong (the
            family; each of F valid bounds is computed at ``significance / F``).
            The heuristic MIA bound is computed at this level on its own.
        two_sided: Clopper–Pearson bounds also test the reverse direction.
        max_thresholds: candidate thresholds tried on the selection half
            (quantiles of its pooled scores when there are more distinct scores).
        guess_fractions: the grid of k for the one-run audit, as fractions of the
            number of canaries (k = max(1, round(f * m)), duplicates dropped).
        seed: seed of the selection/evaluation split and of tie-breaking.
    """

    significance: float = 0.05
    two_sided: bool = False
    max_thresholds: int = 256
    guess_fractions: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.significance < 1:
            raise ValueError(f"DpAuditConfig.significance must lie in (0, 1), got {self.significance!r}")
        if self.max_thresholds < 1:
            raise ValueError(f"DpAuditConfig.max_thresholds must be >= 1, got {self.max_thresholds!r}")
        if not self.guess_fractions or not all(0 < f <= 1 for f in self.guess_fractions):
            raise ValueError(f"DpAuditConfig.guess_fractions must lie in (0, 1], got {self.guess_fractions!r}")


def _finite(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size < 2:
        raise ValueError(f"dp_audit: {name} needs at least 2 scores, got {array.size}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"dp_audit: {name} must be finite (found NaN or inf)")
    return array


def _confusion(member: np.ndarray, nonmember: np.ndarray, threshold: float) -> dict[str, int]:
    tp = int(np.count_nonzero(member >= threshold))
    fp = int(np.count_nonzero(nonmember >= threshold))
    return {"tp": tp, "fn": int(member.size - tp), "fp": fp, "tn": int(nonmember.size - fp)}


def _thresholds(scores: np.ndarray, limit: int) -> np.ndarray:
    distinct = np.unique(scores)
    if distinct.size <= limit:
        return distinct
    return np.unique(np.quantile(scores, np.linspace(0.0, 1.0, limit)))


def _split(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random selection and evaluation indices, halves of ``range(size)``."""
    order = rng.permutation(size)
    return order[: size // 2], order[size // 2 :]


def mia_bound(
    member_scores: Mapping[str, np.ndarray],
    nonmember_scores: Mapping[str, np.ndarray],
    *,
    delta: float,
    config: DpAuditConfig,
) -> dict:
    """Clopper–Pearson bound of the best MIA rule chosen on one half, measured on the other.

    Every signal scores the same records in the same order, so one split of the
    records serves all signals: the evaluation half is never seen by the choice
    of signal or threshold.
    """
    if set(member_scores) != set(nonmember_scores) or not member_scores:
        raise ValueError("dp_audit: member_scores and nonmember_scores must name the same signals")
    names = sorted(member_scores)
    members = {n: _finite(f"member_scores[{n!r}]", member_scores[n]) for n in names}
    nonmembers = {n: _finite(f"nonmember_scores[{n!r}]", nonmember_scores[n]) for n in names}
    for scores, side in ((members, "member_scores"), (nonmembers, "nonmember_scores")):
        if len({v.size for v in scores.values()}) != 1:
            raise ValueError(f"dp_audit: every signal of {side} must score the same records (sizes differ)")
    rng = np.random.default_rng(config.seed)
    select_mi, eval_mi = _split(members[names[0]].size, rng)
    select_ni, eval_ni = _split(nonmembers[names[0]].size, rng)
    best = None
    for name in names:
        select_m, eval_m = members[name][select_mi], members[name][eval_mi]
        select_n, eval_n = nonmembers[name][select_ni], nonmembers[name][eval_ni]
        for threshold in _thresholds(np.concatenate([select_m, select_n]), config.max_thresholds):
            counts = _confusion(select_m, select_n, threshold)
            eps = epsilon_lower_bound(
                **counts, delta=delta, significance=config.significance, two_sided=config.two_sided
            )
            gap = counts["tp"] / select_m.size - counts["fp"] / select_n.size
            if best is None or (eps, gap) > best[0]:
                best = ((eps, gap), name, float(threshold), counts, eval_m, eval_n)
    (selection_eps, _), name, threshold, selection_counts, eval_m, eval_n = best
    counts = _confusion(eval_m, eval_n, threshold)
    bound = epsilon_lower_bound(
        **counts, delta=delta, significance=config.significance, two_sided=config.two_sided
    )
    return {
        "name": f"mia:{name}",
        "method": "clopper-pearson",
        "epsilon_lower_bound": bound,
        "heuristic": True,
        "significance": config.significance,
        "max_attainable": max_attainable_epsilon(
            n_members=eval_m.size, n_nonmembers=eval_n.size, delta=delta,
            significance=config.significance, two_sided=config.two_sided,
        ),
        "note": ("heuristic: Clopper-Pearson assumes independent trials; here all scores come "
                 "from one model, so this bound is not counted for a violation"),
        "details": {
            "signal": name,
            "threshold": threshold,
            "counts": counts,
            "selection_counts": selection_counts,
            "selection_epsilon": selection_eps,
            "two_sided": config.two_sided,
        },
    }


def outcome_bound(name: str, counts: Mapping[str, int], *, delta: float, config: DpAuditConfig) -> dict:
    """Clopper–Pearson bound of confusion counts ``{tp, fn, fp, tn}`` measured on held-out data."""
    missing = {"tp", "fn", "fp", "tn"} - set(counts)
    if missing:
        raise ValueError(f"dp_audit: outcome {name!r} lacks {sorted(missing)}")
    counts = {key: counts[key] for key in ("tp", "fn", "fp", "tn")}
    bound = epsilon_lower_bound(
        **counts, delta=delta, significance=config.significance, two_sided=config.two_sided
    )
    return {
        "name": f"outcome:{name}",
        "method": "clopper-pearson",
        "epsilon_lower_bound": bound,
        "heuristic": False,
        "significance": config.significance,
        "max_attainable": max_attainable_epsilon(
            n_members=counts["tp"] + counts["fn"], n_nonmembers=counts["fp"] + counts["tn"], delta=delta,
            significance=config.significance, two_sided=config.two_sided,
        ),
        "details": {"counts": dict(counts), "two_sided": config.two_sided},
    }


def guess_counts(*, num_canaries: int, fractions) -> list[int]:
    """The one-run grid of guess counts: ``max(1, round(f * m))``, unique, ascending."""
    return sorted({max(1, min(num_canaries, round(f * num_canaries))) for f in fractions})


def group_delta(*, delta: float, copies: int, epsilon: float | None) -> float:
    """Delta of a group of ``copies`` records under (epsilon, delta)-DP: ``k e^((k-1) eps) delta``.

    See :func:`attacks.duplicates.group_privacy`. Without a claimed epsilon (a
    non-DP run) the given delta is used as is.
    """
    if epsilon is None:
        return delta
    return group_privacy(epsilon=epsilon, delta=delta, copies=copies)[1]


def one_run_bound(
    scores, inclusion, *, delta: float, copies: int = 1, claimed_epsilon: float | None = None,
    config: DpAuditConfig,
) -> dict:
    """One-run bound: top-k guesses over the grid, Bonferroni-corrected, the best k kept.

    With ``copies > 1`` the bound is on the group of copies (at :func:`group_delta`)
    and the reported ``epsilon_lower_bound`` is that divided by ``copies``.
    """
    scores = _finite("canary_scores", scores)
    inclusion = np.asarray(inclusion)
    if inclusion.shape != scores.shape:
        raise ValueError(
            f"dp_audit: canary_inclusion has {inclusion.size} bits for {scores.size} canary scores"
        )
    if not np.isin(inclusion, (0, 1)).all():
        raise ValueError("dp_audit: canary_inclusion must hold booleans (0/1)")
    inclusion = inclusion.astype(bool)
    m = scores.size
    # Random tie-breaking: ordering ties by position could leak the inclusion bits
    # if the caller listed the inserted canaries first.
    shuffle = np.random.default_rng(config.seed).permutation(m)
    order = shuffle[np.argsort(-scores[shuffle], kind="stable")]
    grid = guess_counts(num_canaries=m, fractions=config.guess_fractions)
    per_test = config.significance / len(grid)
    delta_k = group_delta(delta=delta, copies=copies, epsilon=claimed_epsilon)
    included = int(inclusion.sum())
    tried = []
    for k in grid:
        correct = int(inclusion[order[:k]].sum())
        eps = attainable = 0.0
        if delta_k < 1:
            eps = one_run_epsilon(
                num_canaries=m, num_guesses=k, num_correct=correct, delta=delta_k, significance=per_test
            )
            attainable = one_run_max_attainable(
                num_canaries=m, num_guesses=k, num_included=included, delta=delta_k, significance=per_test
            )
        tried.append({"num_guesses": k, "num_correct": correct, "group_epsilon_lower_bound": eps,
                      "group_max_attainable": attainable})
    chosen = max(tried, key=lambda t: t["group_epsilon_lower_bound"])
    return {
        "name": "one-run:canaries",
        "method": "one-run",
        "epsilon_lower_bound": chosen["group_epsilon_lower_bound"] / copies,
        "heuristic": False,
        "significance": config.significance,
        "max_attainable": max(t["group_max_attainable"] for t in tried) / copies,
        "details": {
            "copies": copies,
            "group_delta": delta_k,
            "group_epsilon_lower_bound": chosen["group_epsilon_lower_bound"],
            "num_canaries": m,
            "num_included": included,
            "num_guesses": chosen["num_guesses"],
            "num_correct": chosen["num_correct"],
            "per_test_significance": per_test,
            "grid": tried,
        },
    }


def perfect_one_run_epsilon(*, num_canaries: int, delta: float, config: DpAuditConfig) -> float:
    """Largest one-run bound with ``num_canaries`` canaries, half of them included, perfect guesses.

    The grid and Bonferroni split of :func:`one_run_bound` (at ``config.significance``),
    so this is what the audit can reach at that size, before seeing any data.
    """
    grid = guess_counts(num_canaries=num_canaries, fractions=config.guess_fractions)
    return max(one_run_max_attainable(num_canaries=num_canaries, num_guesses=k, num_included=num_canaries // 2,
                                      delta=delta, significance=config.significance / len(grid)) for k in grid)


def canaries_needed(*, target_epsilon: float, delta: float, config: DpAuditConfig,
                    start: int = 100, max_canaries: int = 64_000) -> int | None:
    """Fewest audit canaries (``start`` doubled) whose perfect one-run bound exceeds ``target_epsilon``.

    None when even ``max_canaries`` cannot: with ``delta > 0`` the ``2 m delta`` term
    of the p-value grows with m, so the one-run audit saturates (about 5.7 at
    ``delta = 1e-5``) and larger claims cannot be tested by it at all.
    """
    m, previous = start, -1.0
    while m <= max_canaries:
        reached = perfect_one_run_epsilon(num_canaries=m, delta=delta, config=config)
        if reached > target_epsilon:
            return m
        if reached <= previous:  # past the saturation point: more canaries only lower the bound
            return None
        m, previous = m * 2, reached
    return None


def _verdict(claimed: float | None, best: dict | None, significance: float) -> tuple[bool, str]:
    if best is None:
        return False, "no valid bound computed (no audit canaries or outcomes): no test of the claim"
    value, name = best["epsilon_lower_bound"], best["name"]
    if claimed is None:
        return False, (
            f"no DP claim for this run; the largest empirical lower bound is "
            f"epsilon >= {fmt_epsilon(value)} ({name})"
        )
    if value > claimed:
        return True, (
            f"DP IMPLEMENTATION FAILURE: the empirical lower bound epsilon >= {fmt_epsilon(value)} "
            f"({name}, holds with probability {1 - significance:g}) exceeds the claimed "
            f"epsilon = {fmt_epsilon(claimed)}. The training does not give the privacy it reports."
        )
    return False, f"consistent: the largest lower bound {fmt_epsilon(value)} ({name}) <= claimed epsilon {fmt_epsilon(claimed)}"


def power_note(claimed: float | None, max_attainable: float | None, *, needed: int | None = None,
               searched: bool = False, delta: float = 0.0) -> str | None:
    """In words, when the audit is too weak to test the claim: ``max_attainable < claimed``.

    With ``searched`` (the one-run audit's size was checked by :func:`canaries_needed`)
    the note also says how many audit canaries would reach the claim, or that none would.
    """
    if claimed is None or max_attainable is None or max_attainable >= claimed:
        return None
    note = (
        f"this audit cannot detect a violation above {fmt_epsilon(max_attainable)}: even a perfect attacker "
        f"could not make it report more at its sizes, so it cannot test the claimed epsilon = {fmt_epsilon(claimed)}"
    )
    if searched and needed is not None:
        note += f" (about {needed} audit canaries would)"
    elif searched:
        note += f" (no number of audit canaries would at delta = {delta:.3g}: the one-run audit saturates)"
    return note


def run(
    *,
    member_scores: Mapping[str, object] | None = None,
    nonmember_scores: Mapping[str, object] | None = None,
    outcomes: Mapping[str, Mapping[str, int]] | None = None,
    canary_scores=None,
    canary_inclusion=None,
    canary_copies: int = 1,
    claimed_epsilon: float | None,
    delta: float,
    config: DpAuditConfig | None = None,
) -> dict:
    """The ``dp_audit`` audit (``dp_audit.json``).

    Args:
        member_scores / nonmember_scores: MIA scores by signal name (higher = member),
            e.g. ``attacks.mia.score_membership(...).members``; give both or neither.
        outcomes: confusion counts ``{tp, fn, fp, tn}`` by attack name, of rules
            fixed without the data counted.
        canary_scores / canary_inclusion: scores of the coin-flip canary set and
            their recorded inclusion bits; give both or neither.
        canary_copies: copies of each included canary (1 for the planted audit set;
            more gives a group bound, divided by the copies).
        claimed_epsilon: the epsilon the run claims; None (or inf) for a non-DP run.
        delta: the delta of the claim (0 for a non-DP run).
        config: :class:`DpAuditConfig` (defaults when None).
    """
    config = config or DpAuditConfig()
    if claimed_epsilon is not None and (math.isnan(claimed_epsilon) or claimed_epsilon < 0):
        raise ValueError(f"dp_audit: claimed_epsilon must be >= 0 or None, got {claimed_epsilon!r}")
    claimed = None if claimed_epsilon is None or math.isinf(claimed_epsilon) else float(claimed_epsilon)
    if not (math.isfinite(delta) and 0 <= delta < 1):
        raise ValueError(f"dp_audit: delta must lie in [0, 1), got {delta!r}")
    if (member_scores is None) != (nonmember_scores is None):
        raise ValueError("dp_audit: give both member_scores and nonmember_scores, or neither")
    if (canary_scores is None) != (canary_inclusion is None):
        raise ValueError("dp_audit: give both canary_scores and canary_inclusion, or neither")
    if isinstance(canary_copies, bool) or not isinstance(canary_copies, int) or canary_copies < 1:
        raise ValueError(f"dp_audit: canary_copies must be an integer >= 1, got {canary_copies!r}")

    family = len(outcomes or {}) + (canary_scores is not None)
    valid_config = replace(config, significance=config.significance / max(family, 1))
    valid = [outcome_bound(name, counts, delta=delta, config=valid_config) for name, counts in (outcomes or {}).items()]
    if canary_scores is not None:
        valid.append(
            one_run_bound(
                canary_scores, canary_inclusion, delta=delta, copies=canary_copies,
                claimed_epsilon=claimed, config=valid_config,
            )
        )
    heuristic = ([mia_bound(member_scores, nonmember_scores, delta=delta, config=config)]
                 if member_scores is not None else [])

    best = max(valid, key=lambda b: b["epsilon_lower_bound"], default=None)
    violation, message = _verdict(claimed, best, config.significance)
    if violation:
        logger.error(message)
    attainable = max((b["max_attainable"] for b in valid), default=None)
    searched = claimed is not None and canary_scores is not None and canary_copies == 1 and (
        attainable is None or attainable < claimed)
    needed = canaries_needed(target_epsilon=claimed, delta=delta, config=valid_config) if searched else None
    note = power_note(claimed, attainable, needed=needed, searched=searched, delta=delta)
    if note is not None:
        message = f"{message}; {note}"
    if heuristic:
        message += (f" (heuristic MIA bound epsilon >= {fmt_epsilon(heuristic[0]['epsilon_lower_bound'])}, "
                    f"not counted)")
    return {
        "claimed_epsilon": claimed,
        "delta": float(delta),
        "significance": config.significance,
        "correction": {"method": "bonferroni", "family_size": family,
                       "per_bound_significance": valid_config.significance},
        "bounds": heuristic + valid,
        "max_lower_bound": best["epsilon_lower_bound"] if best else 0.0,
        "max_attainable": attainable,
        "power_note": note,
        "canaries_needed": needed,
        "heuristic_max_lower_bound": heuristic[0]["epsilon_lower_bound"] if heuristic else None,
        "violation": violation,
        "message": message,
    }
