"""Column-aware PII scanning with Presidio.

A table is scanned column by column. Each column's distinct non-empty values are
analysed once (a categorical column of 5,000 rows and 40 values costs 40
analyses), in batches (:mod:`auditor.pii.batch_analysis`: NER through
``nlp.pipe``, lemmas only where they can change a score, recognizers skipped
where they cannot match, one recognizer pass per value shared by all columns),
and the findings are mapped back to every row holding the value. The column name, split into
words, is passed to Presidio as context (a ``phone`` column raises phone-number
scores as the word "phone" in a sentence would). Free-text columns and text
records are distinct per record, so they are scanned once per record.

A value's findings depend only on the value and its column's context, so the
result equals a per-cell loop of ``AnalyzerEngine.analyze`` with the same
arguments (``benchmarks/pii_scan.py`` checks that and times both).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from presidio_analyzer import RecognizerResult
from tqdm.auto import tqdm

from auditor.errors import UserError
from auditor.pii.batch_analysis import BatchAnalyzer, TextCache
from auditor.pii.config import PiiConfig
from auditor.pii.engine import Engine, presidio_warnings_summarised

#: Column name given to text records (a list of strings).
TEXT_COLUMN = "text"

#: Entity types of statistical NER, which lose ties to specific types on the same span.
BROAD_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "DATE_TIME", "ORGANIZATION"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected PII span. ``text`` is the raw value: never log or serialise it.

    Attributes:
        row: 0-based position of the record in its table.
        column: column name (``text`` for text records).
        entity: Presidio entity type.
        start, end: character span within the cell.
        score: Presidio confidence in [0, 1].
        text: the matched substring.
    """

    row: int
    column: str
    entity: str
    start: int
    end: int
    score: float
    text: str


@dataclass
class ScanResult:
    """Findings of one table and the shape they were found in."""

    findings: list[Finding]
    n_rows: int
    columns: tuple[str, ...]
    is_text: bool


def as_table(records: "pd.DataFrame | Sequence[str]") -> tuple[pd.DataFrame, bool]:
    """A DataFrame of the records, and whether they were text records.

    Raises:
        UserError: neither a DataFrame nor a sequence of strings; duplicate columns.
    """
    if isinstance(records, pd.DataFrame):
        if records.columns.duplicated().any():
            raise UserError("the table has duplicate column names")
        return records.reset_index(drop=True), False
    if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
        raise UserError("records must be a DataFrame or a list of strings")
    if not all(isinstance(r, str) for r in records):
        raise UserError("text records must all be strings")
    return pd.DataFrame({TEXT_COLUMN: list(records)}, dtype=object), True


