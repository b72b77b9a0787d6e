"""The HTML rendering: one self-contained page (inline CSS and PNG plots, no network)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reports import plots
from reports.summary import VERDICT_TEXT, failing, fmt, fmt_epsilon, fmt_pct, headline

TEMPLATES = Path(__file__).parent / "templates"
MAX_ROWS = 50  # longer tables (canaries, PII examples) are cut here; report.json has them all


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["eps"] = fmt_epsilon
    env.filters["pct"] = fmt_pct
    return env


def _plots(record: Mapping[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {"exposure": None, "roc": None, "dcr": None, "shapes": None}
    if "canaries" in record and record["canaries"]["by_repetition"]:
        out["exposure"] = plots.to_data_uri(plots.exposure_plot(record["canaries"]["by_repetition"]))
    if "mia" in record:
        curves = {name: s["roc"] for name, s in record["mia"]["signals"].items() if s.get("roc")}
        distance_attack = (record.get("distance") or {}).get("mia") or {}
        if distance_attack.get("roc"):
            curves["distance to closest record"] = distance_attack["roc"]
        if curves:
            out["roc"] = plots.to_data_uri(plots.roc_plot(curves))
    if "distance" in record:
        hist = record["distance"]["dcr_hist"]
        out["dcr"] = plots.to_data_uri(plots.dcr_histogram(hist["bins"], hist["train"], hist["holdout"]))
    if "quality" in record and record["quality"]["column_shapes"]:
        out["shapes"] = plots.to_data_uri(plots.score_bars(record["quality"]["column_shapes"]))
    return out


def _entity_rows(pii: Mapping[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(column, entity, findings, rows) from ``by_column``: column -> entity -> count or
    ``{"findings": n, "rows": m, ...}``, or column -> count."""
    rows = []
    for column, found in (pii["synthetic"].get("by_column") or {}).items():
        if not isinstance(found, Mapping):
            rows.append((column, "all", found, None))
            continue
        for entity, stats in found.items():
            if isinstance(stats, Mapping):
                rows.append((column, entity, stats.get("findings"), stats.get("rows")))
            else:
                rows.append((column, entity, stats, None))
    return rows


def _example_keys(examples: list[Any]) -> list[str]:
    keys: list[str] = []
    for ex in examples:
        if isinstance(ex, Mapping):
            keys.extend(k for k in ex if k not in keys)
    return keys or ["example"]


def render_html(record: Mapping[str, Any]) -> str:
    """The report page for ``record`` (as built by ``reports.build.build_report``)."""
    privacy = record.get("privacy")
    eps = privacy["epsilon"] if privacy and privacy["dp"] else None
    context = {
        "r": record,
        "verdict_text": VERDICT_TEXT[record["verdict"]],
        "failing": failing(record),
        "headline": headline(record),
        "plots": _plots(record),
        "max_rows": MAX_ROWS,
        "e_eps": fmt(math.exp(eps)) if eps is not None and eps < 700 else "n/a",
        "max_belief": fmt_pct(1 / (1 + math.exp(-eps))) if eps is not None else "n/a",
        "entity_rows": _entity_rows(record["pii"]) if "pii" in record else [],
        "example_keys": _example_keys(record["pii"]["examples"]) if "pii" in record else [],
    }
    return _environment().get_template("report.html.j2").render(context)
