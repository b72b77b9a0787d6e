"""The sweep's config: a ``RunConfig`` (every point shares it) plus a grid of training settings.

Loaded from a YAML file (``auditor sweep --config FILE``), from flags, or both
(flags given on the command line win over the file). Saved as
``DIR/sweep_config.json``; a re-run of the same sweep must share everything
but the grid, the policy, the utility metric and the number of jobs.

YAML shape: the ``RunConfig`` file of ``auditor.config`` (data, schema, train,
canaries, generate, audit, policy) plus the sweep's own keys::

    data: auditor/data/demo.csv
    grid: {noise_multiplier: [0.6, 1.0, 2.0], max_grad_norm: [0.5, 1.0]}
    no_dp_baseline: true
    train: {model: small, epochs: 8, lr: 0.005, seed: 0}
    policy: internal
    utility: tstr
    jobs: 1
    threads: 2
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from auditor.bounds import JOBS, TRAIN
from auditor.config import RunConfig, from_mapping
from auditor.errors import UserError

# Grid axes: TrainConfig fields a sweep may vary, with the type of their values.
AXES: dict[str, type] = {"epsilon": float, "noise_multiplier": float, "max_grad_norm": float, "epochs": float,
                         "batch_size": int, "lr": float, "model": str}
DP_AXES = ("epsilon", "noise_multiplier", "max_grad_norm")  # meaningless without DP: the baseline drops them
UTILITIES = ("tstr", "fidelity")
# Settings of the sweep itself, beside the sections of its RunConfig.
SWEEP_KEYS = ("grid", "no_dp_baseline", "utility", "jobs", "threads")
# Settings that do not change a point's results, that each point sets itself, or that a re-run may change.
_FREE = {"train.dp", "train.epsilon", "train.noise_multiplier", "train.device", "train.checkpoint_every",
         "policy.name"}


@dataclass
class SweepConfig(RunConfig):
    """A grid of training settings over one dataset; every point shares data split, canary layout and seed.

    The ``RunConfig`` sections are what every point shares; ``train.seed`` (drawn
    once when not given) fixes the split and the canary layout for all points;
    ``policy`` makes the sweep name the best passing point.

    Attributes:
        grid: axis (one of ``AXES``) -> the values to try; points are the Cartesian product.
        no_dp_baseline: add points trained without DP, one per combination of the
            axes that do not concern DP (clipping and noise are dropped).
        utility: the utility metric of the frontier and the choice: ``tstr`` (TSTR
            ratio, ``quality.tstr.ratio``) or ``fidelity`` (``quality.fidelity``).
        jobs: points run at once; None: ``default_jobs()``.
        threads: torch / OpenMP threads of each point's process; None:
            ``threads_per_job()``. On a busy machine 1 can be far faster: an
            OpenMP thread that waits for a descheduled sibling spins.
    """

    grid: dict[str, tuple] = field(default_factory=dict)
    no_dp_baseline: bool = False
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
        return {"grid": {k: list(v) for k, v in self.grid.items()}, **RunConfig.to_dict(self),
                "no_dp_baseline": self.no_dp_baseline, "utility": self.utility, "jobs": self.jobs,
                "threads": self.threads}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SweepConfig":
        """Build from a mapping shaped like the YAML file (``data`` may be a path string)."""
        if not isinstance(data, Mapping):
            raise UserError("sweep config: expected a mapping")
        run = from_mapping({k: v for k, v in data.items() if k not in SWEEP_KEYS})
        try:
            return cls(**run.sections(), grid=data.get("grid") or {},
                       no_dp_baseline=bool(data.get("no_dp_baseline", False)),
                       utility=data.get("utility") or "tstr", jobs=data.get("jobs"), threads=data.get("threads"))
        except UserError:
            raise
        except (TypeError, ValueError) as exc:
            raise UserError(f"sweep config: {exc}") from None

    def base(self) -> RunConfig:
        """A copy of what every point shares."""
        return RunConfig(**copy.deepcopy(self.sections()))

    def shared_differences(self, saved: "SweepConfig") -> list[str]:
        """The shared settings in which ``self`` differs from ``saved``: two runs of one sweep must agree on all.

        The axes of either grid are set by the points, and so are free.
        """
        free = _FREE | {f"train.{axis}" for axis in set(self.grid) | set(saved.grid)}
        return [d for d in self.base().differences(saved.base()) if d not in free]


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


def default_jobs(n_points: int, *, cores: int | None = None) -> int:
    """Points at once when ``--jobs`` is not given: one per two cores (so 1 on 2 cores), at most ``n_points``."""
    cores = cores or available_cores()
    return max(1, min(n_points, cores // 2))


def threads_per_job(jobs: int, *, cores: int | None = None) -> int:
    """Torch / OpenMP threads of each point's process: ``max(1, cores // jobs)``."""
    return max(1, (cores or available_cores()) // jobs)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
