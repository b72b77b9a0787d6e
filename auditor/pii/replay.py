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

These classes are raw counts: a common first name is "replayed" from any table.
The evidence the verdict uses (:func:`record_evidence`) is per record of the
training split against the same per record of the holdout split (the control),
weighted by rarity: a value counts only when exactly one record of train and
holdout together holds it, and an in-context match only when exactly one
record holds both values. Values shared by several records, or present in the
control, single nobody out. The statistics are :mod:`attacks.excess`.
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


Record = tuple[str, int]


@dataclass(frozen=True)
class RecordEvidence:
    """Records of train and holdout that the synthetic findings single out.

    Attributes:
        unique: split -> rows whose value, held by no other record of either split, reappears.
        unique_by_entity, unique_by_column: entity / column of the value -> split -> rows.
        in_context: split -> rows of which two values reappear together in one synthetic
            row, and no other record of either split holds both.
        context_rows: split -> synthetic rows holding such a pair.
    """

    unique: dict[str, frozenset[int]]
    unique_by_entity: dict[str, dict[str, frozenset[int]]]
    unique_by_column: dict[str, dict[str, frozenset[int]]]
    in_context: dict[str, frozenset[int]]
    context_rows: dict[str, frozenset[int]]


def record_evidence(
    synthetic: Sequence[Finding], splits: dict[str, Sequence[Finding]]
) -> RecordEvidence:
    """Which records of each split (``{"train": ..., "holdout": ...}``) the synthetic findings single out.

    Holders of a key are the records of all splits together holding it. A
    synthetic finding whose key has exactly one holder marks that record
    (``unique``); two findings of one synthetic row, in different fields and
    with different keys, whose holder sets meet in exactly one record mark that
    record ``in_context``.
    """
    holders: dict[Key, set[Record]] = {}
    origin: dict[tuple[Key, Record], Finding] = {}
    for split, findings in splits.items():
        for f in findings:
            record = (split, f.row)
            holders.setdefault(finding_key(f), set()).add(record)
            origin.setdefault((finding_key(f), record), f)
    unique: dict[str, set[int]] = {s: set() for s in splits}
    by_entity: dict[str, dict[str, set[int]]] = {}
    by_column: dict[str, dict[str, set[int]]] = {}
    context: dict[str, set[int]] = {s: set() for s in splits}
    context_rows: dict[str, set[int]] = {s: set() for s in splits}
    by_row: dict[int, list[tuple[Finding, Key, set[Record]]]] = {}
    for f in synthetic:
        key = finding_key(f)
        held = holders.get(key)
        if not held:
            continue
        by_row.setdefault(f.row, []).append((f, key, held))
        if len(held) == 1:
            (split, row), = held
            unique[split].add(row)
            by_entity.setdefault(f.entity, {s: set() for s in splits})[split].add(row)
            column = origin[(key, (split, row))].column
            by_column.setdefault(str(column), {s: set() for s in splits})[split].add(row)
    for syn_row, members in by_row.items():
        for i, (fi, ki, hi) in enumerate(members):
            for fj, kj, hj in members[i + 1:]:
                if ki == kj or not _other_field(fi, fj):
                    continue
                small, large = (hi, hj) if len(hi) <= len(hj) else (hj, hi)
                both = [r for r in small if r in large]
                if len(both) == 1:
                    split, row = both[0]
                    context[split].add(row)
                    context_rows[split].add(syn_row)

    def frozen(d: dict[str, set[int]]) -> dict[str, frozenset[int]]:
        return {k: frozenset(v) for k, v in d.items()}

    return RecordEvidence(
        unique=frozen(unique),
        unique_by_entity={e: frozen(v) for e, v in sorted(by_entity.items())},
        unique_by_column={c: frozen(v) for c, v in sorted(by_column.items())},
        in_context=frozen(context),
        context_rows=frozen(context_rows),
    )


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
