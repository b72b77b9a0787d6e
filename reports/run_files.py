"""Reading the run directory files a report is built from (docs/audit-contract.md).

Validated once here, at the boundary: a file that is present must be valid
JSON without NaN/Infinity, be a mapping, and hold the contract's minimum keys.
A file that is absent means its stage did not run; its report section is then
left out. Every file a stage computed from the model or the synthetic data
(``PROVENANCE_CHECKED``, and any other ``audit/<name>.json``: an audit registered
beyond the contract) must still match those inputs (``reports.provenance``),
else the run is refused: a report never mixes numbers about different data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.errors import ReportInputError
from reports.provenance import check_current

# report section -> (file relative to the run dir, keys the contract guarantees)
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "run": ("run.json", ("config", "seeds", "versions", "data_hash", "config_hash", "created")),
    "privacy": ("model/privacy.json", (
        "dp", "epsilon", "delta", "accountant", "noise_multiplier", "max_grad_norm",
        "sample_rate", "steps", "outside_guarantee")),
    "generation": ("generation.json", ("requested", "generated", "valid", "invalid", "validity")),
    "canaries": ("audit/exposure.json", (
        "max_exposure", "log2_space", "by_repetition", "memorization", "extraction", "canaries")),
    "mia": ("audit/mia.json", ("signals", "best_signal", "n_members", "n_nonmembers")),
    "audit": ("audit/dp_audit.json", (
        "claimed_epsilon", "delta", "bounds", "max_lower_bound", "violation", "message")),
    "dp_verify": ("audit/dp_verify.json", (
        "claimed_epsilon", "delta", "epsilon_lower_bound", "epsilon_estimate", "confidence", "violation",
        "message", "canaries", "steps", "engine", "processes", "method")),
    "distance": ("audit/distance.json", (
        "dcr_train_share", "dcr_train_share_ci", "exact_copy_rate", "exact_copies", "dcr_hist")),
    "pii": ("audit/pii.json", ("synthetic", "replay", "holdout_control", "examples")),
    "quality": ("audit/quality.json", ("fidelity", "column_shapes", "pair_trends")),
    "duplicates": ("audit/duplicates.json", ("learned", "exact", "epsilon", "delta")),
    "anonymity": ("audit/anonymity.json", ("singling_out", "linkability", "inference", "n_compared")),
}

# sections whose file records its inputs; the stage that rewrites each (run.json and
# privacy.json are written by training, which starts a run afresh). Every other
# ``audit/<name>.json`` (an audit registered beyond this contract) records its inputs
# too and is rewritten by ``auditor audit --only <name>`` (``other_audit_files``).
# tests/test_audit_registry.py checks that the audits here are those of auditor's registry.
PROVENANCE_CHECKED: dict[str, str] = {"generation": "generate", "canaries": "exposure", "mia": "mia",
                                      "audit": "dp_audit", "distance": "distance", "pii": "pii",
                                      "quality": "quality", "duplicates": "duplicates", "anonymity": "anonymity"}
AUDIT_DIR = "audit"


def other_audit_files(root: str | Path) -> dict[str, str]:
    """``audit/<name>.json`` files that no section of ``SOURCES`` reads: rel path -> audit name."""
    folder = Path(root) / AUDIT_DIR
    if not folder.is_dir():
        return {}
    known = {rel for rel, _ in SOURCES.values()}
    return {f"{AUDIT_DIR}/{p.name}": p.stem for p in sorted(folder.glob("*.json"))
            if p.is_file() and not p.name.startswith(".") and f"{AUDIT_DIR}/{p.name}" not in known}


def provenance_checked(root: str | Path) -> dict[str, str]:
    """Every file of the run that must record its inputs: rel path -> the stage that rewrites it."""
    return {SOURCES[s][0]: stage for s, stage in PROVENANCE_CHECKED.items()} | other_audit_files(root)


@dataclass(frozen=True)
class RunFiles:
    """The parsed files of one run: section name -> content, and file -> SHA-256."""

    sections: dict[str, dict[str, Any]]
    hashes: dict[str, str]
    other_audits: dict[str, dict[str, Any]] = field(default_factory=dict)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def read_json(path: Path, rel: str) -> dict[str, Any]:
    """Parse one contract file; ``ReportInputError`` names ``rel`` on any problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReportInputError(f"{rel}: cannot read ({exc.__class__.__name__})") from exc
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReportInputError(f"{rel}: not valid JSON (the contract forbids NaN/Infinity; use null)") from exc
    if not isinstance(data, dict):
        raise ReportInputError(f"{rel}: expected a JSON object")
    return data


def read_run(run_dir: str | Path) -> RunFiles:
    """Read and validate every contract file present in ``run_dir``.

    Raises:
        ReportInputError: ``run_dir`` is not a directory, holds none of the
            contract files, a present file is invalid or lacks a required key,
            or a file's provenance does not match the current inputs.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise ReportInputError(f"run directory not found: {root}")
    sections: dict[str, dict[str, Any]] = {}
    hashes: dict[str, str] = {}
    for section, (rel, required) in SOURCES.items():
        path = root / rel
        if not path.is_file():
            continue
        data = read_json(path, rel)
        missing = [k for k in required if k not in data]
        if missing:
            raise ReportInputError(f"{rel}: missing key(s) {', '.join(missing)} (see docs/audit-contract.md)")
        sections[section] = data
        hashes[rel] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    extra = other_audit_files(root)
    others = {name: read_json(root / rel, rel) for rel, name in extra.items()}
    for rel in extra:
        hashes[rel] = "sha256:" + hashlib.sha256((root / rel).read_bytes()).hexdigest()
    if not sections and not others:
        expected = ", ".join(rel for rel, _ in SOURCES.values())
        raise ReportInputError(f"{root}: no run files found (expected any of {expected})")
    present = {SOURCES[s][0]: sections[s] for s in PROVENANCE_CHECKED if s in sections}
    present |= {rel: others[name] for rel, name in extra.items()}
    check_current(root, present, refresh=provenance_checked(root))
    return RunFiles(sections=sections, hashes=hashes, other_audits=others)
