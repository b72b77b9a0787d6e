"""The points of a sweep: the Cartesian product of the grid, plus the no-DP baseline points.

Every point is a full ``RunConfig``: the shared settings with the point's axis
values put in. The seed is shared, so every point gets the same split and the same
canary layout (``auditor.pipeline.train`` derives both from ``train.seed``); the DP
randomness and the canary secrets are each point's own secret randomness.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from auditor.config import RunConfig
from auditor.sweep.config import DP_AXES, SweepConfig

# Short names in point ids, in AXES order: "nm0.6-C0.5", "eps8-C1-ep2", "nodp".
ABBREVIATIONS = {"epsilon": "eps", "noise_multiplier": "nm", "max_grad_norm": "C", "epochs": "ep",
                 "batch_size": "bs", "lr": "lr", "model": ""}
_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")


@dataclass(frozen=True)
class Point:
    """One setting of the sweep.

    Attributes:
        id: a file-name-safe name built from the settings (the run dir is ``DIR/runs/<id>``).
        settings: axis -> value of this point (the baseline has no DP axes).
        dp: trained with DP (False for baseline points).
        config: the full run config of the point.
    """

    id: str
    settings: dict[str, Any]
    dp: bool
    config: RunConfig


def point_id(settings: dict[str, Any], *, dp: bool) -> str:
    """``nm0.6-C0.5`` from ``{"noise_multiplier": 0.6, "max_grad_norm": 0.5}``; baselines start with ``nodp``."""
    parts = [] if dp else ["nodp"]
    for axis, abbr in ABBREVIATIONS.items():
        if axis in settings:
            value = settings[axis]
            parts.append(abbr + (f"{value:g}" if isinstance(value, (int, float)) else _UNSAFE.sub("_", str(value))))
    return "-".join(parts) or "default"


def expand(config: SweepConfig) -> list[Point]:
    """DP points in grid order (first axis slowest), then the baseline points."""
    axes = list(config.grid)
    points = [_point(config, dict(zip(axes, values)), dp=True)
              for values in itertools.product(*(config.grid[a] for a in axes))]
    if config.no_dp_baseline:
        plain = [a for a in axes if a not in DP_AXES]
        points += [_point(config, dict(zip(plain, values)), dp=False)
                   for values in itertools.product(*(config.grid[a] for a in plain))]
    return points


def _point(config: SweepConfig, settings: dict[str, Any], *, dp: bool) -> Point:
    run = config.base()
    train = run.train
    for axis, value in settings.items():
        setattr(train, axis, value)
    train.dp = dp
    if not dp:
        train.epsilon = train.noise_multiplier = None
    elif "noise_multiplier" in settings:
        train.epsilon = None
    elif "epsilon" in settings:
        train.noise_multiplier = None
    return Point(id=point_id(settings, dp=dp), settings=settings, dp=dp, config=run)
