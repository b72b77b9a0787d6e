"""The sweep's pure functions: Pareto frontier and best-point selection, against hand-computed values."""

import math
import random

import pytest

from auditor.sweep.frontier import best_point, dominates, pareto_front


def test_dominates_needs_one_strict_improvement():
    assert dominates((1.0, 0.8), (2.0, 0.8))  # cheaper, as useful
    assert dominates((2.0, 0.9), (2.0, 0.8))  # as cheap, more useful
    assert not dominates((2.0, 0.8), (2.0, 0.8))  # equal points
    assert not dominates((1.0, 0.5), (2.0, 0.8))  # a trade-off, not domination


def test_frontier_by_hand():
    #          0     1     2     3     4     5     6
    costs = [1.0, 2.0, 4.0, 8.0, 3.0, None, 2.0]
    utils = [0.5, 0.7, 0.6, 0.9, 0.7, 0.99, 0.7]
    # 0: the cheapest. 1 and 6: equal pairs, both kept. 4 (3, .7): beaten by 1 (2, .7).
    # 2 (4, .6): beaten by 1. 3 (8, .9): the most useful. 5: no cost, takes no part.
    assert pareto_front(costs, utils) == [0, 1, 6, 3]


def test_frontier_equal_cost_keeps_only_the_best_utility():
    assert pareto_front([1.0, 1.0, 1.0], [0.2, 0.4, 0.3]) == [1]


def test_frontier_skips_missing_and_nonfinite_values():
    assert pareto_front([None, math.nan, 2.0], [0.9, 0.9, None]) == []
    assert pareto_front([], []) == []
    with pytest.raises(ValueError):
        pareto_front([1.0], [])


def test_frontier_matches_the_definition_on_random_points():
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 9)
        costs = [rng.choice([None, *range(4)]) for _ in range(n)]
        utils = [rng.choice([None, 0.1, 0.2, 0.3]) for _ in range(n)]
        valid = [i for i in range(n) if costs[i] is not None and utils[i] is not None]
        expected = {i for i in valid
                    if not any(dominates((costs[j], utils[j]), (costs[i], utils[i])) for j in valid)}
        assert set(pareto_front(costs, utils)) == expected


def test_best_point_by_hand():
    utils = [0.8, 0.9, 0.9, None, 0.95]
    costs = [1.0, 4.0, 2.0, 1.0, None]
    eligible = [True, True, True, True, False]
    # 4 is the most useful but not eligible; 3 has no utility; 1 and 2 tie at 0.9, 2 is cheaper.
    assert best_point(utils, costs, eligible) == 2
    assert best_point(utils, costs, [False] * 5) is None


def test_best_point_ties_prefer_a_guarantee_then_the_first():
    assert best_point([0.9, 0.9], [None, 3.0], [True, True]) == 1  # no ε counts as the largest cost
    assert best_point([0.9, 0.9], [3.0, 3.0], [True, True]) == 0
    with pytest.raises(ValueError):
        best_point([0.9], [1.0, 2.0], [True])
