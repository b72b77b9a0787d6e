"""Plots of a sweep as matplotlib ``Figure`` objects (no pyplot state), drawn from sweep.json rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from auditor.sweep.grid import ABBREVIATIONS
from reports.plots import NEUTRAL_COLOR, PALETTE, plain
from reports.summary import fmt_epsilon

_PRIVACY_AXES = ("epsilon", "noise_multiplier")  # what moves a point along the ε axis
_MARKERS = ("o", "s", "^", "D", "v", "P")
_LINES = ("-", "--", ":", "-.")


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
    return plain(", ".join(f"{ABBREVIATIONS[a] or 'model'}={v:g}" if isinstance(v, (int, float)) else
                           f"{ABBREVIATIONS[a] or 'model'}={v}" for a, v in rest))


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
    for i, (label, pts) in enumerate(groups.items()):
        pts.sort()
        # Groups often coincide (with Adam, all-clipped gradients make C a no-op): later ones
        # are drawn smaller and dashed on top, so every group stays visible.
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=PALETTE[i % len(PALETTE)], label=label,
                marker=_MARKERS[i % len(_MARKERS)], markersize=max(3.0, 8.0 - 1.5 * i),
                linestyle=_LINES[i % len(_LINES)])
    for i, (pid, y) in enumerate(baselines):
        ax.axhline(y, linestyle="--", color=NEUTRAL_COLOR, linewidth=1.2 - 0.2 * (i % 3),
                   label=plain(f"no DP ({pid})"))
    _epsilon_ticks(ax, sorted({p[0] for pts in groups.values() for p in pts}))
    ax.set_xlabel("ε (DP guarantee; smaller is more private)")
    ax.set_ylabel(plain(ylabel))
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
        if pid == chosen:
            ax.scatter([x], [y], marker="*", s=220, color=PALETTE[2], label="chosen setting", zorder=4)
    for (x, y), ids in _label_clusters(pts):
        ax.annotate(plain(", ".join(ids)), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                    color="#333333")
    if cost == "epsilon":
        _epsilon_ticks(ax, sorted({p[0] for p in pts}))
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel(plain(ylabel))
    if pts:
        ax.legend(frameon=False, fontsize=8)
    return fig


def _label_clusters(pts: Sequence[tuple[float, float, str]], *, share: float = 0.015
                    ) -> list[tuple[tuple[float, float], list[str]]]:
    """Points closer than ``share`` of the axis ranges share one label (their ids joined), so labels do not overprint."""
    if not pts:
        return []
    dx = (max(p[0] for p in pts) - min(p[0] for p in pts)) * share
    dy = (max(p[1] for p in pts) - min(p[1] for p in pts)) * share
    clusters: list[tuple[tuple[float, float], list[str]]] = []
    for x, y, pid in pts:
        for (cx, cy), ids in clusters:
            if abs(x - cx) <= dx and abs(y - cy) <= dy:
                ids.append(pid)
                break
        else:
            clusters.append(((x, y), [pid]))
    return clusters


def _epsilon_ticks(ax, values: Sequence[float]) -> None:
    """A log ε axis when the values span 10x or more, ticked at the values themselves."""
    if not values or min(values) <= 0:
        return
    if max(values) / min(values) >= 10:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(values, [fmt_epsilon(v) for v in values])


def _value(row: Mapping[str, Any], key: str) -> float | None:
    if key == "utility":
        return row["utility"]
    return row["metrics"][key] if row["metrics"] else None
