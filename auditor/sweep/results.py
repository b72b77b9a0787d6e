"""The sweep record (``sweep.json``): one row per point, the frontiers and the chosen setting.

Every number in a row is copied from the point's ``report.json`` (so the sweep
says what each report says); the frontier and the choice come from the pure
functions of ``auditor.sweep.frontier``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from auditor.dp.ledger import fact
from auditor.sweep.frontier import best_point, pareto_front
from reports.checks import mia_values
from reports.summary import fmt, fmt_epsilon

SCHEMA_VERSION = "1.0"
UTILITY_LABELS = {"tstr": "TSTR ratio", "fidelity": "fidelity"}
COSTS = {"epsilon": "ε", "attack": "membership-inference AUC"}  # frontier name -> what its cost is


def point_metrics(record: Mapping[str, Any]) -> dict[str, Any]:
    """The table's numbers from a point's report record; ``None`` where an audit did not run.

    ``mia_auc`` and ``mia_tpr_at_1pct_fpr`` are the largest over the record-level
    attacks, as the policy checks take them (``reports.checks.mia_values``);
    ``epsilon`` is ``None`` for a point trained without DP.
    """
    privacy = record.get("privacy") or {}
    quality = record.get("quality") or {}
    tstr = quality.get("tstr") or {}
    replay = (record.get("pii") or {}).get("replay")
    aucs = mia_values(record, lambda a: a.get("auc"))
    tprs = mia_values(record, lambda a: (a.get("tpr_at_fpr") or {}).get("0.01"))
    validity = quality.get("validity")
    if validity is None:
        validity = (record.get("generation") or {}).get("validity")
    return {
        "dp": privacy.get("dp"),
        "epsilon": privacy.get("epsilon") if privacy.get("dp") else None,
        "delta": privacy.get("delta") if privacy.get("dp") else None,
        "noise_multiplier": privacy.get("noise_multiplier"),
        "max_grad_norm": privacy.get("max_grad_norm"),
        "steps": privacy.get("steps"),
        "validity": validity,
        "fidelity": quality.get("fidelity"),
        "tstr_ratio": tstr.get("ratio"),
        "tstr_metric": tstr.get("metric"),
        "tstr_synthetic": tstr.get("synthetic"),
        "max_exposure": (record.get("canaries") or {}).get("max_exposure"),
        "log2_space": (record.get("canaries") or {}).get("log2_space"),
        "mia_auc": max(aucs) if aucs else None,
        "mia_tpr_at_1pct_fpr": max(tprs) if tprs else None,
        "epsilon_lower_bound": (record.get("audit") or {}).get("max_lower_bound"),
        "dp_audit_violation": (record.get("audit") or {}).get("violation"),
        "replayed_pii": None if replay is None else replay["replayed"] + replay["replayed_in_context"],
        "verdict": record.get("verdict"),
        "failing_checks": [c for c in record.get("checks", []) if not c["passed"]],
    }


def utility_of(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    if metrics is None:
        return None
    return metrics["tstr_ratio"] if metric == "tstr" else metrics["fidelity"]


def blocker_text(check: Mapping[str, Any]) -> str:
    """``max_mia_auc = 0.71 (limit <= 0.6)``, or ``max_epsilon: n/a (trained without DP: no guarantee)``."""
    if check["value"] is None:
        return f"{check['name']}: n/a ({check['note']})"
    return f"{check['name']} = {fmt(check['value'])} (limit {check['op']} {fmt(check['threshold'])})"


def build_record(*, rows: Sequence[dict[str, Any]], config: Mapping[str, Any], policy: Mapping[str, Any] | None,
                 utility: str, wall_seconds: float) -> dict[str, Any]:
    """Assemble ``sweep.json`` from the point rows.

    Args:
        rows: per point ``{"id", "settings", "dp", "state", "run_dir", "error", "seconds",
            "metrics"}``; ``metrics`` is ``point_metrics`` of its report, or None
            when the point has no report.
        config: ``SweepConfig.to_dict()``.
        policy: ``Policy.to_dict()`` or None.
        utility: ``tstr`` or ``fidelity``.
        wall_seconds: wall time of this invocation of the sweep.
    """
    rows = [dict(r) for r in rows]
    for r in rows:
        r["utility"] = utility_of(r["metrics"], utility)
    utilities = [r["utility"] for r in rows]
    costs = {"epsilon": [r["metrics"]["epsilon"] if r["metrics"] else None for r in rows],
             "attack": [r["metrics"]["mia_auc"] if r["metrics"] else None for r in rows]}
    frontier = {name: [rows[i]["id"] for i in pareto_front(c, utilities)] for name, c in costs.items()}
    for r in rows:
        r["frontier"] = [name for name, ids in frontier.items() if r["id"] in ids]
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": dict(config),
        "policy": dict(policy) if policy else None,
        "utility": {"metric": utility, "label": UTILITY_LABELS[utility]},
        "points": rows,
        "frontier": frontier,
        "choice": choose(rows, costs["epsilon"], policy),
        "outside_guarantee": [fact("sweep_selection").sentence],
        "counts": {"total": len(rows), "done": sum(r["state"] == "done" for r in rows),
                   "failed": sum(r["state"] == "failed" for r in rows)},
        "time": {"wall_seconds": round(wall_seconds, 1),
                 "point_seconds": round(sum(r["seconds"] or 0.0 for r in rows), 1)},
    }


def choose(rows: Sequence[Mapping[str, Any]], epsilons: Sequence[float | None],
           policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """The chosen setting: the best utility among points that pass ``policy``.

    Returns ``{"id": str | None, "text": str, "blockers": {point id: [str]}}``:
    ``blockers`` lists, for every point that does not pass, the failed checks (or
    why it has no report).
    """
    if policy is None:
        return {"id": None, "text": "No policy given: run the sweep with --policy to choose a setting.",
                "blockers": {}}
    passing = [r["state"] == "done" and r["metrics"]["verdict"] == "pass" for r in rows]
    blockers = {}
    for r, ok in zip(rows, passing):
        if ok:
            continue
        if r["state"] != "done":
            err = r["error"] or {"type": "not run", "message": ""}
            blockers[r["id"]] = [f"point did not finish: {err['type']} {err['message']}".rstrip()]
        else:
            blockers[r["id"]] = [blocker_text(c) for c in r["metrics"]["failing_checks"]]
    best = best_point([r["utility"] for r in rows], epsilons, passing)
    name = policy["name"]
    if best is not None:
        r = rows[best]
        eps = "no DP guarantee" if r["metrics"]["epsilon"] is None else f"ε = {fmt_epsilon(r['metrics']['epsilon'])}"
        text = (f"{r['id']}: the best utility ({fmt(r['utility'])}, {eps}) among the {sum(passing)} "
                f"point(s) of {len(rows)} that pass policy {name}.")
        return {"id": r["id"], "text": text, "blockers": blockers}
    if any(passing):
        text = f"Points pass policy {name}, but none has a utility value to rank them by."
    else:
        text = f"No point passes policy {name}."
    return {"id": None, "text": text, "blockers": blockers}
