"""Plots of a sweep as matplotlib ``Figure`` objects (no pyplot state), drawn from sweep.json rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from auditor.sweep.grid import ABBREVIATIONS
from reports.plots import NEUTRAL_COLOR, PALETTE

_PRIVACY_AXES = ("epsilon", "noise_multiplier")  # what moves a point along the ε axis


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def group_label(settings: Mapping[str, Any]) -> str:
    """The settings other than ε / noise, as a legend label (``C=0.5, ep=2``); ``DP points`` when none."""
    rest = [(axis, v) for axis, v in settings.items() if axis not in _PRIVACY_AXES]
    if not rest:
        return "DP points"
    return ", ".join(f"{ABBREVIATIONS[a] or 'model'}={v:g}" if isinstance(v, (int, float)) else
                     f"{ABBREVIATIONS[a] or 'model'}={v}" for a, v in rest)


def metric_vs_epsilon(rows: Sequence[Mapping[str, Any]], value: str, *, ylabel: str) -> Figure:
    """``value`` (a metrics key, or ``utility``) against ε: one line per group of the other settings.

    Points trained without DP have no ε; each is drawn as a dashed horizontal line.
    """
    fig, ax = _figure()
    groups: dict[str, list[tuple[float, float]]] = {}
    baselines = []
    for r in rows:
        y = _value(r, value)
        if y is None:
            continue
        if r["dp"]:
            eps = r["metrics"]["epsilon"]
            if eps is not None:
                groups.setdefault(group_label(r["settings"]), []).append((eps, y))
        else:
            baselines.append((r["id"], y))
    for color, (label, pts) in zip(PALETTE * (len(groups) // len(PALETTE) + 1), groups.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, label=label)
    for i, (pid, y) in enumerate(baselines):
        ax.axhline(y, linestyle="--", color=NEUTRAL_COLOR, linewidth=1.2 - 0.2 * (i % 3),
                   label=f"no DP ({pid})")
    xs = [p[0] for pts in groups.values() for p in pts]
    if xs and min(xs) > 0 and max(xs) / min(xs) >= 10:
        ax.set_xscale("log")
    ax.set_xlabel("ε (DP guarantee; smaller is more private)")
    ax.set_ylabel(ylabel)
    if groups or baselines:
        ax.legend(frameon=False, fontsize=8)
    return fig


def frontier_plot(rows: Sequence[Mapping[str, Any]], cost: str, front: Sequence[str], chosen: str | None, *,
                  xlabel: str, ylabel: str) -> Figure:
    """Every point as (cost, utility); frontier points marked and joined, the chosen setting starred.

    ``cost`` is a metrics key (``epsilon`` or ``mia_auc``); smaller cost and
    larger utility are better, so the frontier runs from lower left to upper right.
    """
    fig, ax = _figure()
    pts = [(r["metrics"][cost], r["utility"], r["id"]) for r in rows
           if r["metrics"] and r["metrics"][cost] is not None and r["utility"] is not None]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=NEUTRAL_COLOR, s=28, label="point", zorder=2)
    on = sorted(p for p in pts if p[2] in front)
    if on:
        ax.step([p[0] for p in on], [p[1] for p in on], where="post", color=PALETTE[0], linewidth=1.2, zorder=1)
        ax.scatter([p[0] for p in on], [p[1] for p in on], s=70, facecolors="none", edgecolors=PALETTE[0],
                   linewidths=1.8, label="Pareto frontier", zorder=3)
    for x, y, pid in pts:
        ax.annotate(pid, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color="#333333")
        if pid == chosen:
            ax.scatter([x], [y], marker="*", s=220, color=PALETTE[2], label="chosen setting", zorder=4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if pts:
        ax.legend(frameon=False, fontsize=8)
    return fig


def _value(row: Mapping[str, Any], key: str) -> float | None:
    if key == "utility":
        return row["utility"]
    return row["metrics"][key] if row["metrics"] else None
