"""What every rendering shows first: number formatting and the headline numbers.

Shared by the HTML and Markdown renderings so both say the same thing in the
same words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reports.checks import mia_values

VERDICT_TEXT = {"pass": "PASS", "fail": "FAIL", "no-policy": "NO POLICY"}


def fmt(value: Any) -> str:
    """A number as the reports print it: 4 significant digits, ``n/a`` for ``None``.

    Integers print in full; booleans as yes/no; anything else with ``str``.
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def fmt_epsilon(epsilon: float | None) -> str:
    """epsilon as every output prints it (CLI, progress bar, summaries, reports, sweeps,
    ``privacy.json``'s guarantee sentence): 4 significant digits, ``n/a`` for ``None``.

    ``7.993586`` -> ``7.994``; ``8.0`` -> ``8``; ``0.51234`` -> ``0.5123``; ``12.3456`` -> ``12.35``.
    A run without DP has no epsilon: say so in words rather than print ``n/a``.
    """
    if epsilon is None:
        return "n/a"
    if not math.isfinite(epsilon):
        return str(epsilon)
    return f"{epsilon:.4g}"


def fmt_pct(value: float | None) -> str:
    """A share in [0, 1] as a percentage with up to 2 decimals (``0.0123`` -> ``1.23%``)."""
    if value is None:
        return "n/a"
    return f"{100 * value:.4g}%"


@dataclass(frozen=True)
class Headline:
    """One number of the summary box: label, formatted value and detail, one-line meaning, policy state."""

    key: str
    label: str
    value: str
    detail: str
    meaning: str
    passed: bool | None


def _check_state(record: Mapping[str, Any], *names: str) -> bool | None:
    states = [c["passed"] for c in record.get("checks", []) if c["name"] in names]
    return all(states) if states else None


def headline(record: Mapping[str, Any]) -> list[Headline]:
    """The three to five numbers that matter, for the sections that ran."""
    out: list[Headline] = []
    privacy = record.get("privacy")
    if privacy is not None:
        if privacy["dp"]:
            value, detail = f"ε = {fmt_epsilon(privacy['epsilon'])}", f"δ = {fmt(privacy['delta'])}"
            meaning = "proven bound on what the model reveals about any one record (smaller is safer)"
        else:
            value, detail = "none", "trained without DP"
            meaning = "no mathematical privacy guarantee"
        out.append(Headline("epsilon", "DP guarantee", value, detail, meaning,
                            _check_state(record, "max_epsilon", "max_delta")))
    canaries = record.get("canaries")
    if canaries is not None:
        out.append(Headline(
            "exposure", "Canary exposure", f"{fmt(canaries.get('max_exposure_single_copy'))} bits",
            f"inserted once, of {fmt(canaries['log2_space'])} possible; {fmt(canaries['max_exposure'])} with repeats",
            "how strongly planted secrets were memorized (0 = not at all, maximum = fully)",
            _check_state(record, "max_canary_exposure")))
    aucs = mia_values(record, lambda a: a.get("auc"))
    if aucs:
        tprs = mia_values(record, lambda a: (a.get("tpr_at_fpr") or {}).get("0.01"))
        detail = f"{fmt_pct(max(tprs))} of members found at 1% false alarms" if tprs else ""
        out.append(Headline(
            "mia", "Membership inference", f"AUC {fmt(max(aucs))}", detail,
            "can an attacker tell who was in the training data? (AUC 0.5 = no better than a coin)",
            _check_state(record, "max_mia_auc", "max_mia_tpr_at_1pct_fpr")))
    pii = record.get("pii")
    if pii is not None:
        replay = pii["replay"]
        if replay is None:
            value, detail = "n/a", "no training data was scanned"
        else:
            value = fmt(replay["replayed"] + replay["replayed_in_context"])
            detail = f"{fmt(replay['replayed_in_context'])} in their original context"
            control = pii.get("replay_vs_control")
            if control:
                detail += (f"; beyond the holdout control: {fmt(control['unique']['excess'])} records by a unique "
                           f"value, {fmt(control['in_context']['excess'])} in context")
        out.append(Headline(
            "pii", "Replayed PII", value, detail,
            "personal values from the training data that reappear in the synthetic data",
            _check_state(record, "max_replayed_pii", "max_excess_replayed_pii", "max_replayed_in_context")))
    quality = record.get("quality")
    if quality is not None:
        out.append(Headline(
            "fidelity", "Fidelity", fmt(quality["fidelity"]),
            f"TSTR ratio {fmt(quality['tstr']['ratio'])}" if quality.get("tstr") else "",
            "how closely the synthetic data matches the real data (1 = identical distributions)",
            _check_state(record, "min_fidelity")))
    return out


def failing(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The failed checks, in record order."""
    return [c for c in record.get("checks", []) if not c["passed"]]
