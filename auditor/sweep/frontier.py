"""Pure functions over sweep points: the privacy-utility Pareto frontier and the best passing point.

A point is a (cost, utility) pair: cost is a privacy cost (ε, or an attack's
success such as the membership-inference AUC; smaller is better), utility a
score where larger is better (TSTR ratio, fidelity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether ``a = (cost, utility)`` Pareto-dominates ``b``.

    ``a`` dominates ``b`` when ``cost_a <= cost_b`` and ``utility_a >= utility_b``
    with at least one strict inequality. Equal points do not dominate each other.
    """
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def pareto_front(costs: Sequence[float | None], utilities: Sequence[float | None]) -> list[int]:
    """Indices of the points no other point dominates, sorted by cost then index.

    Points with a missing (``None``) or non-finite cost or utility take no part:
    they are neither on the frontier nor dominate anything. Ties (equal pairs)
    are all on the frontier.

    Args:
        costs: privacy cost per point (smaller is better).
        utilities: utility per point (larger is better), same length.

    Returns:
        Indices into the inputs. O(n log n): sorted by (cost, -utility), a point
        is on the frontier iff its utility is at least the best utility of every
        point of strictly smaller cost and it is not beaten by an equal-cost point.
    """
    if len(costs) != len(utilities):
        raise ValueError(f"pareto_front: {len(costs)} costs for {len(utilities)} utilities")
    valid = [i for i in range(len(costs)) if _finite(costs[i]) and _finite(utilities[i])]
    order = sorted(valid, key=lambda i: (costs[i], -utilities[i], i))
    front: list[int] = []
    best_below = -math.inf  # best utility among points of strictly smaller cost
    k = 0
    while k < len(order):
        cost = costs[order[k]]
        group = [i for i in order[k:] if costs[i] == cost]
        top = utilities[group[0]]  # sorted by -utility within a cost
        if top > best_below:
            front += [i for i in group if utilities[i] == top]
        best_below = max(best_below, top)
        k += len(group)
    return front


def best_point(utilities: Sequence[float | None], costs: Sequence[float | None],
               eligible: Sequence[bool]) -> int | None:
    """Index of the eligible point with the highest utility; ``None`` when no eligible point has one.

    Ties on utility go to the smaller cost (a missing cost counts as +inf: no
    DP guarantee is the largest cost), then to the earlier index.
    """
    if not len(utilities) == len(costs) == len(eligible):
        raise ValueError("best_point: utilities, costs and eligible differ in length")
    candidates = [i for i in range(len(utilities)) if eligible[i] and _finite(utilities[i])]
    if not candidates:
        return None
    return min(candidates, key=lambda i: (-utilities[i], costs[i] if _finite(costs[i]) else math.inf, i))


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
