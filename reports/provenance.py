"""Provenance: which inputs a run-directory file was computed from, and whether they are still current.

Every audit file (and ``generation.json``) records ``"provenance": {"inputs":
{name: digest | null}}``: a keyed digest of each input it read, ``null`` for an
input that was absent. The report recomputes the digests of the current files
and refuses the run when any recorded digest differs, so a report never puts
numbers about different synthetic data, models or splits side by side
(docs/audit-contract.md).

The inputs are derived from private data (weights, split, synthetic rows), so the
digest is an HMAC keyed with the run's secret salt: equal files can be matched
within the run, and nothing about the data can be checked by a reader of the
report who lacks the salt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from reports.errors import ReportInputError

SALT_FILE = ".salt"
PREFIX = "hmac-sha256:"

# input name -> files under the run dir (all that exist are digested, in this order)
INPUT_FILES: dict[str, tuple[str, ...]] = {
    "synthetic": ("synthetic.csv", "synthetic.jsonl"),
    "generation": ("generation.json",),
    "model": ("model/*.safetensors",),
    "privacy": ("model/privacy.json",),
    "split": ("split.json",),
    "canaries": ("canaries.json",),
}

# run.json key holding the digests of inputs that live outside the run dir (model-free audits)
EXTERNAL_KEY = "input_digests"
_CHUNK = 1 << 20


def keyed_digest(paths: Iterable[Path], salt: str) -> str | None:
    """``hmac-sha256:`` + HMAC-SHA256(salt, name_1 NUL size_1 NUL bytes_1 ... ) over ``paths``; None when empty.

    Name and size frame each file, so moving bytes between files changes the digest.
    """
    paths = list(paths)
    if not paths:
        return None
    mac = hmac.new(salt.encode("utf-8"), digestmod=hashlib.sha256)
    for path in paths:
        mac.update(f"{path.name}\x00{path.stat().st_size}\x00".encode("utf-8"))
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                mac.update(chunk)
    return PREFIX + mac.hexdigest()


def input_paths(root: Path, name: str) -> list[Path]:
    """The files of input ``name`` present under ``root`` (``INPUT_FILES``)."""
    out: list[Path] = []
    for pattern in INPUT_FILES[name]:
        out += sorted(p for p in root.glob(pattern) if p.is_file())
    return out


def read_salt(root: Path) -> str | None:
    path = Path(root) / SALT_FILE
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def current_digests(root: str | Path, names: Iterable[str], salt: str) -> dict[str, str | None]:
    """Digest of each named input as the run directory holds it now (None: absent)."""
    root = Path(root)
    external = _external(root)
    return {n: external[n] if n in external else keyed_digest(input_paths(root, n), salt) for n in names}


def _external(root: Path) -> dict[str, Any]:
    path = root / "run.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    value = data.get(EXTERNAL_KEY) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def stamp(result: dict[str, Any], digests: Mapping[str, str | None]) -> dict[str, Any]:
    """``result`` with its provenance record (the digests of what it read)."""
    return {**result, "provenance": {"inputs": dict(digests)}}


def _recorded(content: Mapping[str, Any], known: set[str]) -> dict[str, Any] | None:
    """The ``provenance.inputs`` of one file; None when absent or naming an unknown input."""
    prov = content.get("provenance")
    inputs = prov.get("inputs") if isinstance(prov, dict) else None
    if not isinstance(inputs, dict) or not inputs or set(inputs) - known:
        return None
    return inputs


def stale_files(root: str | Path, files: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Of ``files`` (name -> parsed content), those whose provenance does not match the run now, with why.

    Each input is digested once, however many files read it.
    """
    root = Path(root)
    external = _external(root)
    known = set(INPUT_FILES) | set(external)
    recorded = {name: _recorded(content, known) for name, content in files.items()}
    salt = read_salt(root)
    names = {n for inputs in recorded.values() if inputs for n in inputs}
    now = current_digests(root, names if salt is not None else names & set(external), salt or "")
    out: dict[str, str] = {}
    for name, inputs in recorded.items():
        if inputs is None:
            out[name] = "no provenance record"
        elif set(inputs) - set(now):
            out[name] = "the run's salt is missing"
        elif changed := sorted(n for n in inputs if inputs[n] != now[n]):
            out[name] = f"{', '.join(changed)} changed"
    return out


def check_current(root: str | Path, files: Mapping[str, Mapping[str, Any]], *, refresh: Mapping[str, str]) -> None:
    """Refuse (``ReportInputError``, one line) when any of ``files`` (rel -> content) is stale.

    Args:
        root: the run directory.
        files: the files that must carry provenance, by path relative to ``root``.
        refresh: rel -> the stage name that rewrites it (``generate`` or an audit name).

    Raises:
        ReportInputError: naming every stale file, the inputs that changed, and the
            command that refreshes them.
    """
    root = Path(root)
    stale = stale_files(root, files)
    if not stale:
        return
    parts = [f"{rel} ({why})" for rel, why in stale.items()]
    stages = [refresh[rel] for rel in stale]
    audits = [s for s in stages if s != "generate"]
    if _external(root):
        cmd = "auditor audit --synthetic S --train T --holdout H --out " + f"{root} --force"
    elif "generate" in stages:
        cmd = f"auditor generate {root}, then auditor audit {root}"
    else:
        cmd = f"auditor audit {root} --only {','.join(audits)}"
    raise ReportInputError(f"{root}: stale {'; '.join(parts)}: refresh with `{cmd}`")
