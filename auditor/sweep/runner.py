"""Run a sweep: validate, run each unfinished point in its own process, then write sweep.json and sweep.html.

Resumable: a point with a report under the sweep's policy is skipped; any other
point continues from what its run directory holds (``auditor.sweep.point``).
Points run in separate processes (``spawn``), ``jobs`` at a time, each with
``max(1, cores // jobs)`` threads so the machine is not oversubscribed. A
point that fails (or whose process dies) is recorded and the others go on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from auditor.config import RunConfig
from auditor.errors import UserError
from auditor.locking import exclusive
from auditor.rundir import read_json, write_json
from auditor.sweep import point as point_mod
from auditor.sweep.config import SweepConfig, default_jobs, threads_per_job
from auditor.sweep.grid import Point, expand
from auditor.sweep.html import render_html
from auditor.sweep.layout import SweepDir
from auditor.sweep.results import build_record, point_metrics
from reports.atomic import atomic_write, write_private
from reports.pii_masking import new_salt


@dataclass
class SweepOutcome:
    record: dict[str, Any]
    paths: dict[str, Path]

    @property
    def exit_code(self) -> int:
        """1 when a policy was given and no point passes it, else 0."""
        return 1 if self.record["policy"] and self.record["choice"]["id"] is None else 0

    def summary(self) -> str:
        """What a user reads at the end of `auditor sweep`."""
        r = self.record
        counts = f"{r['counts']['done']} of {r['counts']['total']} finished"
        if r["counts"]["failed"]:
            counts += f", {r['counts']['failed']} failed (re-run the same command to retry)"
        lines = [f"sweep directory {self.paths['json'].parent}",
                 f"  results       {self.paths['json']}",
                 f"                {self.paths['html']}",
                 f"points          {counts}"]
        for name, ids in r["frontier"].items():
            lines.append(f"frontier {name:<8}{' -> '.join(ids) if ids else 'none'}")
        lines.append(f"time            {r['time']['point_seconds']:.0f} s of compute over the points, "
                     f"{r['time']['wall_seconds']:.0f} s wall")
        lines.append(f"choice          {r['choice']['text']}")
        for pid, reasons in r["choice"]["blockers"].items():
            lines.append(f"  {pid}: {'; '.join(reasons) or 'no failing check'}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- validation

@dataclass(frozen=True)
class _Prepared:
    config: SweepConfig
    points: list[Point]
    policy: dict | None
    data_hash: str
    salt: str


def prepare(config: SweepConfig, out: Path) -> _Prepared:
    """Check everything a sweep needs before anything is written; resolve the seed.

    Raises:
        UserError: unreadable data or schema, a bad policy, a point with invalid
            training settings, or ``out`` holding a sweep with other shared settings.
    """
    from auditor import data as data_io
    from auditor.loading import load_dataset, resolve_schema

    sweep = SweepDir(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    dataset = load_dataset(config.data.path)
    resolve_schema(dataset, config.data.schema)
    config.data.path = str(Path(config.data.path).resolve())
    if config.data.schema:
        config.data.schema = str(Path(config.data.schema).resolve())
    policy = None
    if config.policy.name is not None:
        from auditor.policies import load_policy

        if Path(config.policy.name).is_file():
            config.policy.name = str(Path(config.policy.name).resolve())
        policy = load_policy(config.policy.name).to_dict()
    saved = read_json(sweep.config) if sweep.config.exists() else None
    if saved is None and out.is_dir() and any(p.name != sweep.lock.name for p in out.iterdir()):
        raise UserError(f"{out} already holds files that are not a sweep; choose another --out")
    if config.train.seed is None:
        config.train.seed = saved["config"]["train"]["seed"] if saved else secrets.randbits(31)
    # The data's HMAC keyed with the sweep's secret salt: a plain hash would confirm a guessed table.
    # A sweep started before the salt existed holds a plain SHA-256: checked as such, then keyed.
    key = sweep.salt_file.read_text(encoding="utf-8").strip() if saved and sweep.salt_file.exists() else None
    digest = None
    if saved is not None:
        _require_same_sweep(config, SweepConfig.from_dict(saved["config"]), out)
        digest = data_io.data_hash(dataset.frame, key=key)
        if saved["data_hash"] != digest:
            raise UserError(f"{config.data.path}: the data changed since this sweep started (hash mismatch)")
    if key is None:  # a new sweep, or one started before the salt: key the hash now
        key = new_salt()
        digest = data_io.data_hash(dataset.frame, key=key)
    points = expand(config)
    for p in points:
        _require_same_point(p, sweep.run_dir(p.id))
    n_train = len(dataset.frame) - round(len(dataset.frame) * config.data.holdout)
    for p in points:
        try:
            p.config.validate()
            p.config.train.check_records(n_train)
        except ValueError as exc:
            raise UserError(f"sweep point {p.id}: {exc}") from None
    if config.audit.audits is not None:  # a misspelled audit name fails now, not after each point's training
        from auditor.audits import selected_audits

        selected_audits(config.audit)
    return _Prepared(config=config, points=points, policy=policy, data_hash=digest, salt=key)


def _require_same_sweep(given: SweepConfig, saved: SweepConfig, out: Path) -> None:
    differ = given.shared_differences(saved)
    if differ:
        raise UserError(f"{out} holds a sweep with other shared settings (differs in {', '.join(differ)}); "
                        "re-run it with the same settings (the grid may change) or choose another --out")


def _require_same_point(p: Point, run_dir: Path) -> None:
    """A point's existing run must have been trained with the point's settings (it is reused as it is)."""
    if not (run_dir / "run.json").exists():
        return
    differ = p.config.resume_conflicts(RunConfig.from_dict(read_json(run_dir / "run.json")["config"]))
    if differ:
        raise UserError(f"{run_dir}: trained with other settings than point {p.id} (differs in "
                        f"{', '.join(differ)}); choose another --out")


# ---------------------------------------------------------------------------- running

def run_sweep(config: SweepConfig, out: str | Path, *, quiet: bool = False) -> SweepOutcome:
    """Run (or resume) the sweep of ``config`` in ``out``; returns the record and the written paths."""
    t0 = time.perf_counter()
    out = Path(out)
    prep = prepare(config, out)
    sweep = SweepDir(out)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(sweep.lock, busy=f"{out}: another sweep is running in this directory"):
        if not sweep.salt_file.exists():
            write_private(sweep.salt_file, prep.salt)
        write_json(sweep.config, {"config": prep.config.to_dict(), "data_hash": prep.data_hash,
                                  "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        todo = [p for p in prep.points if not point_mod.is_complete(sweep.run_dir(p.id), prep.policy)]
        jobs = prep.config.jobs or default_jobs(max(1, len(todo)))
        threads = prep.config.threads or threads_per_job(jobs)
        work = [_job(prep.config, sweep, p, threads) for p in todo]
        _schedule(work, jobs=jobs, total=len(prep.points), quiet=quiet)
        rows = [_row(sweep, p, prep.policy) for p in prep.points]
        record = build_record(rows=rows, config=prep.config.to_dict(), policy=prep.policy,
                              utility=prep.config.utility, wall_seconds=time.perf_counter() - t0)
        html = render_html(record)
        write_json(sweep.record, record)
        atomic_write(sweep.html, html)
    return SweepOutcome(record=record, paths={"json": sweep.record, "html": sweep.html})


def _job(config: SweepConfig, sweep: SweepDir, p: Point, threads: int) -> point_mod.PointJob:
    return point_mod.PointJob(id=p.id, run_dir=str(sweep.run_dir(p.id)), status_path=str(sweep.status(p.id)),
                              data=config.data.path, config=p.config.to_dict(), threads=threads)


def _schedule(work: list[point_mod.PointJob], *, jobs: int, total: int, quiet: bool) -> None:
    """Run ``work`` in ``jobs`` processes at a time, showing points done/total and each running point's stage."""
    ctx = mp.get_context("spawn")
    messages = ctx.Queue()
    pending = deque(work)
    running: dict[str, tuple[Any, point_mod.PointJob]] = {}
    with _Progress(total=total, done=total - len(work), quiet=quiet) as progress:
        while pending or running:
            while pending and len(running) < jobs:
                job = pending.popleft()
                proc = ctx.Process(target=point_mod.work, args=(job, messages, os.getpid()), name=f"sweep-{job.id}")
                proc.start()
                running[job.id] = (proc, job)
                progress.stage(job.id, "starting")
            try:
                pid, text = messages.get(timeout=0.5)
                if pid in running:
                    progress.stage(pid, text)
            except queue_mod.Empty:
                pass
            for pid, (proc, job) in list(running.items()):
                if proc.exitcode is None:
                    continue
                proc.join()
                del running[pid]
                progress.finished(pid, _final_status(job, proc.exitcode))
    messages.close()
    messages.join_thread()


