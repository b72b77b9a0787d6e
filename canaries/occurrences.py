"""Occurrences of canary secrets in generated rows, and scrubbing them before release.

Matching is on a normalized form: lower-case letters and digits only, so
``123-45-6789``, ``123 45 6789`` and ``123456789`` all match the same secret.
Each cell of a row is normalized on its own and the cells are joined with
``|`` (never produced by normalization), so no match spans two columns.

A secret planted in a designated column of tabular data is looked for in that
column only (``fields``): a 4-digit PIN would otherwise "occur" by chance in
every card number.

- *full*: the normalized secret is a substring of the normalized row (or cell);
- *partial*: not full, but some contiguous run of at least
  ``ceil(partial_fraction * len(secret))`` of the secret's normalized
  characters (in order) is.

A record-span secret (the JSON list of the values of several columns,
``canaries.spans``) is matched cell by cell: *full* when every cell of the span
equals its value (normalized), *partial* when at least
``ceil(partial_fraction * k)`` of its ``k`` cells do (k >= 2), or, for a span of
one column, when its cell holds a partial run as above.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from canaries.formats import record_values

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize(text: Any) -> str:
    """Lower-case letters and digits of ``text``; everything else removed."""
    return _NON_ALNUM.sub("", str(text).lower())


def row_text(row: Mapping[str, Any] | str) -> str:
    """The normalized cells of a row (a mapping or a text record) joined with ``|``."""
    if isinstance(row, str):
        return normalize(row)
    return "|".join(normalize(v) for v in row.values() if v is not None)


def partial_runs(secret: str, *, partial_fraction: float) -> list[str]:
    """The contiguous runs of the normalized secret that count as a partial occurrence.

    Runs have length ``k = ceil(partial_fraction * n)`` (``n`` = normalized length);
    any longer run contains one of them.
    """
    if not 0.0 < partial_fraction <= 1.0:
        raise ValueError(f"partial_fraction must be in (0, 1], got {partial_fraction}")
    s = normalize(secret)
    if not s:
        raise ValueError("a secret must contain at least one letter or digit")
    k = max(1, math.ceil(partial_fraction * len(s)))
    return sorted({s[i:i + k] for i in range(len(s) - k + 1)})


@dataclass
class Occurrences:
    """Rows of generated data that contain a secret fully / only partially."""

    full: int = 0
    partial: int = 0


class SpanMatcher:
    """Finds full and partial occurrences of a record-span secret in its columns' cells."""

    def __init__(self, secret: str, columns: Sequence[str], *, partial_fraction: float = 2 / 3):
        self.columns = list(columns)
        self.values = [normalize(v) for v in record_values(secret, len(self.columns))]
        self.needed = max(1, math.ceil(partial_fraction * len(self.columns)))
        self._single = (SecretMatcher(record_values(secret, 1)[0], partial_fraction=partial_fraction)
                        if len(self.columns) == 1 else None)

    def match_row(self, row: Mapping[str, Any]) -> str | None:
        """``"full"``, ``"partial"`` or None for one row (a mapping)."""
        cells = [normalize(row.get(c, "")) for c in self.columns]
        equal = sum(c == v for c, v in zip(cells, self.values))
        if equal == len(self.columns):
            return "full"
        if self._single is not None:
            return "partial" if self._single.match(cells[0]) else None
        return "partial" if equal >= self.needed else None


class SecretMatcher:
    """Finds full and partial occurrences of one secret in normalized rows."""

    def __init__(self, secret: str, *, partial_fraction: float = 2 / 3):
        self.full = normalize(secret)
        runs = partial_runs(secret, partial_fraction=partial_fraction)
        self._partial = re.compile("|".join(re.escape(r) for r in runs))

    def match(self, text: str) -> str | None:
        """``"full"``, ``"partial"`` or None for one normalized row text."""
        if self.full in text:
            return "full"
        if self._partial.search(text):
            return "partial"
        return None


def count_occurrences(
    secrets: Mapping[str, str], rows: Sequence[Mapping[str, Any] | str], *, partial_fraction: float = 2 / 3,
    fields: Mapping[str, str | None] | None = None,
) -> dict[str, Occurrences]:
    """Per secret id, the number of rows holding the secret fully and partially."""
    return scrub(rows, secrets, drop_ids=(), partial_fraction=partial_fraction, fields=fields).occurrences


@dataclass
class ScrubResult:
    """Outcome of scrubbing generated rows; ``to_dict`` holds ids and counts only."""

    kept: list = field(repr=False)
    scrubbed_rows: int
    occurrences: dict[str, Occurrences]

    def to_dict(self) -> dict:
        return {"scrubbed_rows": self.scrubbed_rows,
                "occurrences": {cid: {"full": o.full, "partial": o.partial} for cid, o in self.occurrences.items()}}

    @staticmethod
    def counts_from_dict(data: Mapping[str, Any]) -> tuple[int, dict[str, Occurrences]]:
        """``(scrubbed_rows, occurrences)`` back from ``to_dict`` output."""
        occ = {cid: Occurrences(full=int(o["full"]), partial=int(o["partial"]))
               for cid, o in data["occurrences"].items()}
        return int(data["scrubbed_rows"]), occ


def scrub(
    rows: Sequence[Mapping[str, Any] | str], secrets: Mapping[str, str], *,
    drop_ids: Iterable[str] | None = None, partial_fraction: float = 2 / 3,
    fields: Mapping[str, str | None] | None = None,
) -> ScrubResult:
    """Drop the rows that fully contain a secret; count occurrences before dropping.

    Args:
        rows: generated rows (mappings) or text records.
        secrets: canary id -> secret, for every canary whose occurrences are counted.
        drop_ids: the ids whose full occurrences drop a row (default: all of ``secrets``).
            Held-out twins are counted, as a chance baseline, but need not be dropped.
        partial_fraction: see the module docstring.
        fields: canary id -> the column its secret was planted in; that secret is
            matched in that cell only (None or absent: the whole row). A list of
            columns: a record-span secret, matched cell by cell (module docstring).
    """
    drop = set(secrets if drop_ids is None else drop_ids)
    unknown = drop - set(secrets)
    if unknown:
        raise ValueError(f"drop_ids not among the secrets: {sorted(unknown)}")
    fields = fields or {}
    matchers = {cid: SpanMatcher(s, fields[cid], partial_fraction=partial_fraction)
                if isinstance(fields.get(cid), (list, tuple)) else SecretMatcher(s, partial_fraction=partial_fraction)
                for cid, s in secrets.items()}
    counts = {cid: Occurrences() for cid in secrets}
    kept = []
    for row in rows:
        text = row_text(row)
        dropped = False
        for cid, m in matchers.items():
            col = fields.get(cid)
            if isinstance(m, SpanMatcher):
                kind = None if isinstance(row, str) else m.match_row(row)
            else:
                kind = m.match(text if col is None or isinstance(row, str) else normalize(row.get(col, "")))
            if kind == "full":
                counts[cid].full += 1
                dropped = dropped or cid in drop
            elif kind == "partial":
                counts[cid].partial += 1
        if not dropped:
            kept.append(row)
    return ScrubResult(kept=kept, scrubbed_rows=len(rows) - len(kept), occurrences=counts)
