"""The report record: ``report.json``, the one source every rendering reads.

``SCHEMA_VERSION`` follows semantic versioning: a new optional key is a minor
bump, a removed or renamed key or a changed meaning is a major bump. The schema
is documented in docs/report.md.

Audit sections are copied verbatim from ``audit/*.json`` (so a value in the
report is the value the audit wrote); a section whose audit did not run is
absent, never filled with defaults. An audit registered beyond the contract
(``auditor.audits.register_audit``) appears verbatim under ``other_audits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

from reports.run_files import RunFiles

SCHEMA_VERSION = "1.1"

AUDIT_SECTIONS = ("privacy", "dp_verify", "generation", "canaries", "mia", "audit", "distance", "pii", "quality",
                  "duplicates", "anonymity")


def _tool_version() -> str | None:
    try:
        return metadata.version("dp-auditor")
    except metadata.PackageNotFoundError:
        return None


def reproducibility(run: Mapping[str, Any] | None, hashes: Mapping[str, str]) -> dict[str, Any]:
    """Versions and config of the run, plus the hash of every input file.

    Never the run's data hash (it is keyed with the run's private salt and of no use
    to a reader) nor its seeds or config hash: a recorded noise seed
    (``--reproducible-noise``) reproduces the DP randomness, and a hash of the config
    would let a reader search for the seeds left out of it.
    """
    section: dict[str, Any] = {"inputs": dict(sorted(hashes.items())), "report_tool_version": _tool_version()}
    if run is not None:
        for key in ("versions", "created"):
            section[key] = run[key]
        section["config"] = _without_noise_seed(run["config"])
    return section


def _without_noise_seed(config: Mapping[str, Any]) -> dict[str, Any]:
    train = config.get("train")
    if not isinstance(train, Mapping):  # model-free runs record the training file's path here
        return dict(config)
    train = dict(train)
    if train.get("reproducible_noise") is not None:
        train["reproducible_noise"] = "recorded in the run directory (no DP guarantee)"
    return {**config, "train": train}


def assemble(files: RunFiles, *, policy: Mapping[str, Any] | None, checks: list[Mapping[str, Any]] | None,
             verdict: str) -> dict[str, Any]:
    """Put the record together in schema order (see docs/report.md)."""
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "verdict": verdict,
        "policy": dict(policy) if policy is not None else None,
        "checks": [dict(c) for c in checks] if checks is not None else [],
    }
    for name in AUDIT_SECTIONS:
        if name in files.sections:
            record[name] = files.sections[name]
    if files.other_audits:
        record["other_audits"] = {name: dict(content) for name, content in sorted(files.other_audits.items())}
    record["reproducibility"] = reproducibility(files.sections.get("run"), files.hashes)
    return record
