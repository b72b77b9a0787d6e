"""Writing the report files into the run directory."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reports.html import render_html
from reports.markdown import render_markdown


def to_json(record: Mapping[str, Any]) -> str:
    """``report.json`` text; NaN/Infinity are refused (the schema uses ``null``)."""
    return json.dumps(record, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        _atomic_write(paths[kind], text)
    return paths
