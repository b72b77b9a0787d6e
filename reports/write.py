"""Writing the report files into the run directory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reports.atomic import atomic_write
from reports.html import render_html
from reports.markdown import render_markdown


def to_json(record: Mapping[str, Any]) -> str:
    """``report.json`` text; NaN/Infinity are refused (the schema uses ``null``)."""
    return json.dumps(record, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_report(run_dir: str | Path, record: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``report.json``, ``report.html`` and ``report.md`` into ``run_dir``.

    Every text is rendered before anything is written, and each file is replaced
    atomically, so a failure leaves the previous report intact.

    Returns:
        ``{"json": path, "html": path, "md": path}``.
    """
    root = Path(run_dir)
    texts = {"json": to_json(record), "html": render_html(record), "md": render_markdown(record)}
    paths = {kind: root / f"report.{kind}" for kind in texts}
    for kind, text in texts.items():
        atomic_write(paths[kind], text)
    return paths
