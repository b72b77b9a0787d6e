"""Record canaries for tables without a text or pattern column.

A purely numeric and categorical table has no free-text field to hide a
``digits:6`` secret in. Its canaries are *record spans*: the secret is the
values of a run of consecutive learned columns (``canaries.formats.RecordFormat``):

- a categorical column contributes one value of its public domain (declared or
  DP-selected; never ``<other>``), ``|part| = |domain|``;
- a numeric column contributes its ``sig_digits`` significant digits under one
  fixed, public magnitude (sign and decimal exponent) that the column admits,
  ``|part| = 9 * 10**(sig_digits - 1)``; the whole magnitude must lie inside the
  column's public bounds (no value is clamped) and, for a whole-number column, be
  a whole number (exponent >= sig_digits - 1).

The span must be consecutive in the sequence order, so that the canary record
encodes as prefix (the fields before it) + secret and its log-probability is a
continuation of the prefix, scored like any other secret. Which span: the one
with the smallest ``|R|`` of at least ``target_space(count)`` (earliest first on
ties); when no span reaches it, the largest. Rare combinations of many columns
and a number's digits are both spans; a span over every column is a whole
synthetic record.

Every fact read here is public (declared, or selected with DP and accounted),
so the choice of span and magnitude is post-processing.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from canaries.formats import CategoryPart, NumberPart, RecordFormat, RecordPart

EXP_MIN, EXP_MAX = -8, 15  # the decimal exponents the codec has leading tokens for
MIN_RECORD_SPACE = 100_000
"""A record span aims at ``|R| >= max(MIN_RECORD_SPACE, 100 * canaries)``: large enough that the
inserted canaries are a small share of R (below 1%) and exposure can reach ~17 bits, small
enough to enumerate exactly on a CPU when the canaries share their prefix."""
RECORD_KINDS = ("numeric", "categorical")


def target_space(count: int) -> int:
    """The ``|R|`` a record span aims at for ``count`` canaries (see ``MIN_RECORD_SPACE``)."""
    return max(MIN_RECORD_SPACE, 100 * count)


def _magnitude_key(sign: int, exponent: int) -> str:
    return f"{'-' if sign < 0 else ''}1e{exponent:+d}"


def _fits(column: Any, sign: int, exponent: int) -> bool:
    """Whether every value of the magnitude is encoded as itself (whole, inside the bounds)."""
    s = column.sig_digits
    if column.integer and exponent < s - 1:
        return False
    lo, hi = 10.0 ** exponent, (10 ** s - 1) * 10.0 ** (exponent - s + 1)
    if sign < 0:
        lo, hi = -hi, -lo
    return ((column.minimum is None or column.minimum <= lo) and (column.maximum is None or hi <= column.maximum))


def number_part(column: Any) -> NumberPart | None:
    """The digits of ``column`` under the admitted magnitude nearest ``10**(sig_digits - 1)``
    (positive first), or None when no admitted magnitude fits (see the module docstring)."""
    if column.magnitudes is not None:
        admitted = []
        for key in column.magnitudes:
            if str(key) == "0":
                continue
            sign = -1 if str(key).startswith("-") else 1
            admitted.append((sign, int(str(key).split("e")[1])))
    else:
        admitted = [(sign, e) for sign in (1, -1) for e in range(EXP_MIN, EXP_MAX + 1)]
    s = column.sig_digits
    fitting = sorted((m for m in admitted if _fits(column, *m)), key=lambda m: (m[0] < 0, abs(m[1] - (s - 1)), m[1]))
    if not fitting:
        return None
    return NumberPart(column.name, s, _magnitude_key(*fitting[0]))


def record_part(column: Any) -> RecordPart | None:
    """The part ``column`` contributes to a record span, or None when it cannot hold one."""
    if getattr(column, "fake", None):
        return None
    if column.kind == "categorical":
        if column.categories == []:  # a DP selection that kept no value: only <other> is left
            return None
        if column.categories is None:
            raise ValueError(f"column {column.name!r}: its categorical domain is not known yet; declare it or "
                             "select it with DP before planting canaries")
        return CategoryPart(column.name, column.categories)
    if column.kind == "numeric":
        return number_part(column)
    return None


def record_format(learned: Sequence[Any], *, count: int) -> RecordFormat:
    """The record span of the learned columns (sequence order) for ``count`` canaries.

    Raises:
        ValueError: no learned numeric or categorical column can hold a part.
    """
    parts = [record_part(c) for c in learned]
    runs: list[list[RecordPart]] = [[]]
    for part in parts:
        if part is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(part)
    spans = [run[i:j] for run in runs for i in range(len(run)) for j in range(i + 1, len(run) + 1)]
    if not spans:
        raise ValueError("no column can hold a canary (no text or pattern column, and no numeric or categorical "
                         "column with a domain or a magnitude that fits its bounds); set canaries.column or "
                         "disable canaries")
    sizes = [math.prod(p.size for p in span) for span in spans]
    target = target_space(count)
    large = [k for k, n in enumerate(sizes) if n >= target]
    best = min(large, key=lambda k: sizes[k]) if large else max(range(len(spans)), key=lambda k: sizes[k])
    return RecordFormat(spans[best])
