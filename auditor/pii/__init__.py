"""PII scanning and PII replay detection on synthetic data, with Presidio.

Entry points:
    run(*, synthetic, train, holdout, config, salt) -> dict   # audit/pii.json
    scrub_replayed(synthetic, train, *, mode, config) -> (data, n_rows)
Lower level: analyze/report/reveal (auditor.pii.pii_audit), scan_table
(auditor.pii.scan), get_engine (auditor.pii.engine), load_config (auditor.pii.config).
"""

from auditor.pii.pii_audit import PiiAnalysis, analyze, report, reveal, run
from auditor.pii.config import PiiConfig, load_config
from auditor.pii.scrub import scrub_replayed

__all__ = [
    "PiiAnalysis",
    "PiiConfig",
    "analyze",
    "load_config",
    "report",
    "reveal",
    "run",
    "scrub_replayed",
]