def cell_text(value: Any) -> str | None:
    """The text to scan for one cell; ``None`` for missing or blank cells.

    Integral floats print without ``.0`` (pandas reads integer columns with gaps
    as float), so ``12345.0`` is scanned as ``12345``.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value)
    return text if text.strip() else None


def column_context(name: str) -> list[str]:
    """Context words of a column name: ``phoneNumber`` / ``phone_number`` -> ``["phone", "number"]``."""
    return [w.lower() for w in _SPLIT.split(_CAMEL.sub(" ", str(name))) if w]


def resolve_overlaps(results: Sequence[RecognizerResult]) -> list[RecognizerResult]:
    """Keep one finding per piece of text, as presidio-anonymizer resolves conflicts.

    A result whose span lies strictly inside another result's span is dropped
    (the domain ``example.com`` inside an e-mail address, a date-like fragment of
    a phone number). Of results with the same span, a specific type (SSN, phone,
    card ...) beats a broad NER type (:data:`BROAD_ENTITIES`: the small spaCy
    model tags many digit strings as dates), then the higher score, then entity
    name order. Results that merely overlap are both kept.
    """
    ranked = sorted(results, key=lambda r: (r.start, -r.end, r.entity_type in BROAD_ENTITIES, -r.score, r.entity_type))
    kept: list[RecognizerResult] = []
    for res in ranked:
        covered = any(
            k.start <= res.start and res.end <= k.end and (k.start, k.end) != (res.start, res.end) for k in kept
        )
        same_span = any((k.start, k.end) == (res.start, res.end) for k in kept)
        if not covered and not same_span:
            kept.append(res)
    return kept


def analyze_text(text: str, *, engine: Engine, config: PiiConfig, context: list[str] | None,
                 nlp_artifacts=None) -> list[RecognizerResult]:
    """Presidio results for one text with the scan's settings, overlaps resolved.

    Without ``nlp_artifacts`` the analyzer runs the NLP pipeline itself (one call per text).
    """
    results = engine.analyzer.analyze(
        text=text,
        language=engine.language,
        entities=list(engine.entities),
        score_threshold=config.score_threshold,
        context=context,
        allow_list=list(config.allow_list) or None,
        nlp_artifacts=nlp_artifacts,
    )
    return resolve_overlaps(results)


def analyze_texts(
    texts: Sequence[str], *, engine: Engine, config: PiiConfig, context: list[str] | None, progress: tqdm | None = None,
    analyzer: BatchAnalyzer | None = None, text_cache: TextCache | None = None,
) -> list[list[RecognizerResult]]:
    """:func:`analyze_text` for each text (overlaps resolved), computed as in :mod:`auditor.pii.batch_analysis`."""
    analyzer = analyzer or BatchAnalyzer(engine, config)
    text_cache = TextCache() if text_cache is None else text_cache
    out = []
    # Chunks of one batch keep the progress bar moving; nlp.pipe batches the same way.
    step = max(1, config.batch_size)
    for i in range(0, len(texts), step):
        chunk = list(texts[i : i + step])
        out.extend(resolve_overlaps(res) for res in analyzer.analyze(chunk, context=context, cache=text_cache))
        if progress is not None:
            progress.update(len(chunk))
    return out


#: (column context, text) -> resolved results; shared by the scans of one audit.
ResultCache = dict[tuple[tuple[str, ...] | None, str], list[RecognizerResult]]


def scan_table(
    records: "pd.DataFrame | Sequence[str]",
    *,
    engine: Engine,
    config: PiiConfig,
    label: str = "records",
    cache: ResultCache | None = None,
) -> ScanResult:
    """Scan every cell of a table (or every text record) for PII.

    Args:
        records: a DataFrame, or a list of text records.
        engine: from :func:`auditor.pii.engine.get_engine`.
        config: score threshold, allow-list, batching.
        label: shown on the progress bar (``synthetic``, ``train`` ...).
        cache: results of values already analysed with the same engine and
            config (the synthetic, train and holdout scans of one audit share
            their categorical and replayed values); filled in place.
    """
    table, is_text = as_table(records)
    cache = {} if cache is None else cache
    analyzer = BatchAnalyzer(engine, config)
    text_cache = TextCache()
    distinct = {}
    for column in table.columns:
        texts = [cell_text(v) for v in table[column].tolist()]
        distinct[column] = pd.factorize(pd.Series(texts, dtype=object), use_na_sentinel=True)
    findings: list[Finding] = []
    total = sum(len(uniques) for _, uniques in distinct.values())
    bar = tqdm(total=total, desc=f"pii scan {label}", unit="value", leave=False, disable=None)
    with presidio_warnings_summarised(f"pii scan {label}"), bar:
        for column, (codes, uniques) in distinct.items():
            name = str(column)
            context = None if is_text else tuple(column_context(name))
            todo = [text for text in uniques if (context, text) not in cache]
            bar.update(len(uniques) - len(todo))
            fresh = analyze_texts(
                todo, engine=engine, config=config, context=list(context or ()) or None, progress=bar,
                analyzer=analyzer, text_cache=text_cache,
            )
            cache.update(((context, text), res) for text, res in zip(todo, fresh))
            for row, code in enumerate(codes):
                if code < 0:
                    continue
                text = uniques[code]
                for res in cache[(context, text)]:
                    findings.append(Finding(row, name, res.entity_type, res.start, res.end, float(res.score), text[res.start : res.end]))
    return ScanResult(findings=findings, n_rows=len(table), columns=tuple(str(c) for c in table.columns), is_text=is_text)


def score_summary(scores: Sequence[float]) -> dict[str, float | None]:
    """Min, quartiles, mean and max of the scores (``None`` each when empty)."""
    if len(scores) == 0:
        return {"min": None, "p25": None, "median": None, "p75": None, "mean": None, "max": None}
    arr = np.asarray(scores, dtype=float)
    q25, q50, q75 = np.quantile(arr, [0.25, 0.5, 0.75])
    return {
        "min": round(float(arr.min()), 4),
        "p25": round(float(q25), 4),
        "median": round(float(q50), 4),
        "p75": round(float(q75), 4),
        "mean": round(float(arr.mean()), 4),
        "max": round(float(arr.max()), 4),
    }


def column_stats(findings: Sequence[Finding]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per column and entity type: findings, rows affected, score distribution."""
    grouped: dict[str, dict[str, list[Finding]]] = {}
    for f in findings:
        grouped.setdefault(f.column, {}).setdefault(f.entity, []).append(f)
    return {
        column: {
            entity: {
                "findings": len(items),
                "rows": len({f.row for f in items}),
                "score": score_summary([f.score for f in items]),
            }
            for entity, items in sorted(by_entity.items())
        }
        for column, by_entity in grouped.items()
    }
