"""Policies: thresholds from YAML, evaluated against a report record.

A policy file is a flat YAML mapping from policy keys (``reports.checks.REGISTRY``)
to numeric thresholds, e.g.::

    max_epsilon: 8
    max_mia_auc: 0.6
    require_dp_verified: true

Any subset of the keys may be given; an unknown key, a non-numeric or
out-of-range threshold is a ``PolicyError``. A flag key (``require_dp``,
``require_dp_verified``) takes ``true`` or ``false`` instead. A check whose audit did not run fails, except
that a model-free audit leaves out the checks that need a model
(:func:`not_applicable`), and the report names them. ``evaluate`` lists failing checks first, then passing ones, each group
in registry order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from reports.checks import REGISTRY, is_model_free
from reports.errors import PolicyError

_PRESET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Policy:
    """A named set of thresholds (policy key -> number)."""

    name: str
    thresholds: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": dict(self.thresholds)}


@dataclass(frozen=True)
class Check:
    """One evaluated policy check, as stored in ``report.json`` ``checks``."""

    name: str
    label: str
    op: str
    value: float | None
    threshold: float
    passed: bool
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def policy_from_mapping(data: Any, *, name: str) -> Policy:
    """Validate a mapping of thresholds into a ``Policy``.

    Raises:
        PolicyError: not a mapping, empty, unknown key, or a threshold that is not
            a finite number inside the key's range.
    """
    if not isinstance(data, Mapping):
        raise PolicyError(f"policy {name!r}: expected a mapping of thresholds, got {type(data).__name__}")
    if not data:
        raise PolicyError(f"policy {name!r}: no thresholds given")
    unknown = sorted(str(k) for k in data if k not in REGISTRY)
    if unknown:
        raise PolicyError(
            f"policy {name!r}: unknown key(s) {', '.join(unknown)} (known: {', '.join(REGISTRY)})"
        )
    thresholds: dict[str, float] = {}
    for key in REGISTRY:
        if key not in data:
            continue
        raw = data[key]
        spec = REGISTRY[key]
        if spec.flag:
            if not isinstance(raw, bool):
                raise PolicyError(f"policy {name!r}: {key} must be true or false")
            if raw:
                thresholds[key] = 1.0
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not _finite(raw):
            raise PolicyError(f"policy {name!r}: {key} must be a finite number")
        if not spec.lo <= raw <= spec.hi:
            raise PolicyError(f"policy {name!r}: {key} must be in [{spec.lo:g}, {spec.hi:g}]")
        thresholds[key] = float(raw)
    return Policy(name=name, thresholds=thresholds)


def _finite(number: int | float) -> bool:
    """A finite number; an int too large for a float is not one (thresholds are floats)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def load_policy(name_or_path: str | Path, *, presets_dir: str | Path | None = None) -> Policy:
    """Load a policy from a YAML file, or a preset by name from ``presets_dir``.

    A bare name (``internal``) that is not an existing file is looked up as
    ``presets_dir/<name>.yaml``; ``auditor.policies.load_policy`` passes the
    directory of the built-in presets.

    Raises:
        PolicyError: unknown preset, unreadable file, invalid YAML or content.
    """
    path = Path(name_or_path)
    name = path.stem
    if not path.is_file():
        text = str(name_or_path)
        if not _PRESET_NAME.match(text) or presets_dir is None:
            raise PolicyError(f"policy file not found: {text}")
        path = Path(presets_dir) / f"{text}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in Path(presets_dir).glob("*.yaml"))
            raise PolicyError(f"unknown policy {text!r} (presets: {', '.join(known)}; or give a YAML path)")
        name = text
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy {path}: {exc.__class__.__name__}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {path}: invalid YAML") from exc
    except ValueError as exc:  # an integer too long to convert (Python caps int parsing at 4,300 digits)
        raise PolicyError(f"policy {path}: a number is too long to read") from exc
    return policy_from_mapping(data, name=name)


def not_applicable(record: Mapping[str, Any], policy: Policy) -> list[dict[str, str]]:
    """The checks of ``policy`` that a model-free record cannot be judged on, with the reason.

    Empty for a record of a trained model.
    """
    if not is_model_free(record):
        return []
    return [{"name": key, "label": REGISTRY[key].label,
             "reason": "needs a trained model; not applicable to a model-free audit"}
            for key in policy.thresholds if REGISTRY[key].needs_model]


def evaluate(record: Mapping[str, Any], policy: Policy) -> list[Check]:
    """Evaluate every applicable threshold of ``policy`` on ``record``; failing checks first."""
    checks = []
    skipped = {c["name"] for c in not_applicable(record, policy)}
    for key, threshold in policy.thresholds.items():
        if key in skipped:
            continue
        spec = REGISTRY[key]
        value = spec.value(record)
        passed = spec.passes(value, threshold)
        note = spec.missing(record) if value is None else None
        checks.append(Check(name=key, label=spec.label, op=spec.op, value=value,
                            threshold=threshold, passed=passed, note=note))
    return sorted(checks, key=lambda c: c.passed)


def verdict(checks: list[Check] | None) -> str:
    """``no-policy`` without a policy, else ``pass`` when there are checks and every one passed, else ``fail``.

    A policy none of whose checks applies (model-free audit) does not pass: nothing was checked.
    """
    if checks is None:
        return "no-policy"
    return "pass" if checks and all(c.passed for c in checks) else "fail"
