"""The private traces of a run: the values a release bundle must not contain.

Everything is derived from what the run directory holds, wherever it is, so the
scan keeps working as the layout changes (a private ``.private/`` folder, an HMAC
instead of a plain hash):

- seeds: every integer under a key naming a seed in ``run.json``;
- private hashes: every string under a key naming a hash or an HMAC in
  ``run.json``, and the run's salts (``.salt``, the manifest's);
- exact losses: every number under a key naming a loss in any ``train_log*``
  file (JSON or JSON lines) anywhere under the run directory;
- canaries: the manifest (secrets, which were inserted, their columns);
- training PII: the values the PII scanner finds in the run's private records
  (train and holdout; numeric columns are skipped as in the PII audit), with at
  least ``MIN_ALNUM`` letters and digits (shorter ones, ``May`` or ``12``,
  occur everywhere), less the categories the schema makes public (declared, or
  selected with DP).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.errors import UserError
from auditor.release.matcher import MIN_ALNUM, normalise
from auditor.rundir import RunDir, read_json
from canaries.manifest import Canary, Manifest

PUBLIC_SOURCES = ("declared", "dp")


@dataclass(frozen=True)
class PrivateTraces:
    """Secret values of one run, each under a label that is safe to print.

    Attributes:
        seeds: label (``run.json seeds.run``) -> seed.
        hashes: label -> hash, HMAC or salt (hex text).
        losses: label (``model/train_log.json [12].loss``) -> logged loss.
        canaries: the manifest's canaries (empty without canaries).
        pii: raw training PII value -> its entity type.
        salt: the run's salt, for the salted hashes of masked values in messages.
    """

    seeds: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)
    canaries: tuple[Canary, ...] = ()
    pii: dict[str, str] = field(default_factory=dict)
    salt: str | None = None


def _walk(obj: Any, where: str = "", key: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every leaf of a JSON value; a list item's key is its list's."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{where}.{k}" if where else str(k), str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{where}[{i}]", key)
    else:
        yield where, key, obj


def run_seeds(run_json: dict) -> dict[str, int]:
    """Every integer under a key containing ``seed``, at any depth (``seeds.run``, ``config.train.seed``)."""
    return {f"run.json {path}": value for path, _, value in _walk(run_json)
            if "seed" in path.lower() and isinstance(value, int) and not isinstance(value, bool)}


def run_hashes(run: RunDir, run_json: dict) -> dict[str, str]:
    """Every string under a key containing ``hash`` or ``hmac`` in run.json, and the run's salts."""
    out = {f"run.json {path}": value for path, key, value in _walk(run_json)
           if any(w in key.lower() for w in ("hash", "hmac")) and isinstance(value, str) and value}
    if run.salt_file.exists():
        out[".salt"] = run.salt_file.read_text(encoding="utf-8").strip()
    return out


def _log_records(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def logged_losses(root: Path) -> dict[str, float]:
    """Every number under a key containing ``loss`` in any ``train_log*`` file under ``root``."""
    out: dict[str, float] = {}
    for path in sorted(root.rglob("train_log*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        try:
            records = _log_records(path)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"{rel}: not a readable training log ({exc.__class__.__name__})") from None
        for where, key, value in _walk(records):
            if "loss" in key.lower() and isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{rel} {where}"] = float(value)
    return out


def _public_categories(run: RunDir) -> set[str]:
    from auditor.schema import Schema

    schema = Schema.from_dict(read_json(run.codec)["schema"])
    return {normalise(str(v)) for c in schema.columns if c.source in PUBLIC_SOURCES for v in (c.categories or ())}


def training_pii(run: RunDir, *, ner: bool) -> dict[str, str]:
    """Raw PII values of the run's private records (see the module doc) -> entity type."""
    import pandas as pd

    from auditor.pii import analyze
    from auditor.loading import load_frames
    from auditor.schema import Schema

    train, holdout, text = load_frames(run)
    frame = pd.concat([train, holdout], ignore_index=True)
    if text:
        records = frame["text"].tolist()
    else:
        schema = Schema.from_dict(read_json(run.codec)["schema"])
        records = frame[[c.name for c in schema.columns if c.kind != "numeric"]]
    scan = analyze(synthetic=records, config={"ner": ner})
    public = _public_categories(run)
    return {f.text: f.entity for f in scan.synthetic.findings
            if len(normalise(f.text)) >= MIN_ALNUM and normalise(f.text) not in public}


def gather(run: RunDir, *, ner: bool = True) -> PrivateTraces:
    """The private traces of a trained run directory (see the module doc)."""
    meta = read_json(run.run_json)
    manifest = Manifest.load(run.canaries) if run.canaries.exists() else None
    hashes = run_hashes(run, meta)
    if manifest is not None:
        hashes["canaries.json salt"] = manifest.salt
    return PrivateTraces(seeds=run_seeds(meta), hashes=hashes, losses=logged_losses(run.root),
                         canaries=tuple(manifest.canaries) if manifest else (), pii=training_pii(run, ner=ner),
                         salt=hashes.get(".salt"))
