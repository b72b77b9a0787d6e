"""PII replay: which synthetic PII values are copies of a reference table's values.

The reference is the training split (is the synthesizer replaying real people?)
or, as a control, the holdout split (how often would the same values match by
chance? common first names and cities do). Values are compared in normal form
(:func:`auditor.pii.normalize.replay_key`).

Classification of a synthetic finding ``f`` in row ``s`` against an index
``key -> reference rows holding it``:

- ``novel``: ``key(f)`` is in no reference row;
- ``replayed_in_context``: some other field ``g`` of row ``s`` (another column,
  or a non-overlapping span of the same text) with a different key is also
  replayed, and ``rows(f) & rows(g)`` is not empty: two fields of one reference
  record reappear together, a re-identified person;
- ``replayed``: otherwise (the value exists in the reference, alone).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd

from auditor.pii.config import PiiConfig, normalise_column_name
from auditor.pii.normalize import date_key, digits_key, name_key, replay_key, text_key
from auditor.pii.scan import Finding, as_table, cell_text

REPLAYED = "replayed"
IN_CONTEXT = "replayed_in_context"
NOVEL = "novel"
CLASSES = (REPLAYED, IN_CONTEXT, NOVEL)

Key = tuple[str, str]

#: Quasi-identifier role -> normaliser of its values.
QI_NORMALIZERS: dict[str, Callable[[str], str]] = {"name": name_key, "birth_date": date_key, "zip": digits_key}


def finding_key(finding: Finding) -> Key:
    """The replay key of a finding."""
    return replay_key(finding.entity, finding.text)


@dataclass
class ReplayIndex:
    """Normalised PII values of a reference table and the rows holding each."""

    rows_by_key: dict[Key, frozenset[int]]

    @classmethod
    def from_findings(cls, findings: Sequence[Finding]) -> "ReplayIndex":
        rows: dict[Key, set[int]] = {}
        for f in findings:
            rows.setdefault(finding_key(f), set()).add(f.row)
        return cls({k: frozenset(v) for k, v in rows.items()})

    def rows(self, key: Key) -> frozenset[int]:
        return self.rows_by_key.get(key, frozenset())

    def __len__(self) -> int:
        return len(self.rows_by_key)


def _other_field(a: Finding, b: Finding) -> bool:
    return a.column != b.column or a.end <= b.start or b.end <= a.start


def classify(findings: Sequence[Finding], index: ReplayIndex) -> list[str]:
    """The class of each finding (module docstring), aligned with ``findings``."""
    keys = [finding_key(f) for f in findings]
    rows = [index.rows(k) for k in keys]
    by_row: dict[int, list[int]] = {}
    for i, f in enumerate(findings):
        by_row.setdefault(f.row, []).append(i)
    labels = [NOVEL] * len(findings)
    for members in by_row.values():
        for i in members:
            if not rows[i]:
                continue
            in_context = any(
                j != i and keys[j] != keys[i] and rows[i] & rows[j] and _other_field(findings[i], findings[j])
                for j in members
            )
            labels[i] = IN_CONTEXT if in_context else REPLAYED
    return labels


def replay_counts(findings: Sequence[Finding], labels: Sequence[str]) -> dict:
    """Counts of each class, rows affected, and the same per entity type."""
    counts = Counter(labels)
    by_entity: dict[str, Counter] = {}
    for f, label in zip(findings, labels):
        by_entity.setdefault(f.entity, Counter())[label] += 1
    return {
        REPLAYED: counts[REPLAYED],
        IN_CONTEXT: counts[IN_CONTEXT],
        NOVEL: counts[NOVEL],
        "rows_with_replay": len({f.row for f, lab in zip(findings, labels) if lab != NOVEL}),
        "rows_replayed_in_context": len({f.row for f, lab in zip(findings, labels) if lab == IN_CONTEXT}),
        "by_entity": {e: {c: n[c] for c in CLASSES} for e, n in sorted(by_entity.items())},
    }


def _row_tuples(table: pd.DataFrame, columns: Sequence[str], normalisers: Sequence[Callable[[str], str]]) -> list[tuple | None]:
    out: list[tuple | None] = []
    for values in table[list(columns)].itertuples(index=False, name=None):
        texts = [cell_text(v) for v in values]
        if any(t is None for t in texts):
            out.append(None)
        else:
            out.append(tuple(norm(t) for norm, t in zip(normalisers, texts)))
    return out


def exact_row_copies(synthetic, reference) -> int | None:
    """Synthetic rows equal to some reference row on all shared columns (text: whole record).

    Cells compare after :func:`auditor.pii.normalize.text_key` (case, accents,
    whitespace); rows with a missing cell never match. ``None`` when the tables
    share no column.
    """
    syn, _ = as_table(synthetic)
    ref, _ = as_table(reference)
    shared = [c for c in syn.columns if c in set(ref.columns)]
    if not shared:
        return None
    norms = [text_key] * len(shared)
    reference_rows = {t for t in _row_tuples(ref, shared, norms) if t is not None}
    return sum(1 for t in _row_tuples(syn, shared, norms) if t is not None and t in reference_rows)


def quasi_identifier_columns(table: pd.DataFrame, config: PiiConfig) -> dict[str, str]:
    """Role -> column of ``table``: the first column whose normalised name is an alias of the role."""
    by_name = {normalise_column_name(c): c for c in reversed(list(table.columns))}
    found: dict[str, str] = {}
    for role, aliases in config.quasi_identifiers:
        for alias in aliases:
            if alias in by_name:
                found[role] = by_name[alias]
                break
    return found


def quasi_identifier_copies(synthetic, reference, *, config: PiiConfig) -> tuple[int | None, list[str]]:
    """Synthetic rows repeating a reference row's quasi-identifier combination.

    Roles present in both tables are used (default name + birth date + zip);
    values compare in normal form (name tokens, ISO date, zip digits). Returns
    the count and the roles used; the count is ``None`` with fewer than 2 roles.
    """
    syn, syn_is_text = as_table(synthetic)
    ref, ref_is_text = as_table(reference)
    if syn_is_text or ref_is_text:
        return None, []
    syn_cols = quasi_identifier_columns(syn, config)
    ref_cols = quasi_identifier_columns(ref, config)
    roles = [r for r, _ in config.quasi_identifiers if r in syn_cols and r in ref_cols]
    if len(roles) < 2:
        return None, roles
    norms = [QI_NORMALIZERS.get(r, text_key) for r in roles]
    reference_keys = {t for t in _row_tuples(ref, [ref_cols[r] for r in roles], norms) if t is not None}
    count = sum(1 for t in _row_tuples(syn, [syn_cols[r] for r in roles], norms) if t is not None and t in reference_keys)
    return count, roles
