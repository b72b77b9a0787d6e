"""The registry of policy checks: one small entry per policy key.

Each entry says where its value lives in the report record, which way the
threshold points, and the range a threshold may take. A policy (YAML) picks any
subset of the keys and gives the thresholds; ``reports.policy`` evaluates them.

A value of ``None`` means the audit behind it did not run or could not compute
it; such a check fails (a missing audit never passes a policy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Record = Mapping[str, Any]


@dataclass(frozen=True)
class CheckSpec:
    """One policy key.

    Attributes:
        key: the policy key, e.g. ``max_epsilon``.
        label: what the value is, in words, for the report.
        op: ``"<="`` (value must not exceed the threshold) or ``">="``.
        value: record -> the checked value, or ``None`` when not available.
        missing: why the value is absent, given the record (for the report).
        lo, hi: the range a threshold may take (inclusive).
    """

    key: str
    label: str
    op: str
    value: Callable[[Record], float | None]
    missing: Callable[[Record], str]
    lo: float = 0.0
    hi: float = float("inf")

    def passes(self, value: float | None, threshold: float) -> bool:
        if value is None:
            return False
        return value <= threshold if self.op == "<=" else value >= threshold


REGISTRY: dict[str, CheckSpec] = {}


def register(spec: CheckSpec) -> CheckSpec:
    if spec.key in REGISTRY:
        raise ValueError(f"check {spec.key!r} is already registered")
    if spec.op not in ("<=", ">="):
        raise ValueError(f"check {spec.key!r}: op must be '<=' or '>=', got {spec.op!r}")
    REGISTRY[spec.key] = spec
    return spec


def _section_missing(section: str, what: str) -> Callable[[Record], str]:
    def missing(record: Record) -> str:
        if section not in record:
            return f"{what} did not run"
        return f"{what} could not compute this value"

    return missing


def _get(record: Record, *path: str) -> Any:
    node: Any = record
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _epsilon(record: Record) -> float | None:
    if _get(record, "privacy", "dp") is False:
        return None
    return _get(record, "privacy", "epsilon")


def _epsilon_missing(record: Record) -> str:
    if "privacy" not in record:
        return "no DP training record (model/privacy.json absent)"
    if record["privacy"].get("dp") is False:
        return "trained without DP: no guarantee"
    return "epsilon was not computed"


def mia_values(record: Record, metric: Callable[[Mapping[str, Any]], float | None]) -> list[float]:
    """``metric`` of every record-level membership attack in the record.

    Record-level attacks are the model-based signals (``mia.signals``) and the
    distance-based attack on the synthetic data (``distance.mia``). Canary-level
    signals are reported but gated by the exposure check instead: with a few
    dozen canaries their AUC is too noisy for a threshold.
    """
    attacks = list((_get(record, "mia", "signals") or {}).values())
    if _get(record, "distance", "mia") is not None:
        attacks.append(record["distance"]["mia"])
    values = (metric(a) for a in attacks)
    return [v for v in values if v is not None]


def _max_or_none(values: list[float]) -> float | None:
    return max(values) if values else None


def _mia_missing(record: Record) -> str:
    if "mia" not in record and _get(record, "distance", "mia") is None:
        return "no membership-inference audit ran"
    return "no attack could compute this value (too few non-members?)"


def _replayed_pii(record: Record) -> float | None:
    replay = _get(record, "pii", "replay")
    if replay is None:
        return None
    return replay["replayed"] + replay["replayed_in_context"]


def _validity(record: Record) -> float | None:
    value = _get(record, "quality", "validity")
    return value if value is not None else _get(record, "generation", "validity")


register(CheckSpec(
    key="max_epsilon", label="claimed ε (DP guarantee)", op="<=",
    value=_epsilon, missing=_epsilon_missing,
))
register(CheckSpec(
    key="max_delta", label="δ (DP guarantee)", op="<=", hi=1.0,
    value=lambda r: _get(r, "privacy", "delta") if _get(r, "privacy", "dp") is not False else None,
    missing=_epsilon_missing,
))
register(CheckSpec(
    key="max_canary_exposure", label="highest canary exposure (bits)", op="<=",
    value=lambda r: _get(r, "canaries", "max_exposure"),
    missing=_section_missing("canaries", "the canary exposure audit"),
))
register(CheckSpec(
    key="max_mia_auc", label="membership-inference AUC (strongest attack)", op="<=", lo=0.5, hi=1.0,
    value=lambda r: _max_or_none(mia_values(r, lambda a: a.get("auc"))),
    missing=_mia_missing,
))
register(CheckSpec(
    key="max_mia_tpr_at_1pct_fpr", label="membership-inference TPR at 1% FPR (strongest attack)", op="<=",
    hi=1.0,
    value=lambda r: _max_or_none(mia_values(r, lambda a: (a.get("tpr_at_fpr") or {}).get("0.01"))),
    missing=_mia_missing,
))
register(CheckSpec(
    key="max_replayed_pii", label="PII values replayed from the training data", op="<=",
    value=_replayed_pii,
    missing=_section_missing("pii", "the PII scan"),
))
register(CheckSpec(
    key="max_dcr_train_share", label="share of synthetic rows closer to train than to holdout", op="<=",
    hi=1.0,
    value=lambda r: _get(r, "distance", "dcr_train_share"),
    missing=_section_missing("distance", "the distance audit"),
))
register(CheckSpec(
    key="min_validity", label="share of generated rows that are valid", op=">=", hi=1.0,
    value=_validity,
    missing=lambda r: "no validity recorded (generation.json / quality audit absent)",
))
register(CheckSpec(
    key="min_fidelity", label="fidelity score", op=">=", hi=1.0,
    value=lambda r: _get(r, "quality", "fidelity"),
    missing=_section_missing("quality", "the fidelity audit"),
))
