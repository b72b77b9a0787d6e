"""The PII audit: scan synthetic data, compare with train and holdout, write ``pii.json``.

:func:`analyze` does the work and keeps raw values in memory; :func:`report`
turns the result into the redacted ``pii.json`` record (``docs/audit-contract.md``);
:func:`reveal` gives the unredacted findings for the 0600 ``--reveal`` file.
:func:`run` is the pipeline's entry point: ``report(analyze(...))``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, TypeAlias

import pandas as pd

from attacks.excess import excess_over_control
from auditor.pii.config import PiiConfig, load_config
from auditor.pii.engine import Engine, get_engine
from auditor.pii.replay import (
    IN_CONTEXT,
    NOVEL,
    REPLAYED,
    RecordEvidence,
    ReplayIndex,
    classify,
    exact_row_copies,
    finding_key,
    quasi_identifier_copies,
    record_evidence,
    replay_counts,
)
from auditor.pii.scan import ResultCache, ScanResult, column_stats, scan_table
from reports.pii_masking import Redactor

log = logging.getLogger("auditor.pii")

Records: TypeAlias = pd.DataFrame | Sequence[str]

#: Example order: the most serious class first.
_EXAMPLE_PRIORITY = {IN_CONTEXT: 0, REPLAYED: 1, NOVEL: 2}


@dataclass
class PiiAnalysis:
    """Everything the audit found, raw values included (never serialise as is).

    Attributes:
        engine: the analyzer used.
        config: the configuration used.
        synthetic: scan of the synthetic data.
        train, holdout: scans of the reference splits (``None`` if not given).
        labels: class of each synthetic finding against train (``None`` without train).
        holdout_labels: the same against holdout.
        exact_copies, exact_copies_holdout: synthetic rows equal to a train / holdout row.
        qi_copies, qi_copies_holdout: quasi-identifier combination copies.
        qi_roles: quasi-identifier roles used.
        evidence: train and holdout records singled out (with both splits given).
    """

    engine: Engine
    config: PiiConfig
    synthetic: ScanResult
    train: ScanResult | None = None
    holdout: ScanResult | None = None
    labels: list[str] | None = None
    holdout_labels: list[str] | None = None
    exact_copies: int | None = None
    exact_copies_holdout: int | None = None
    qi_copies: int | None = None
    qi_copies_holdout: int | None = None
    qi_roles: tuple[str, ...] = ()
    evidence: RecordEvidence | None = None


def analyze(
    *,
    synthetic: Records,
    train: Records | None = None,
    holdout: Records | None = None,
    config: "PiiConfig | Mapping[str, Any] | None" = None,
) -> PiiAnalysis:
    """Scan ``synthetic`` and, when given, ``train`` and ``holdout``; classify replays."""
    config = load_config(config)
    engine = get_engine(config)
    cache: ResultCache = {}
    result = PiiAnalysis(
        engine=engine, config=config, synthetic=scan_table(synthetic, engine=engine, config=config, label="synthetic", cache=cache)
    )
    if train is not None:
        result.train = scan_table(train, engine=engine, config=config, label="train", cache=cache)
        result.labels = classify(result.synthetic.findings, ReplayIndex.from_findings(result.train.findings))
        result.exact_copies = exact_row_copies(synthetic, train)
        result.qi_copies, roles = quasi_identifier_copies(synthetic, train, config=config)
        result.qi_roles = tuple(roles)
    if holdout is not None:
        result.holdout = scan_table(holdout, engine=engine, config=config, label="holdout", cache=cache)
        result.holdout_labels = classify(result.synthetic.findings, ReplayIndex.from_findings(result.holdout.findings))
        result.exact_copies_holdout = exact_row_copies(synthetic, holdout)
        result.qi_copies_holdout, _ = quasi_identifier_copies(synthetic, holdout, config=config)
    if result.train is not None and result.holdout is not None:
        result.evidence = record_evidence(
            result.synthetic.findings, {"train": result.train.findings, "holdout": result.holdout.findings}
        )
    log.info(
        "pii: %d synthetic findings in %d rows; replayed %s, in context %s",
        len(result.synthetic.findings),
        result.synthetic.n_rows,
        _count(result.labels, REPLAYED),
        _count(result.labels, IN_CONTEXT),
    )
    return result


def _count(labels: Sequence[str] | None, cls: str) -> int | None:
    return None if labels is None else sum(1 for label in labels if label == cls)


def _scan_block(scan: ScanResult) -> dict[str, Any]:
    by_entity: dict[str, int] = {}
    for f in scan.findings:
        by_entity[f.entity] = by_entity.get(f.entity, 0) + 1
    return {
        "rows": scan.n_rows,
        "columns": list(scan.columns),
        "findings": len(scan.findings),
        "rows_with_pii": len({f.row for f in scan.findings}),
        "distinct_values": len({finding_key(f) for f in scan.findings}),
        "by_entity": dict(sorted(by_entity.items())),
        "by_column": column_stats(scan.findings),
    }


def _examples(analysis: PiiAnalysis, redactor: Redactor) -> list[dict[str, Any]]:
    findings = analysis.synthetic.findings
    labels = analysis.labels or [None] * len(findings)
    order = sorted(range(len(findings)), key=lambda i: (_EXAMPLE_PRIORITY.get(labels[i], 3), findings[i].row, findings[i].column))
    seen: set = set()
    out = []
    for i in order:
        if len(out) >= analysis.config.max_examples:
            break
        f = findings[i]
        key = finding_key(f)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            {"row": f.row, "column": f.column, "entity": f.entity, "class": labels[i], "score": round(f.score, 4)}
            | redactor.redact(f.text, f.entity)
        )
    return out


#: Synthetic rows named in the report as re-identifying a training record.
MAX_NAMED_ROWS = 20


def _records_excess(rows: Mapping[str, frozenset[int]], n_train: int, n_holdout: int) -> dict[str, Any]:
    return excess_over_control(train_hits=len(rows["train"]), train_n=n_train,
                               control_hits=len(rows["holdout"]), control_n=n_holdout)


def control_block(evidence: RecordEvidence, *, n_train: int, n_holdout: int) -> dict[str, Any]:
    """``replay_vs_control``: records singled out in train against the holdout control (``attacks.excess``).

    ``unique`` (with ``by_entity`` and ``by_column``) and ``in_context`` (with
    the first ``MAX_NAMED_ROWS`` synthetic rows re-identifying a training record).
    """
    named = sorted(evidence.context_rows["train"])
    return {
        "unique": _records_excess(evidence.unique, n_train, n_holdout)
        | {"by_entity": {e: _records_excess(r, n_train, n_holdout) for e, r in evidence.unique_by_entity.items()},
           "by_column": {c: _records_excess(r, n_train, n_holdout) for c, r in evidence.unique_by_column.items()}},
        "in_context": _records_excess(evidence.in_context, n_train, n_holdout)
        | {"synthetic_rows": named[:MAX_NAMED_ROWS], "synthetic_rows_total": len(named)},
    }


def _control_block(analysis: PiiAnalysis) -> dict[str, Any] | None:
    if analysis.evidence is None or analysis.train is None or analysis.holdout is None:
        return None
    if analysis.train.n_rows < 1 or analysis.holdout.n_rows < 1:
        return None
    return control_block(analysis.evidence, n_train=analysis.train.n_rows, n_holdout=analysis.holdout.n_rows)


def report(analysis: PiiAnalysis, *, salt: str) -> dict[str, Any]:
    """The redacted ``pii.json`` record: counts, masked examples with salted hashes."""
    redactor = Redactor(salt)
    engine = analysis.engine
    replay = replay_counts(analysis.synthetic.findings, analysis.labels) if analysis.labels is not None else None
    control = None
    if analysis.holdout_labels is not None:
        control = replay_counts(analysis.synthetic.findings, analysis.holdout_labels)
    cfg = analysis.config
    return {
        "engine": engine.describe(),
        "entities_scanned": list(engine.entities),
        "entities_not_scanned": list(engine.not_scanned),
        "not_scanned_reasons": dict(engine.not_scanned),
        "settings": {
            "score_threshold": cfg.score_threshold,
            "entities": None if cfg.entities is None else list(cfg.entities),
            "allow_list_size": len(cfg.allow_list),
            "recognizer_types": [s.type for s in cfg.recognizers],
        },
        "synthetic": _scan_block(analysis.synthetic),
        "train": None if analysis.train is None else _scan_block(analysis.train),
        "holdout": None if analysis.holdout is None else _scan_block(analysis.holdout),
        "replay": replay,
        "holdout_control": control,
        "replay_vs_control": _control_block(analysis),
        "replayed_pii": None if replay is None else replay[REPLAYED] + replay[IN_CONTEXT],
        "exact_row_copies": analysis.exact_copies,
        "exact_row_copies_holdout": analysis.exact_copies_holdout,
        "quasi_identifier_copies": analysis.qi_copies,
        "quasi_identifier_copies_holdout": analysis.qi_copies_holdout,
        "quasi_identifiers": list(analysis.qi_roles),
        "examples": _examples(analysis, redactor),
        "redaction": "values masked (reports.pii_masking) with a salted SHA-256 hash; the salt is not in this file",
    }


def reveal(analysis: PiiAnalysis) -> dict[str, Any]:
    """Unredacted synthetic findings, for a 0600 file written with ``write_private``."""
    labels = analysis.labels or [None] * len(analysis.synthetic.findings)
    return {
        "warning": "UNREDACTED PII: keep this file private",
        "findings": [
            {"row": f.row, "column": f.column, "entity": f.entity, "start": f.start, "end": f.end,
             "score": round(f.score, 4), "value": f.text, "class": label}
            for f, label in zip(analysis.synthetic.findings, labels)
        ],
    }  # fmt: skip


def run(
    *,
    synthetic: Records,
    train: Records,
    holdout: Records | None = None,
    config: "PiiConfig | Mapping[str, Any] | None" = None,
    salt: str,
) -> dict[str, Any]:
    """The ``pii`` audit: ``audit/pii.json`` content for a run.

    Args:
        synthetic: the released synthetic data (DataFrame or text records).
        train: the training split the synthesizer saw.
        holdout: the holdout split (chance-match control), if any.
        config: ``PiiConfig``, a mapping of overrides, or ``None`` for defaults.
        salt: per-run salt of the hashes in the examples.
    """
    return report(analyze(synthetic=synthetic, train=train, holdout=holdout, config=config), salt=salt)
