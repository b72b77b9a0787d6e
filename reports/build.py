"""``build_report``: run directory (+ policy) -> the report record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reports.checks import is_model_free
from reports.policy import Check, Policy, evaluate, not_applicable, verdict
from reports.record import assemble
from reports.run_files import read_run


def build_report(run_dir: str | Path, *, policy: Policy | None = None) -> dict[str, Any]:
    """Read the run directory, evaluate ``policy`` on it, return the record.

    Args:
        run_dir: a run directory laid out as in docs/audit-contract.md.
        policy: thresholds to gate on (``reports.policy.load_policy``); ``None``
            gives verdict ``no-policy`` and no checks.

    Returns:
        The record, JSON-serialisable, shaped as documented in docs/report.md.

    Raises:
        ReportInputError: the run directory or one of its files is invalid.
        TypeError: ``policy`` is not a ``Policy``.
    """
    if policy is not None and not isinstance(policy, Policy):
        raise TypeError(f"policy must be a reports.policy.Policy or None, got {type(policy).__name__}")
    files = read_run(run_dir)
    draft = assemble(files, policy=None, checks=None, verdict="no-policy")
    if policy is None:
        return draft
    checks = evaluate(draft, policy)
    record = assemble(files, policy=policy.to_dict(), checks=[c.to_dict() for c in checks],
                      verdict=verdict(checks))
    record["verdict_basis"] = verdict_basis(draft, policy, checks)
    return record


def verdict_basis(record: dict[str, Any], policy: Policy, checks: list[Check]) -> dict[str, Any]:
    """What the verdict rests on: the mode, the checks evaluated, those not applicable and why."""
    skipped = not_applicable(record, policy)
    mode = "model-free" if is_model_free(record) else "model"
    rests_on = [c.name for c in checks]
    text = f"The verdict rests on {len(rests_on)} check(s): {', '.join(rests_on) or 'none'}."
    if skipped:
        text += (" Not applicable to a model-free audit (no model, no DP claim): "
                 f"{', '.join(c['name'] for c in skipped)}.")
    return {"mode": mode, "checks": rests_on, "not_applicable": skipped, "text": text}
