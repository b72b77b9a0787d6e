"""The registry of policy checks: one small entry per policy key.

Each entry says where its value lives in the report record, which way the
threshold points, and the range a threshold may take. A policy (YAML) picks any
subset of the keys and gives the thresholds; ``reports.policy`` evaluates them.

A value of ``None`` means the audit behind it did not run or could not compute
it; such a check fails (a missing audit never passes a policy). The exception
is a model-free audit (synthetic data from any generator, no model, no DP
claim): checks marked ``needs_model`` are not applicable there, and the report
says the verdict does not rest on them. A policy that needs a DP claim says so
with the flag key ``require_dp: true``, which fails without one.
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
        needs_model: only a trained model can provide the value; not applicable
            to a model-free audit.
        flag: a yes/no key (``true`` in the policy checks ``value >= 1``; ``false`` skips it).
    """

    key: str
    label: str
    op: str
    value: Callable[[Record], float | None]
    missing: Callable[[Record], str]
    lo: float = 0.0
    hi: float = float("inf")
    needs_model: bool = False
    flag: bool = False

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
    if _get(record, "privacy", "dp") is False or _get(record, "privacy", "reproducible_noise"):
        return None
    return _get(record, "privacy", "epsilon")


def _epsilon_missing(record: Record) -> str:
    if "privacy" not in record:
        return "no DP training record (model/privacy.json absent)"
    if record["privacy"].get("dp") is False:
        return "trained without DP: no guarantee"
    if record["privacy"].get("reproducible_noise"):
        return "trained with --reproducible-noise (privacy.json: reproducible_noise): no guarantee"
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


def is_model_free(record: Record) -> bool:
    """Whether the record is of a model-free audit (``auditor audit --synthetic ... --train ...``)."""
    return _get(record, "reproducibility", "config", "mode") == "model-free"


def _dp_claimed(record: Record) -> float:
    privacy = record.get("privacy")
    return 1.0 if isinstance(privacy, Mapping) and privacy.get("dp") and privacy.get("epsilon") is not None else 0.0


def _excess(*path: str, lower: bool = False) -> Callable[[Record], float | None]:
    """Training records singled out beyond the holdout control (``attacks.excess``), floored at 0.

    ``lower``: the one-sided lower confidence bound instead of the estimate.
    """

    def value(record: Record) -> float | None:
        block = _get(record, *path)
        if not isinstance(block, Mapping):
            return None
        return block["excess_lower"] if lower else max(0.0, block["excess"])

    return value


def _replay_control_missing(record: Record) -> str:
    if "pii" not in record:
        return "the PII scan did not run"
    return "no holdout control was scanned (give --holdout)"


def _validity(record: Record) -> float | None:
    value = _get(record, "quality", "validity")
    return value if value is not None else _get(record, "generation", "validity")


register(CheckSpec(
    key="require_dp", label="a DP guarantee is claimed (1 = yes)", op=">=", hi=1.0, flag=True,
    value=_dp_claimed, missing=_epsilon_missing,
))
register(CheckSpec(
    key="max_epsilon", label="claimed ε (DP guarantee)", op="<=", needs_model=True,
    value=_epsilon, missing=_epsilon_missing,
))
register(CheckSpec(
    key="max_delta", label="δ (DP guarantee)", op="<=", hi=1.0, needs_model=True,
    value=lambda r: _get(r, "privacy", "delta") if _get(r, "privacy", "dp") is not False else None,
    missing=_epsilon_missing,
))


def _dp_verified(record: Record) -> float | None:
    """1 when ``auditor verify-dp`` ran and its lower bound stayed at or below the claim, else 0."""
    check = _get(record, "dp_verify")
    if check is None:
        return None
    return 0.0 if check["violation"] else 1.0


