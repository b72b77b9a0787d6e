"""Singling out from a released synthetic table (Giomi et al. 2023, the Anonymeter paper).

Singling out is the first of the three anonymisation risks of the Article 29
Working Party (Opinion 05/2014 on Anonymisation Techniques): isolating one
person's record. The attacker holds only the synthetic rows. He writes
predicates that hold for exactly one synthetic row, hoping each also holds for
exactly one real person:

- a multivariate predicate (Giomi et al. 2023, Section 4.1) takes a random
  synthetic row and ``n_cols`` random columns; a numeric (or datetime) column
  gives ``column >= value`` when the value lies above the synthetic median and
  ``column <= value`` otherwise (extreme values isolate best), any other column
  ``column == value``; a missing value gives ``column is missing``;
- only predicates that single out exactly one synthetic row are kept, without
  duplicates.

The attack succeeds on a table when a predicate matches exactly one of its rows.
Run on the training records and on control records of the same size, the
difference is what the synthetic data reveal about its training records beyond
what it reveals about anyone (see :mod:`attacks.anonymity`).

Frames here are canonical (:meth:`attacks.encoding.MixedEncoder.canonical`):
numbers and datetimes as floats (NaN when missing), everything else as strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: A predicate: conditions ``(column, op, value)`` joined by AND; op in ``OPS``.
Predicate = tuple[tuple[str, str, object], ...]
OPS = ("==", "<=", ">=", "missing")


def _condition_mask(values: np.ndarray, op: str, value: object) -> np.ndarray:
    if op == "missing":
        return pd.isna(values)
    if op == "==":
        return values == value
    with np.errstate(invalid="ignore"):
        return values <= value if op == "<=" else values >= value


def column_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns of a canonical frame as numpy arrays (float or object), read once."""
    return {c: frame[c].to_numpy(dtype=np.float64 if pd.api.types.is_float_dtype(frame[c]) else object)
            for c in frame.columns}


def predicate_mask(table: pd.DataFrame | Mapping[str, np.ndarray], predicate: Predicate) -> np.ndarray:
    """Rows of ``table`` that satisfy every condition of ``predicate`` (NaN never compares true)."""
    mask = None
    for column, op, value in predicate:
        if op not in OPS:
            raise ValueError(f"singling out: unknown operator {op!r} (expected one of {OPS})")
        condition = _condition_mask(np.asarray(table[column]), op, value)
        mask = condition if mask is None else mask & condition
    return mask


def predicate_from_row(row: Mapping[str, object], columns: Sequence[str], *, numeric: set[str],
                       medians: Mapping[str, float]) -> Predicate:
    """The multivariate predicate of one synthetic row on ``columns`` (sorted, see the module docstring)."""
    conditions = []
    for column in sorted(columns):
        value = row[column]
        if pd.isna(value):
            conditions.append((column, "missing", None))
        elif column in numeric:
            conditions.append((column, ">=" if value > medians[column] else "<=", float(value)))
        else:
            conditions.append((column, "==", value))
    return tuple(conditions)


def multivariate_predicates(synthetic: pd.DataFrame, *, numeric: set[str], n_predicates: int, n_cols: int,
                            rng: np.random.Generator, max_attempts: int | None = None) -> list[Predicate]:
    """Up to ``n_predicates`` distinct predicates that each single out one synthetic row.

    Args:
        synthetic: canonical synthetic rows.
        numeric: the numeric and datetime columns (ordered comparisons).
        n_predicates: how many to find.
        n_cols: columns per predicate (at most the number of columns).
        rng: the attacker's random draws (rows, columns).
        max_attempts: rows tried before giving up (default ``20 * n_predicates``).
    """
    if n_predicates < 1 or n_cols < 1:
        raise ValueError(f"singling out: n_predicates and n_cols must be >= 1, got {n_predicates}, {n_cols}")
    columns = list(synthetic.columns)
    n_cols = min(n_cols, len(columns))
    table = column_arrays(synthetic)
    medians = {c: float(np.nanmedian(table[c].astype(np.float64))) for c in numeric
               if np.isfinite(table[c].astype(np.float64)).any()}
    ordered = {c for c in numeric if c in medians}
    found: dict[Predicate, None] = {}
    for _ in range(max_attempts or 20 * n_predicates):
        if len(found) >= n_predicates:
            break
        i = int(rng.integers(len(synthetic)))
        chosen = [columns[j] for j in rng.choice(len(columns), size=n_cols, replace=False)]
        row = {c: table[c][i] for c in chosen}
        predicate = predicate_from_row(row, chosen, numeric=ordered, medians=medians)
        if predicate not in found and predicate_mask(table, predicate).sum() == 1:
            found[predicate] = None
    return list(found)


def singled_out(frame: pd.DataFrame, predicates: Sequence[Predicate]) -> int:
    """How many ``predicates`` match exactly one row of ``frame``: the attack's successes."""
    table = column_arrays(frame)
    return sum(int(predicate_mask(table, p).sum() == 1) for p in predicates)