def _final_status(job: point_mod.PointJob, exitcode: int) -> dict[str, Any]:
    """The worker's status, or a failure when its process died before recording one."""
    status = point_mod.read_status(job.status_path) or point_mod.new_status(job.id)
    if exitcode != 0 and status["state"] not in ("done", "failed"):
        how = f"killed by signal {-exitcode}" if exitcode < 0 else f"exit code {exitcode}"
        status.update(state="failed", error={"type": "WorkerDied", "message": f"the point's process ended ({how})",
                                             "stage": status.get("stage")})
        point_mod.write_status(job.status_path, status)
    return status


class _Progress:
    """A tqdm bar of points done/total whose postfix shows each running point's stage."""

    def __init__(self, *, total: int, done: int, quiet: bool):
        self.bar = None if quiet else tqdm(total=total, initial=done, desc="sweep", unit="point", dynamic_ncols=True)
        self.stages: dict[str, str] = {}

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def stage(self, point_id: str, text: str) -> None:
        self.stages[point_id] = text
        self._show()

    def finished(self, point_id: str, status: dict[str, Any]) -> None:
        self.stages.pop(point_id, None)
        if self.bar is None:
            return
        if status["state"] == "done":
            self.bar.write(f"{point_id}: done ({point_mod.seconds_spent(status):.0f} s)")
        else:
            err = status["error"]
            self.bar.write(f"{point_id}: FAILED in {err['stage'] or 'setup'}: {err['type']}: {err['message']}")
        self.bar.update(1)
        self._show()

    def _show(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(" | ".join(f"{k}: {v}" for k, v in self.stages.items()))


def _row(sweep: SweepDir, p: Point, policy: dict | None) -> dict[str, Any]:
    status = point_mod.read_status(sweep.status(p.id))
    report = sweep.run_dir(p.id) / "report.json"
    done = point_mod.is_complete(sweep.run_dir(p.id), policy)
    return {"id": p.id, "settings": p.settings, "dp": p.dp,
            "state": "done" if done else (status["state"] if status else "not run"),
            "run_dir": str(Path("runs") / p.id), "error": None if done or not status else status["error"],
            "seconds": point_mod.seconds_spent(status), "metrics": point_metrics(read_json(report)) if done else None}
