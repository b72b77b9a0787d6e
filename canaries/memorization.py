"""Memorization test: are inserted canaries more exposed than held-out twins?

Twins are drawn from the same format and built the same way, but never
inserted, so under the null hypothesis "the model did not memorize canaries
inserted r times" the exposures of the r-times canaries and of the twins are
exchangeable. A one-sided Mann-Whitney U test (Mann & Whitney 1947) of
"inserted exposures are stochastically greater than twin exposures" gives a
p-value per repetition count; twins are pooled across repetition counts
because none of them was inserted.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy import stats


def rank_test_p_value(inserted: Sequence[float], held_out: Sequence[float]) -> float:
    """One-sided Mann-Whitney U p-value of ``inserted > held_out``.

    ``U = #{(i, h): x_i > y_h} + 1/2 #{(i, h): x_i = y_h}``; the p-value is
    ``P(U' >= U)`` under exchangeability, exact for small samples without ties
    and by the tie-corrected normal approximation otherwise (scipy's choice).
    """
    x = np.asarray(inserted, dtype=float)
    y = np.asarray(held_out, dtype=float)
    if x.size == 0 or y.size == 0:
        raise ValueError(f"rank test needs both groups non-empty (inserted: {x.size}, held_out: {y.size})")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("rank test scores must be finite")
    return float(stats.mannwhitneyu(x, y, alternative="greater").pvalue)


def memorization_test(
    inserted: Mapping[int, Sequence[float]], held_out: Sequence[float], *, alpha: float = 0.05
) -> dict:
    """Per repetition count, the rank-test p-value of inserted vs held-out exposures.

    Args:
        inserted: repetition count -> exposures of the canaries inserted that often.
        held_out: exposures of the twins (never inserted).
        alpha: significance level; memorization is *detected* at r when p < alpha.

    Returns:
        ``{"by_repetition": [{"repetitions", "p_value", "n_inserted", "n_held_out",
        "detected"}], "min_detected_repetitions": int | None, "alpha": alpha}``,
        ordered by repetition count. No correction for testing several counts.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rows = []
    for reps in sorted(inserted):
        p = rank_test_p_value(inserted[reps], held_out)
        rows.append({"repetitions": int(reps), "p_value": p, "n_inserted": len(inserted[reps]),
                     "n_held_out": len(held_out), "detected": p < alpha})
    detected = [r["repetitions"] for r in rows if r["detected"]]
    return {"by_repetition": rows, "min_detected_repetitions": min(detected) if detected else None,
            "alpha": alpha}