register(CheckSpec(
    key="require_dp_verified", label="DP-SGD implementation verified (white-box ε lower bound ≤ claim)", op=">=",
    hi=1.0, flag=True, needs_model=True, value=_dp_verified,
    missing=lambda r: "auditor verify-dp did not run (audit/dp_verify.json absent)",
))
register(CheckSpec(
    key="max_canary_exposure", label="highest exposure of a canary inserted once (bits)", op="<=",
    needs_model=True,
    value=lambda r: _get(r, "canaries", "max_exposure_single_copy"),
    missing=lambda r: ("the canary exposure audit did not run" if "canaries" not in r
                       else "no canary inserted exactly once was scored (repetitions lack 1?)"),
))
register(CheckSpec(
    key="max_duplicated_records", label="training records whose learned values occur more than once", op="<=",
    value=lambda r: _get(r, "duplicates", "learned", "duplicated_records"),
    missing=_section_missing("duplicates", "the duplicate count"),
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
    key="max_excess_replayed_pii",
    label="training records whose unique PII value reappears, beyond the holdout control (95% lower bound)",
    op="<=", value=_excess("pii", "replay_vs_control", "unique", lower=True), missing=_replay_control_missing,
))
register(CheckSpec(
    key="max_replayed_in_context",
    label="training records re-identified in context (two of their values in one synthetic row), beyond the holdout control",
    op="<=", value=_excess("pii", "replay_vs_control", "in_context"), missing=_replay_control_missing,
))
register(CheckSpec(
    key="max_excess_exact_copies", label="training records copied exactly, beyond the holdout control", op="<=",
    value=_excess("distance", "copies", "exact"),
    missing=_section_missing("distance", "the distance audit"),
))
register(CheckSpec(
    key="max_excess_near_copies",
    label="training records copied on the learned columns, beyond the holdout control", op="<=",
    value=_excess("distance", "copies", "near"),
    missing=_section_missing("distance", "the distance audit"),
))
register(CheckSpec(
    key="max_dcr_train_share", label="share of synthetic rows closer to train than to holdout", op="<=",
    hi=1.0,
    value=lambda r: _get(r, "distance", "dcr_train_share"),
    missing=_section_missing("distance", "the distance audit"),
))
def _risk_low(*path: str) -> Callable[[Record], float | None]:
    """The lower end of a risk's confidence interval: the check fails only on evidence of risk."""
    def value(record: Record) -> float | None:
        ci = _get(record, "anonymity", *path)
        return ci[0] if ci else None

    return value


def _anonymity_missing(what: str) -> Callable[[Record], str]:
    def missing(record: Record) -> str:
        if "anonymity" not in record:
            return "the anonymity audit did not run (it needs a holdout control)"
        return f"the {what} attack could not be measured (too few columns, or the control always succeeds)"

    return missing


register(CheckSpec(
    key="max_singling_out_risk", label="singling-out risk beyond the control (lower 95% bound)", op="<=", hi=1.0,
    value=_risk_low("singling_out", "risk_ci"), missing=_anonymity_missing("singling-out"),
))
register(CheckSpec(
    key="max_linkability_risk", label="linkability risk beyond the control (lower 95% bound)", op="<=", hi=1.0,
    value=_risk_low("linkability", "risk_ci"), missing=_anonymity_missing("linkability"),
))
register(CheckSpec(
    key="max_inference_risk", label="attribute-inference risk beyond the control (worst column, lower bound)",
    op="<=", hi=1.0,
    value=_risk_low("inference", "worst_risk_ci"), missing=_anonymity_missing("attribute-inference"),
))
register(CheckSpec(
    key="min_validity", label="share of generated rows that are valid", op=">=", hi=1.0, needs_model=True,
    value=_validity,
    missing=lambda r: "no validity recorded (generation.json / quality audit absent)",
))
register(CheckSpec(
    key="min_fidelity", label="fidelity score", op=">=", hi=1.0,
    value=lambda r: _get(r, "quality", "fidelity"),
    missing=_section_missing("quality", "the fidelity audit"),
))
