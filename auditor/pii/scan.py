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

from auditor import execution
from auditor.errors import UserError
from auditor.execution import Executor
from auditor.pii.batch_analysis import BatchAnalyzer, TextCache
from auditor.pii.config import PiiConfig
from auditor.pii.engine import Engine, get_engine, get_engine_if_built, presidio_warnings_summarised

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
    executor: Executor | None = None,
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
        executor: where the distinct values are analysed (:func:`auditor.execution.current`
            without one); the findings do not depend on it (:func:`_analyse_on_workers`).
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
        counted = _analyse_on_workers(distinct, is_text=is_text, engine=engine, config=config, cache=cache,
                                      bar=bar, executor=executor)
        for column, (codes, uniques) in distinct.items():
            name = str(column)
            context = None if is_text else tuple(column_context(name))
            todo = [text for text in uniques if (context, text) not in cache]
            bar.update(sum((context, text) not in counted for text in uniques) - len(todo))
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


#: Fewest distinct values worth a part of their own on a worker (a worker's first part also builds its engine).
MIN_VALUES_PER_PART = 1000
#: Most distinct values in one part (about a minute and a half of work): a part holds its worker's GIL
#: in long stretches, and a Dask worker must still answer its scheduler's heartbeats in between.
MAX_VALUES_PER_PART = 10_000


def _analyse_on_workers(distinct, *, is_text: bool, engine: Engine, config: PiiConfig, cache: ResultCache,
                        bar: tqdm, executor: Executor | None) -> set:
    """Analyse the values not in ``cache`` on the executor's workers, into ``cache``; nothing when one part will do.

    Returns the (context, value) pairs analysed (and counted on ``bar``).

    A value's results depend only on the value, its column's context and the
    config (:mod:`auditor.pii.batch_analysis`), so cutting the (context, value)
    pairs into parts and analysing each part on any worker, with the engine
    :func:`auditor.pii.engine.get_engine` builds there from the same config,
    gives the results of one pass here. Only the engine ``get_engine`` gives for
    ``config`` is rebuilt on workers; a caller's own engine is used here.
    """
    executor = executor or execution.current()
    todo: dict[tuple[str, ...] | None, list[str]] = {}
    for column, (_, uniques) in distinct.items():
        context = None if is_text else tuple(column_context(str(column)))
        seen = todo.setdefault(context, [])
        seen.extend(text for text in uniques if (context, text) not in cache)
    pairs = [(context, text) for context, texts in todo.items() for text in dict.fromkeys(texts)]
    n_parts = executor.split(len(pairs), min_items=MIN_VALUES_PER_PART)
    if n_parts <= 1 or engine is not get_engine_if_built(config):
        return set()
    n_parts = max(n_parts, -(-len(pairs) // MAX_VALUES_PER_PART))
    # Dealt round-robin, so that every part gets its share of the costly columns (free text, NER).
    parts = [_group_by_context(pairs[i::n_parts]) for i in range(n_parts)]

    def done(i: int) -> None:
        bar.update(sum(len(texts) for _, texts in parts[i]))

    results = executor.map(_analyse_part, parts, shared=config, on_done=done)
    here = engine_identity(engine)
    for identity, _ in results:
        if identity != here:
            raise UserError(f"a worker's PII engine is not this process's ({_describe(identity)} there, "
                            f"{_describe(here)} here): install the same spaCy pipeline on every worker")
    for part, (_, found) in zip(parts, results):
        for (context, texts), per_text in zip(part, found):
            for text, spans in zip(texts, per_text):
                cache[(context, text)] = [RecognizerResult(entity, start, end, score)
                                          for entity, start, end, score in spans]
    return set(pairs)


def _group_by_context(pairs):
    grouped: dict = {}
    for context, text in pairs:
        grouped.setdefault(context, []).append(text)
    return list(grouped.items())


def engine_identity(engine: Engine) -> tuple:
    """What must be equal for a worker's engine to find what this process's finds."""
    return (engine.model.name, engine.model.version, engine.model.ner, engine.entities, engine.recognizers)


def _describe(identity: tuple) -> str:
    name, version, ner, _, recognizers = identity
    return f"pipeline {name} {version or ''}".rstrip() + f", {'NER' if ner else 'no NER'}, {len(recognizers)} recognizers"


def _analyse_part(config: PiiConfig, part) -> tuple[tuple, list[list[list[tuple[str, int, int, float]]]]]:
    """On a worker: its engine's identity and the resolved results of each (context, texts) group, as tuples."""
    engine = get_engine(config)
    analyzer = BatchAnalyzer(engine, config)
    text_cache = TextCache()
    out = []
    with presidio_warnings_summarised("pii scan on a worker"):
        for context, texts in part:
            found = analyze_texts(texts, engine=engine, config=config, context=list(context or ()) or None,
                                  analyzer=analyzer, text_cache=text_cache)
            out.append([[(r.entity_type, r.start, r.end, float(r.score)) for r in res] for res in found])
    return engine_identity(engine), out


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
