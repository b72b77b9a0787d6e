"""The run directory (DESIGN.md): where each stage reads and writes, and nothing else."""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from auditor.errors import UserError
from auditor.locking import exclusive
from reports.atomic import atomic_file
from reports.pii_masking import new_salt
from reports.atomic import write_private

# The marker file's content: this tool's name and the layout version of its run directories.
RUN_MARKER = {"tool": "dp-auditor", "run_dir_schema": 1}
T = TypeVar("T")


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
    def private(self) -> Path:
        """Private training traces (mode 0700 folder, 0600 files), never inside ``model/``."""
        return self.root / ".private"

    @property
    def checkpoint(self) -> Path:
        """Model, optimizer, step, accountant history; deleted after training unless --keep-checkpoints."""
        return self.private / "checkpoint" / "state.pt"

    @property
    def secret_state(self) -> Path:
        """State of the secret DP generators for --resume; always deleted when training ends."""
        return self.private / "secret_state.pt"

    @property
    def train_log(self) -> Path:
        """Exact training losses (non-DP statistics of the data); written only with --keep-train-log."""
        return self.private / "train_log.json"

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

    @property
    def marker(self) -> Path:
        """``.dp-auditor-run``: marks a run directory made by this tool (``RUN_MARKER``)."""
        return self.root / ".dp-auditor-run"

    @property
    def lock_file(self) -> Path:
        return self.root / ".dp-auditor.lock"

    def report_files(self) -> tuple[Path, ...]:
        return tuple(self.root / f"report.{x}" for x in ("json", "html", "md"))

    def tool_paths(self) -> tuple[Path, ...]:
        """Every path a stage writes in a run directory: the only paths ``--force`` ever deletes.

        A stage that starts writing a new file or folder into the run directory
        adds it here (and nowhere else).
        """
        return (self.marker, self.lock_file, self.run_json, self.split, self.schema, self.canaries, self.salt_file,
                self.private, self.data_copy, self.model, self.generation, self.audit, self.synthetic(False), self.synthetic(True),
                *self.report_files())

    def is_tool_run(self) -> bool:
        """Whether ``root`` carries this tool's marker with the current run-directory schema."""
        try:
            return read_json(self.marker) == RUN_MARKER
        except (OSError, ValueError):
            return False

    def check_target(self, *, force: bool, resume: bool) -> bool:
        """Check, reading only, that a run may be written here; True when ``force`` must clear an earlier run first.

        With ``resume``: the directory must be this tool's run with a checkpoint.
        """
        if resume:
            if not self.is_tool_run():
                raise UserError(f"{self.root}: nothing to resume (not a run directory of this dp-auditor version)")
            if not (self.checkpoint.exists() and self.secret_state.exists()):
                raise UserError(f"{self.root}: nothing to resume (no checkpoint)")
            return False
        return self.holds_files(force=force)

    def holds_files(self, *, force: bool) -> bool:
        """Whether ``root`` holds an earlier run that ``force`` allows to clear.

        Without ``force`` a directory holding anything is refused. With it, only
        this tool's run (marker, ``is_tool_run``) may be cleared, and only of the
        files the tool wrote (``tool_paths``); any other directory is refused
        whatever it holds. A run made before the marker existed is not recognised:
        the message says to delete it by hand or choose another ``--out``.
        """
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root}: exists and is not a directory")
        if not (self.root.is_dir() and any(p != self.lock_file for p in self.root.iterdir())):
            return False
        if not self.is_tool_run():
            if self.run_json.exists() and not self.marker.exists():
                raise UserError(f"{self.root} is not a run directory of this dp-auditor version (no "
                                f"{self.marker.name} marker; an older version's run has none); nothing was deleted: "
                                "choose another --out, or delete it yourself if it is an old run")
            raise UserError(f"{self.root} holds files and is not a dp-auditor run directory; nothing was deleted: "
                            "choose a new or empty --out")
        if not force:
            what = "a finished run" if self.finished_training() else "files"
            raise UserError(f"{self.root} already holds {what}; pass --force to overwrite it")
        return True

    @contextmanager
    def locked(self) -> Iterator["RunDir"]:
        """Hold the run directory's writer lock (``auditor.locking.exclusive``).

        A directory that does not exist has nothing to protect: the block runs
        unlocked, and the stage's own check says what is missing.
        """
        if not self.root.is_dir():
            yield self
            return
        with exclusive(self.lock_file, busy=f"{self.root}: another auditor command is writing this run directory; "
                                             "wait for it to finish"):
            yield self

    @contextmanager
    def new_run(self, *, force: bool, resume: bool = False, clear: Sequence[Path] | None = None) -> Iterator["RunDir"]:
        """Create the directory, lock it, check it again and clear what ``force`` replaces; then write.

        Call it after every input is loaded and every option validated: this is
        the first write. The check of ``check_target`` is repeated under the lock,
        so of two writers started together one is refused. Clears ``clear``
        (default: every ``tool_paths``) of an earlier run of this tool, never a
        file the tool did not write, and marks the directory as the tool's run.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self.locked():
            if self.check_target(force=force, resume=resume):
                self.clear_stage(*(clear if clear is not None else self.tool_paths()), *self._leftover_temps())
            if not resume:
                write_json(self.marker, RUN_MARKER)
            yield self

    def _leftover_temps(self) -> list[Path]:
        """Temporary files of interrupted atomic writes of the tool's files (``reports.atomic.temp_name``)."""
        names = {p.name for p in self.tool_paths()}
        return [p for p in self.root.iterdir()
                if p.name.startswith(".") and p.name.endswith(".tmp") and p.name[1:].rsplit(".", 2)[0] in names]

    def clear_stage(self, *paths: Path) -> None:
        """Delete ``paths``, each of which must be one of ``tool_paths`` (or inside one); never the lock file."""
        mine = set(self.tool_paths())
        for p in paths:
            if p == self.lock_file:
                continue
            if not (p in mine or any(q in mine for q in p.parents) or p in self._leftover_temps()):
                raise ValueError(f"{p} is not a file the tool writes in {self.root}")
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()


def locks_run(stage: Callable[..., T]) -> Callable[..., T]:
    """Run ``stage(out, ...)`` holding the writer lock of its run directory ``out`` (``RunDir.locked``)."""

    @functools.wraps(stage)
    def locked_stage(out, *args, **kwargs) -> T:
        with RunDir(Path(out)).locked():
            return stage(out, *args, **kwargs)

    return locked_stage


def write_json(path: Path, data: Any) -> Path:
    """Atomic, fsynced JSON write (mode 0644: only non-secret artifacts go through here)."""
    with atomic_file(path, mode=0o644) as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")
    return Path(path)


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
