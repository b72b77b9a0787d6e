"""The run directory (DESIGN.md): where each stage reads and writes, and nothing else."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.errors import UserError
from reports.masking import new_salt, write_private


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def schema(self) -> Path:
        return self.root / "schema.yaml"

    @property
    def canaries(self) -> Path:
        return self.root / "canaries.json"

    @property
    def salt_file(self) -> Path:
        return self.root / ".salt"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def privacy(self) -> Path:
        return self.model / "privacy.json"

    @property
    def codec(self) -> Path:
        return self.model / "codec.json"

    @property
    def checkpoint(self) -> Path:
        return self.model / "checkpoint"

    @property
    def generation(self) -> Path:
        return self.root / "generation.json"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def data_copy(self) -> Path:
        """The training/holdout records the audits compare against (private; 0600)."""
        return self.root / "data.private.jsonl"

    def synthetic(self, text: bool) -> Path:
        return self.root / ("synthetic.jsonl" if text else "synthetic.csv")

    def existing_synthetic(self) -> Path:
        for p in (self.synthetic(False), self.synthetic(True)):
            if p.exists():
                return p
        raise UserError(f"{self.root}: no synthetic data yet (run `auditor generate {self.root}`)")

    def finished_training(self) -> bool:
        return self.privacy.exists()

    def require_trained(self) -> None:
        if not self.root.is_dir():
            raise UserError(f"{self.root}: no such run directory")
        if not self.finished_training():
            raise UserError(f"{self.root}: no trained model (run `auditor train DATA --out {self.root}`)")

    def salt(self) -> str:
        """The run's secret salt for masked hashes (created on first use, mode 0600)."""
        if not self.salt_file.exists():
            write_private(self.salt_file, new_salt())
        return self.salt_file.read_text(encoding="utf-8").strip()

    def prepare_for_training(self, *, force: bool, resume: bool) -> None:
        """Refuse to overwrite a finished run without ``force``; with it, clear the old one."""
        if resume:
            if not (self.checkpoint / "state.pt").exists():
                raise UserError(f"{self.root}: nothing to resume (no checkpoint)")
            return
        if self.holds_files(force=force):
            shutil.rmtree(self.root)

    def holds_files(self, *, force: bool) -> bool:
        """Whether ``root`` holds an earlier run that ``force`` allows to overwrite.

        Without ``force`` a non-empty directory is refused; with it, only a run
        directory (one with run.json) may be cleared.
        """
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root}: exists and is not a directory")
        if not (self.root.is_dir() and any(self.root.iterdir())):
            return False
        if not force:
            what = "a finished run" if self.finished_training() else "files"
            raise UserError(f"{self.root} already holds {what}; pass --force to overwrite it")
        if not self.run_json.exists():
            raise UserError(f"{self.root} is not a run directory; refusing to clear it even with --force")
        return True

    def clear_stage(self, *paths: Path) -> None:
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()


def write_json(path: Path, data: Any) -> Path:
    """Atomic JSON write (mode 0644: only non-secret artifacts go through here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _json_default(obj: Any):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
