"""The sweep's one typed config: a grid of training settings plus what every point shares.

Loaded from a YAML file (``auditor sweep --config FILE``), from flags, or both
(flags given on the command line win over the file). Saved as
``DIR/sweep_config.json``; a re-run of the same sweep must share everything
but the grid, the policy, the utility metric and the number of jobs.

YAML shape (every key optional but ``data`` and ``grid``)::

    data: auditor/data/demo.csv          # or {path, schema, holdout, domains}
    schema: auditor/data/demo_schema.yaml
    grid: {noise_multiplier: [0.6, 1.0, 2.0], max_grad_norm: [0.5, 1.0]}
    no_dp_baseline: true
    train: {model: small, epochs: 8, lr: 0.005, seed: 0}   # TrainConfig fields
    canaries: {repetitions: [1, 4], audit_canaries: 20}   # CanaryConfig fields
    generate: {num_records: 600, temperature: 1.0, top_p: 1.0, seed: 0, scrub_pii: replayed}
    audit: {pii_ner: false, reference: true, max_members: 500}
    policy: internal
    utility: tstr
    jobs: 1
    threads: 2
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from auditor.bounds import AUDIT, JOBS, NUM_RECORDS, TRAIN, check_fields
from auditor.errors import UserError
from auditor.generate import SampleConfig
from auditor.pipeline import DataConfig
from auditor.schema import yaml_problem
from auditor.train import TrainConfig
from canaries.config import CanaryConfig

# Grid axes: TrainConfig fields a sweep may vary, with the type of their values.
AXES: dict[str, type] = {"epsilon": float, "noise_multiplier": float, "max_grad_norm": float, "epochs": float,
                         "batch_size": int, "lr": float, "model": str}
DP_AXES = ("epsilon", "noise_multiplier", "max_grad_norm")  # meaningless without DP: the baseline drops them
UTILITIES = ("tstr", "fidelity")
# Train settings that do not change a point's results, or that each point sets itself.
_FREE_TRAIN_KEYS = {"dp", "epsilon", "noise_multiplier", "device", "checkpoint_every"}


@dataclass
class GenerateSettings:
    """How many rows each point generates and how it samples them."""

    num_records: int | None = None  # None: as many as the input records
    temperature: float = 1.0
    top_p: float = 1.0
    magnitude_min_p: float = 0.0
    seed: int = 0
    scrub_pii: str | None = None  # "replayed": drop rows replaying training PII (outside the guarantee)

    def __post_init__(self):
        SampleConfig(temperature=self.temperature, top_p=self.top_p, magnitude_min_p=self.magnitude_min_p,
                     seed=self.seed)
        if self.scrub_pii not in (None, "replayed"):
            raise UserError("sweep: generate.scrub_pii must be replayed or null")
        if self.num_records is not None and not NUM_RECORDS.admits(self.num_records):
            raise UserError(f"sweep: --num-records must be {NUM_RECORDS.describe()}, got {self.num_records!r}")


@dataclass
class AuditSettings:
    """The audit settings every point shares (see ``auditor.audits.AuditConfig``)."""

    pii_ner: bool = True
    reference: bool = True
    max_members: int = 500

    def __post_init__(self):
        check_fields(self, {"max_members": AUDIT["max_members"]})


@dataclass
class SweepConfig:
    """A grid of training settings over one dataset; every point shares data split, canary layout and seed.

    Attributes:
        grid: axis (one of ``AXES``) -> the values to try; points are the Cartesian product.
        data: the input records and how they are split and described.
        train: training settings every point shares; ``train.seed`` (drawn once
            when not given) fixes the split and the canary layout for all points.
        canaries: canary settings (the same schedule in every point; secrets are secret randomness).
        no_dp_baseline: add points trained without DP, one per combination of the
            axes that do not concern DP (clipping and noise are dropped).
        policy: a policy preset or YAML file; the sweep then names the best passing point.
        utility: the utility metric of the frontier and the choice: ``tstr`` (TSTR
            ratio, ``quality.tstr.ratio``) or ``fidelity`` (``quality.fidelity``).
        jobs: points run at once; None: ``default_jobs()``.
        threads: torch / OpenMP threads of each point's process; None:
            ``threads_per_job()``. On a busy machine 1 can be far faster: an
            OpenMP thread that waits for a descheduled sibling spins.
    """

    grid: dict[str, tuple] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    canaries: CanaryConfig = field(default_factory=CanaryConfig)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    no_dp_baseline: bool = False
    policy: str | None = None
    utility: str = "tstr"
    jobs: int | None = None
    threads: int | None = None

    def __post_init__(self):
        self.grid = normalize_grid(self.grid)
        if self.utility not in UTILITIES:
            raise UserError(f"sweep: utility must be one of {', '.join(UTILITIES)}, not {self.utility!r}")
        for name in ("jobs", "threads"):
            value = getattr(self, name)
            if value is not None and not JOBS.admits(value):
                raise UserError(f"sweep: --{name} must be {JOBS.describe()}, got {value!r}")
        if self.data.path is None:
            raise UserError("sweep: no input data (give DATA or `data:` in the YAML file)")

    def to_dict(self) -> dict[str, Any]:
        return {"grid": {k: list(v) for k, v in self.grid.items()}, "data": asdict(self.data),
                "train": asdict(self.train), "canaries": self.canaries.to_dict(),
                "generate": asdict(self.generate), "audit": asdict(self.audit),
                "no_dp_baseline": self.no_dp_baseline, "policy": self.policy, "utility": self.utility,
                "jobs": self.jobs, "threads": self.threads}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SweepConfig":
        """Build from a mapping shaped like the YAML file (``data`` may be a path string)."""
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in fields(cls)} - {"schema"})
        if unknown:
            raise UserError(f"sweep config: unknown key(s) {', '.join(unknown)}")
        source = data.get("data")
        source = {"path": source} if isinstance(source, (str, os.PathLike)) else dict(source or {})
        if data.get("schema") is not None:
            source["schema"] = data["schema"]
        train = dict(data.get("train") or {})
        if train.get("noise_multiplier") is not None and "epsilon" not in train:
            train["epsilon"] = None  # a fixed noise multiplier replaces the default target epsilon
        try:
            return cls(
                grid=data.get("grid") or {},
                data=_typed(DataConfig, source, "data"),
                train=_typed(TrainConfig, train, "train"),
                canaries=CanaryConfig.from_dict(data.get("canaries") or {}),
                generate=_typed(GenerateSettings, data.get("generate") or {}, "generate"),
                audit=_typed(AuditSettings, data.get("audit") or {}, "audit"),
                no_dp_baseline=bool(data.get("no_dp_baseline", False)),
                policy=data.get("policy"), utility=data.get("utility") or "tstr", jobs=data.get("jobs"),
                threads=data.get("threads"),
            )
        except UserError:
            raise
        except (TypeError, ValueError) as exc:
            raise UserError(f"sweep config: {exc}") from None

    def shared(self, free_axes: set[str] = frozenset()) -> dict[str, Any]:
        """What every point shares: two runs of one sweep must agree on all of it.

        ``free_axes`` are train settings set by the points (the axes of either grid).
        """
        d = self.to_dict()
        train = {k: v for k, v in d["train"].items() if k not in _FREE_TRAIN_KEYS | set(free_axes)}
        return {"data": d["data"], "train": train, "canaries": d["canaries"], "generate": d["generate"],
                "audit": d["audit"]}


def _typed(cls, values: Mapping[str, Any], section: str):
    if not isinstance(values, Mapping):
        raise UserError(f"sweep config: {section} must be a mapping")
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise UserError(f"sweep config: unknown {section} key(s) {', '.join(unknown)}")
    return cls(**values)


def normalize_grid(grid: Mapping[str, Any]) -> dict[str, tuple]:
    """Axis -> tuple of typed, distinct values, in ``AXES`` order; a scalar is a one-value axis.

    Raises:
        UserError: unknown axis, an empty axis, a value of the wrong type, a
            repeated value, or both ``epsilon`` and ``noise_multiplier``.
    """
    if not isinstance(grid, Mapping):
        raise UserError("sweep: grid must be a mapping of axis -> values")
    unknown = sorted(set(grid) - set(AXES))
    if unknown:
        raise UserError(f"sweep: unknown grid axis {', '.join(unknown)} (axes: {', '.join(AXES)})")
    if "epsilon" in grid and "noise_multiplier" in grid:
        raise UserError("sweep: give a grid of epsilon or of noise_multiplier, not both")
    out: dict[str, tuple] = {}
    for axis in AXES:
        if axis not in grid:
            continue
        raw = grid[axis]
        values = list(raw) if isinstance(raw, (list, tuple)) else [raw]
        if not values:
            raise UserError(f"sweep: grid axis {axis} has no values")
        try:
            typed = tuple(_axis_value(axis, v) for v in values)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"sweep: grid axis {axis} (--{axis.replace('_', '-')}) needs {AXES[axis].__name__} values") from None
        bound = TRAIN.get(axis)
        for v in typed:
            if bound is not None and not bound.admits(v):
                raise UserError(f"sweep: grid axis {axis} (--{axis.replace('_', '-')}): each value must be "
                                f"{bound.describe()}, got {v!r}")
        if len(set(typed)) != len(typed):
            raise UserError(f"sweep: grid axis {axis} repeats a value")
        out[axis] = typed
    return out


def _axis_value(axis: str, value: Any):
    kind = AXES[axis]
    if isinstance(value, bool) or (kind is not str and isinstance(value, str) and not value.strip()):
        raise TypeError(axis)
    if kind is int and float(value) != int(float(value)):
        raise ValueError(axis)
    return kind(float(value)) if kind is int else kind(value)


def parse_list(text: str, axis: str) -> tuple:
    """``"0.6,1.0, 2"`` -> the typed values of ``axis`` (a comma-separated flag)."""
    return normalize_grid({axis: [v.strip() for v in text.split(",") if v.strip()]})[axis]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a sweep YAML file; relative data and schema paths resolve against the file.

    Raises:
        UserError: unreadable file, invalid YAML, or not a mapping.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"sweep config {path}: cannot read ({exc.__class__.__name__})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"sweep config {path}: {yaml_problem(exc)}") from None
    except ValueError:  # an integer too long to convert (Python caps int parsing at 4,300 digits)
        raise UserError(f"sweep config {path}: a number is too long") from None
    if not isinstance(data, Mapping):
        raise UserError(f"sweep config {path}: expected a mapping")
    data = copy.deepcopy(dict(data))
    if isinstance(data.get("data"), Mapping):
        data["data"] = dict(data["data"])
        for key in ("path", "schema"):
            if data["data"].get(key):
                data["data"][key] = _beside(path, data["data"][key])
    elif data.get("data"):
        data["data"] = _beside(path, data["data"])
    if data.get("schema"):
        data["schema"] = _beside(path, data["schema"])
    if data.get("policy") and (path.parent / str(data["policy"])).is_file():
        data["policy"] = _beside(path, data["policy"])
    return data


def _beside(config: Path, value: str) -> str:
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else (config.parent / p))


def default_jobs(n_points: int, *, cores: int | None = None) -> int:
    """Points at once when ``--jobs`` is not given: one per two cores (so 1 on 2 cores), at most ``n_points``."""
    cores = cores or available_cores()
    return max(1, min(n_points, cores // 2))


def threads_per_job(jobs: int, *, cores: int | None = None) -> int:
    """Torch / OpenMP threads of each point's process: ``max(1, cores // jobs)``."""
    return max(1, (cores or available_cores()) // jobs)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
