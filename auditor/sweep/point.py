"""One point of a sweep, run resumably in its own process: train -> generate -> audit -> report.

A stage runs only when the run directory lacks its output: ``model/privacy.json``
(train; a checkpoint resumes it), ``generation.json`` (generate), the audit
files (audit; only the missing ones run) and a ``report.json`` made with the
sweep's policy (report). So a killed point continues where it stopped and a
finished one is never trained again.

The point's status file (``DIR/status/<id>.json``) records the state, each
stage's attempts and seconds, and a failure as its error type and a one-line
message (a ``UserError``'s own message, which never holds data values, or
where any other exception was raised; never the exception text, which may).

This module imports nothing heavy at import time: the worker process sets its
thread limits before torch, numpy's BLAS and OpenMP start.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

# Light (no torch, numpy or pandas): a point's process sets its thread limits before those load.
from auditor.progress import Progress

STAGES = ("train", "generate", "audit", "report")
Notify = Callable[[str], None]
_OWN_PACKAGES = ("auditor", "canaries", "attacks", "reports")


@dataclass(frozen=True)
class PointJob:
    """Everything a worker process needs for one point (plain data: it crosses a process boundary)."""

    id: str
    run_dir: str
    status_path: str
    data: str
    config: dict  # RunConfig.to_dict(): the point's settings of every stage
    threads: int


# ---------------------------------------------------------------------------- status file

def read_status(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def new_status(point_id: str) -> dict[str, Any]:
    return {"id": point_id, "state": "pending", "stage": None, "error": None, "pid": None,
            "stages": {s: {"attempts": 0, "seconds": 0.0, "done": False} for s in STAGES}}


def write_status(path: str | Path, status: dict[str, Any]) -> None:
    from auditor.rundir import write_json

    status["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(Path(path), status)


def seconds_spent(status: dict[str, Any] | None) -> float | None:
    """Compute time of a point over all its attempts (stages that finished)."""
    if status is None:
        return None
    return round(sum(s["seconds"] for s in status["stages"].values()), 2)


def is_complete(run_dir: str | Path, policy: dict | None) -> bool:
    """Whether the point has a report made with ``policy`` (``Policy.to_dict()`` or None)."""
    path = Path(run_dir) / "report.json"
    if not path.exists():
        return False
    return json.loads(path.read_text(encoding="utf-8")).get("policy") == policy


# ---------------------------------------------------------------------------- failures

def failure(exc: BaseException, stage: str | None) -> dict[str, str | None]:
    """``{"type", "message", "stage"}`` of a failed point; the message is one line and holds no data value."""
    from auditor.errors import UserError

    if isinstance(exc, UserError):
        message = " ".join(str(exc).split())[:300]
    else:
        message = "raised at " + raised_at(exc)
    return {"type": type(exc).__name__, "message": message, "stage": stage}


def raised_at(exc: BaseException) -> str:
    """``package/module.py:LINE in function`` of the innermost frame of our own code (else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown location"
    own = [f for f in frames if _own_module(f.filename)]
    frame = (own or frames)[-1]
    return f"{_short(frame.filename)}:{frame.lineno} in {frame.name}"


def _own_module(filename: str) -> bool:
    return any(p in _OWN_PACKAGES for p in Path(filename).parts[-3:-1])


def _short(filename: str) -> str:
    """The path from our package down (``auditor/dp/train.py``), else the last two parts."""
    parts = Path(filename).parts
    for i in range(max(0, len(parts) - 3), len(parts) - 1):
        if parts[i] in _OWN_PACKAGES:
            return "/".join(parts[i:])
    return "/".join(parts[-2:])


# ---------------------------------------------------------------------------- the stages

def run_stages(job: PointJob, notify: Notify) -> dict[str, Any]:
    """Run the ``auditor.chain`` stages the point still needs; returns its final status (also in the status file)."""
    # the chain imports torch: loaded only here, after the worker has set its thread limits
    from auditor import execution
    from auditor.chain import STAGES as CHAIN

    status = read_status(job.status_path) or new_status(job.id)
    status.update(state="running", error=None, pid=os.getpid())
    stage = None
    try:
        chain_job = _chain_job(job)
        progress = _NotifyProgress(notify)
        # Points already run side by side, one per process: each runs its partitionable stages in itself.
        with execution.activated(execution.InProcess()):
            for step in CHAIN:
                stage = step.name
                if _needed(step, chain_job, status):
                    _run_stage(step, chain_job, status, progress, job)
        status.update(state="done", stage=None)
    except Exception as exc:  # the point fails, the sweep goes on: record type and where, never the text
        status.update(state="failed", error=failure(exc, stage))
    write_status(job.status_path, status)
    return status


def _chain_job(job: PointJob):
    """The point as a resumable ``auditor.chain.ChainJob``."""
    from auditor.chain import ChainJob
    from auditor.config import RunConfig

    return ChainJob(data=job.data, out=Path(job.run_dir), config=RunConfig.from_dict(job.config), resume=True,
                    outside=("sweep_selection",))


def _needed(step, chain_job, status: dict[str, Any]) -> bool:
    if step.name == "audit" and status["stages"]["audit"]["done"]:
        return False
    # the report: the runner starts a worker only for points without a report under this policy
    return not step.done(chain_job.run)


def _run_stage(step, chain_job, status: dict[str, Any], progress, job: PointJob) -> None:
    from auditor.chain import run_stage

    record = status["stages"][step.name]
    record["attempts"] += 1
    record["done"] = False
    if step.name in ("train", "generate"):
        status["stages"]["audit"]["done"] = False  # new model or new data: audit again
    status["stage"] = step.name
    write_status(job.status_path, status)
    progress.notify(step.name)
    t0 = time.perf_counter()
    run_stage(step, chain_job, progress)
    record["seconds"] = round(record["seconds"] + time.perf_counter() - t0, 2)
    record["done"] = True
    write_status(job.status_path, status)


class _NotifyProgress(Progress):
    """The chain's progress as messages to the sweep's parent process (training: at most one a second)."""

    def __init__(self, notify: Notify) -> None:
        self.notify = notify

    @contextmanager
    def training(self, resumed: bool) -> Iterator[Callable[[int, int, float, float | None], None]]:
        last = [0.0]

        def update(step: int, steps: int, loss: float, eps: float | None) -> None:
            if time.monotonic() - last[0] >= 1.0 or step == steps:
                last[0] = time.monotonic()
                self.notify(f"train {step}/{steps}" + (" (resumed)" if resumed else ""))

        yield update

    @contextmanager
    def generating(self) -> Iterator[Callable[[int, int], None]]:
        yield lambda done, total: self.notify(f"generate {done}/{total}")

    def audit(self, name: str) -> None:
        self.notify(f"audit: {name}")

    # note(): the base's, which shows nothing; the train stage's decisions (fitted settings, identifier
    # table) are in each point's run.json and privacy.json.


# ---------------------------------------------------------------------------- the worker process

def work(job: PointJob, queue, parent_pid: int) -> None:
    """Entry point of a point's process: limit threads, watch the parent, lock the point, run its stages.

    Messages to the parent are ``(point id, text)`` on ``queue``.
    """
    _limit_threads(job.threads)
    _exit_with_parent(parent_pid)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the sweep shows its own progress
    # Opacus' per-sample hooks make torch repeat this once per step; it is expected and would bury the progress.
    warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
    lock = Path(job.status_path).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        # A worker orphaned by a killed sweep exits within a second (below); wait for it.
        fcntl.flock(fh, fcntl.LOCK_EX)
        run_stages(job, lambda text: queue.put((job.id, text)))


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _exit_with_parent(parent_pid: int) -> None:
    """Exit when the sweep process is gone (killed): no orphan keeps writing into a run dir."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
