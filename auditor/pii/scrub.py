"""Optional post-generation filter: remove synthetic rows that replay training PII.

This filter reads the training data, so what it removes depends on private
records outside DP-SGD: a run that uses it must report it as outside the DP
guarantee (DESIGN.md, privacy rule 2): ``auditor.pipeline.generate`` notes the fact
``pii_replay_scrub`` of ``auditor.dp.ledger`` in ``privacy.json``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import pandas as pd
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from auditor.errors import UserError
from auditor.pii.config import PiiConfig, load_config
from auditor.pii.engine import get_engine
from auditor.pii.replay import NOVEL, ReplayIndex, classify
from auditor.pii.scan import TEXT_COLUMN, Finding, ResultCache, as_table, scan_table

log = logging.getLogger("auditor.pii")

MODES = ("drop", "replace")


def replayed_findings(synthetic, train, *, config: PiiConfig) -> list[Finding]:
    """Synthetic findings whose value occurs in the training data (any replay class)."""
    engine = get_engine(config)
    cache: ResultCache = {}
    syn = scan_table(synthetic, engine=engine, config=config, label="synthetic", cache=cache)
    ref = scan_table(train, engine=engine, config=config, label="train", cache=cache)
    labels = classify(syn.findings, ReplayIndex.from_findings(ref.findings))
    return [f for f, label in zip(syn.findings, labels) if label != NOVEL]


def replace_spans(text: str, findings: Sequence[Finding], *, anonymizer: AnonymizerEngine) -> str:
    """``text`` with each finding's span replaced by ``<ENTITY>`` (presidio-anonymizer)."""
    results = [RecognizerResult(f.entity, f.start, f.end, f.score) for f in findings]
    return anonymizer.anonymize(text=text, analyzer_results=results, operators={"DEFAULT": OperatorConfig("replace")}).text


def scrub_replayed(
    synthetic: "pd.DataFrame | Sequence[str]",
    train: "pd.DataFrame | Sequence[str]",
    *,
    mode: str = "drop",
    config: "PiiConfig | Mapping[str, Any] | None" = None,
) -> tuple["pd.DataFrame | list[str]", int]:
    """Drop, or anonymise, synthetic rows holding PII replayed from ``train``.

    Args:
        synthetic: DataFrame or text records.
        train: the training split.
        mode: ``drop`` removes the rows; ``replace`` swaps each replayed span for
            ``<ENTITY>`` and keeps the row.
        config: PII configuration (defaults if ``None``).

    Returns:
        The filtered data (a DataFrame, or a list for text records) and the number
        of rows dropped or changed.
    """
    if mode not in MODES:
        raise UserError(f"scrub mode must be one of {', '.join(MODES)}, got {mode!r}")
    config = load_config(config)
    table, is_text = as_table(synthetic)
    hits = replayed_findings(table, train, config=config)
    rows = sorted({f.row for f in hits})
    if mode == "drop":
        out = table.drop(index=rows).reset_index(drop=True)
    else:
        out = table.copy()
        anonymizer = AnonymizerEngine()
        by_cell: dict[tuple[int, str], list[Finding]] = {}
        for f in hits:
            by_cell.setdefault((f.row, f.column), []).append(f)
        for (row, column), cell_findings in by_cell.items():
            out.at[row, column] = replace_spans(str(table.at[row, column]), cell_findings, anonymizer=anonymizer)
    log.info("pii scrub (%s): %d of %d synthetic rows had replayed PII", mode, len(rows), len(table))
    return (out[TEXT_COLUMN].tolist() if is_text else out), len(rows)
