"""Building a release bundle: copy the allow-list, write the public report, scan, then publish.

The bundle is built in a temporary folder beside ``out`` and renamed to ``out``
only when the scan finds nothing; on a finding or any error the temporary folder
is removed, so ``out`` is either complete and clean or absent (an ``out`` that
existed empty is left as it was).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from auditor.errors import UserError
from auditor.release.contents import copies
from auditor.release.leaks import DIR_MODE, FILE_MODE, Finding, scan_bundle
from auditor.release.traces import PrivateTraces, gather
from auditor.rundir import RunDir


@dataclass
class Released:
    """Outcome of ``release``: the bundle's files (relative paths) or the findings that stopped it."""

    out: Path
    files: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    verdict: str | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_out(run: RunDir, out: Path) -> Path:
    """``out`` resolved, or ``UserError`` when it is inside the run, exists as a file, or is a non-empty folder."""
    root = run.root.resolve()
    target = out.resolve()
    if _inside(target, root):
        raise UserError(f"--out {out} is inside the run directory {run.root}; a bundle goes elsewhere")
    if target.exists() and not target.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise UserError(f"--out {out} is not empty; give a new or empty directory")
    if not target.parent.is_dir():
        raise UserError(f"--out {out}: parent directory {out.parent} does not exist")
    return target


def _create(path: Path) -> BinaryIO:
    """A new public file, open for writing; mode 0644 exactly (the umask may narrow the
    creation mode, and the run's 0600 sources must not pass theirs on)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, DIR_MODE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def _owner_report(run: RunDir) -> dict:
    """The run's report.json, read and checked once, at the boundary."""
    from reports.errors import ReportInputError
    from reports.run_files import read_json as read_report

    path = run.root / "report.json"
    if not path.is_file():
        raise UserError(f"{run.root}: no report.json (run `auditor report {run.root}`)")
    try:
        return read_report(path, "report.json")
    except ReportInputError as exc:
        raise UserError(f"{run.root}/{exc}") from None


def _public_report(owner: dict) -> dict[str, bytes]:
    from reports.html import render_html
    from reports.markdown import render_markdown
    from reports.public import public_record
    from reports.write import to_json

    record = public_record(owner)
    texts = {"report.json": to_json(record), "report.html": render_html(record), "report.md": render_markdown(record)}
    return {name: text.encode("utf-8") for name, text in texts.items()}


def build(run: RunDir, folder: Path, *, report: dict, with_model: bool) -> list[str]:
    """Write the bundle's files into the empty ``folder`` (``report``: the run's report record);
    their relative paths."""
    written = []
    for item in copies(run, with_model=with_model):
        with open(item.source, "rb") as src, _create(folder / item.target) as dst:
            shutil.copyfileobj(src, dst)
        written.append(item.target)
    for name, data in _public_report(report).items():
        with _create(folder / name) as dst:
            dst.write(data)
        written.append(name)
    return sorted(written)


def release(run_dir: str | Path, out: str | Path, *, with_model: bool = False, ner: bool = True,
            traces: PrivateTraces | None = None) -> Released:
    """Bundle the public files of a finished run into ``out`` and scan them for leaks.

    Args:
        run_dir: a run directory with a trained model, synthetic data and report.json.
        out: the bundle folder to create (absent or empty; not inside ``run_dir``).
        with_model: also bundle the model's public files (``auditor.release.contents``).
        ner: find training PII with an NER model as well as patterns (slower, finds names).
        traces: the run's private traces, when already gathered (``gather``).

    Returns:
        ``Released``: ``ok`` with the files written, or the findings (nothing written).

    Raises:
        UserError: a bad run directory or ``out`` (nothing written).
    """
    run = RunDir(Path(run_dir))
    run.require_trained()
    report = _owner_report(run)
    run.existing_synthetic()
    target = check_out(run, Path(out))
    traces = traces if traces is not None else gather(run, ner=ner)
    verdict = report.get("verdict")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        os.chmod(tmp, DIR_MODE)
        files = build(run, tmp, report=report, with_model=with_model)
        findings = scan_bundle(tmp, traces)
        if findings:
            shutil.rmtree(tmp)
            return Released(out=target, findings=findings, verdict=verdict)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Released(out=target, files=files, verdict=verdict)
