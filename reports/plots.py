"""Plots for the reports, as matplotlib ``Figure`` objects and inline data URIs.

Every function takes plain numbers (lists, mappings) as found in the report
record, builds a ``Figure`` without touching pyplot's global state (safe in
threads and headless), and ``to_data_uri`` turns it into an inline PNG for a
self-contained HTML page. The sweep page reuses ``series_plot``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

TRAIN_COLOR = "#c0392b"
HOLDOUT_COLOR = "#2c7fb8"
NEUTRAL_COLOR = "#7f8c8d"
PALETTE = ("#2c7fb8", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#34495e")


def plain(text: object) -> str:
    """``text`` as matplotlib shows it literally: every ``$`` escaped, so a user's column name
    (``cost $\\foo{x}$ usd``) is never parsed as mathtext (which fails on unknown commands)."""
    return str(text).replace("$", r"\$")


def _figure(width: float = 6.4, height: float = 3.4) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def to_data_uri(fig: Figure, *, dpi: int = 110) -> str:
    """``data:image/png;base64,...`` of ``fig`` (for ``<img src=...>``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def exposure_plot(by_repetition: Sequence[Mapping[str, float]]) -> Figure:
    """Canary exposure (bits) against the number of times a canary was inserted.

    Draws the mean and the maximum exposure per repetition count and the
    maximum possible exposure (log2 of the canary space): a canary at that line
    was ranked first among all candidates, i.e. memorized.
    """
    rows = sorted(by_repetition, key=lambda r: r["repetitions"])
    reps = [r["repetitions"] for r in rows]

    def values(key: str) -> list[float]:
        return [float("nan") if r[key] is None else r[key] for r in rows]

    fig, ax = _figure()
    ax.plot(reps, values("exposure_mean"), "o-", color=PALETTE[0], label="mean exposure")
    ax.plot(reps, values("exposure_max"), "s--", color=PALETTE[1], label="max exposure")
    ax.plot(reps, values("max_possible"), ":", color=NEUTRAL_COLOR, label="maximum possible")
    if reps and min(reps) > 0 and max(reps) / min(reps) >= 10:
        ax.set_xscale("log")
    ax.set_xticks(reps, [str(r) for r in reps])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("times the canary was inserted in the training data")
    ax.set_ylabel("exposure (bits)")
    ax.legend(frameon=False, fontsize=8)
    return fig


def roc_plot(curves: Mapping[str, Mapping[str, Sequence[float]]], *, floor: float = 1e-4) -> Figure:
    """Membership-inference ROC curves on log-log axes (low-FPR regime visible).

    Points with FPR or TPR below ``floor`` are clipped to it (a log axis has no 0).
    The diagonal is a random guess.
    """
    fig, ax = _figure(5.2, 4.0)
    for color, (name, roc) in zip(PALETTE * (len(curves) // len(PALETTE) + 1), curves.items()):
        fpr = [max(f, floor) for f in roc["fpr"]]
        tpr = [max(t, floor) for t in roc["tpr"]]
        ax.plot(fpr, tpr, "-", color=color, label=plain(name), linewidth=1.5)
    ax.plot([floor, 1], [floor, 1], ":", color=NEUTRAL_COLOR, label="random guess")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return fig


def dcr_histogram(bins: Sequence[float], train: Sequence[float], holdout: Sequence[float]) -> Figure:
    """Distance to the closest record: synthetic->train against synthetic->holdout.

    ``bins`` are the ``len(train) + 1`` bin edges. Bars shifted to the left in
    the train histogram mean synthetic rows sit closer to training rows than to
    unseen rows of the same distribution.
    """
    if len(bins) != len(train) + 1 or len(train) != len(holdout):
        raise ValueError("dcr_histogram: need len(bins) == len(train) + 1 == len(holdout) + 1")
    fig, ax = _figure()
    widths = [b - a for a, b in zip(bins[:-1], bins[1:])]
    lefts = list(bins[:-1])
    ax.bar(lefts, train, width=[w * 0.45 for w in widths], align="edge", color=TRAIN_COLOR,
           label="to training rows")
    ax.bar([x + w * 0.5 for x, w in zip(lefts, widths)], holdout, width=[w * 0.45 for w in widths],
           align="edge", color=HOLDOUT_COLOR, label="to holdout rows")
    ax.set_xlabel("distance from a synthetic row to its closest real row")
    ax.set_ylabel("synthetic rows")
    ax.legend(frameon=False, fontsize=8)
    return fig


def score_bars(scores: Mapping[str, float | None], *, xlabel: str = "similarity (1 = identical)") -> Figure:
    """Horizontal bars of scores in [0, 1], one per name (e.g. per column)."""
    names = list(scores)
    values = [scores[n] if scores[n] is not None else 0.0 for n in names]
    fig, ax = _figure(6.4, max(1.6, 0.32 * len(names) + 0.9))
    ax.barh(range(len(names)), values, color=PALETTE[0])
    ax.set_yticks(range(len(names)), [plain(n) for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(plain(xlabel))
    return fig


def series_plot(x: Sequence[float], series: Mapping[str, Sequence[float | None]], *, xlabel: str,
                ylabel: str, logx: bool = False, hline: float | None = None) -> Figure:
    """Several named series over a shared x (e.g. a metric against ε in a sweep).

    ``None`` values are left as gaps; ``hline`` draws a dashed reference line
    (a policy threshold, say).
    """
    fig, ax = _figure()
    for color, (name, ys) in zip(PALETTE * (len(series) // len(PALETTE) + 1), series.items()):
        if len(ys) != len(x):
            raise ValueError(f"series_plot: series {name!r} has {len(ys)} values for {len(x)} x values")
        ax.plot(x, [float("nan") if y is None else y for y in ys], "o-", color=color, label=plain(name))
    if hline is not None:
        ax.axhline(hline, linestyle="--", color=NEUTRAL_COLOR, linewidth=1)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel(plain(ylabel))
    ax.legend(frameon=False, fontsize=8)
    return fig
