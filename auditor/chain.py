"""The one stage chain: train -> generate -> audit -> report, through the run directory.

``STAGES`` is the only list of stages: `auditor run` and `auditor demo` run it
from scratch (``run_chain``), every sweep point runs it resumably, stage by stage
(``auditor.sweep.point``). Resumed, a stage whose output the run directory holds
is skipped (``Stage.done``): training with ``model/privacy.json`` (a checkpoint
continues an interrupted one), generation with ``generation.json``; the audit
stage runs only the audits without a file; the report is always rebuilt.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from auditor.audits import audit_names, audit_run, selected_audits
from auditor import execution
from auditor.config import RunConfig
from auditor.overwrite import refuse_overwriting_inputs
from auditor.pipeline import ReportOutcome, generate, report, train
from auditor.policies import load_policy, policy_file
from auditor.progress import Progress, TerminalProgress
from auditor.rundir import RunDir, read_json
from reports.summary import headline


@dataclass
class ChainJob:
    """One run of the chain.

    Attributes:
        data: the records (a path, a DataFrame or a list of texts; None: ``config.data.path``).
        out: the run directory.
        config: every stage's settings (``auditor.config.RunConfig``): data, training and canaries,
            sampling (``generate``: its row count, ``rows_to_generate``), the audits (their seed
            is the run's seed) and the policy of the report's verdict.
        force: overwrite a finished run in ``out`` (a fresh run only).
        resume: skip the stages whose output ``out`` holds; training continues from a checkpoint.
        outside: ids of the facts (``auditor.dp.ledger.FACTS``) the caller knows lie outside the guarantee
            (a sweep's choice among its points: ``sweep_selection``).
    """

    data: Any
    out: Path
    config: RunConfig
    force: bool = False
    resume: bool = False
    outside: tuple[str, ...] = ()

    @property
    def run(self) -> RunDir:
        return RunDir(Path(self.out))

    @property
    def policy(self) -> str | None:
        return self.config.policy.name


@dataclass(frozen=True)
class Stage:
    """A stage: its name, whether the run directory already holds its output, and how to run it."""

    name: str
    done: Callable[[RunDir], bool]
    run: Callable[[ChainJob, Progress], object]


def _train(job: ChainJob, progress: Progress) -> None:
    run = job.run
    resume = job.resume and run.checkpoint.exists() and run.secret_state.exists()
    # resumed without a checkpoint: a training killed before its first one left files to replace
    force = job.force or (job.resume and not resume and run.root.is_dir() and any(run.root.iterdir()))
    with progress.training(resume) as update:
        train(job.data, run.root, config=job.config, resume=resume, force=force, progress=update,
              outside=job.outside, echo=progress.note)


def _generate(job: ChainJob, progress: Progress) -> None:
    run = job.run
    run.clear_stage(run.audit)  # audits of earlier synthetic data would describe other rows
    with progress.generating() as update:  # as many rows as the input records unless the config says
        generate(run.root, config=job.config.generate, progress=update, device=job.config.train.device)


def _audit(job: ChainJob, progress: Progress) -> None:
    run = job.run
    seed = read_json(run.run_json)["seeds"]["seed"] or 0
    audits = job.config.audit.audits
    if job.resume:  # only the audits without a file
        audits = tuple(a for a in (audits or audit_names()) if not (run.audit / f"{a}.json").exists())
    audit_run(run.root, config=replace(job.config.audit, audits=audits, seed=seed), device=job.config.train.device,
              stage=progress.audit)


def _report(job: ChainJob, progress: Progress) -> ReportOutcome:
    return report(job.run.root, policy=job.policy)


STAGES: tuple[Stage, ...] = (
    Stage("train", lambda run: run.finished_training(), _train),
    Stage("generate", lambda run: run.generation.exists(), _generate),
    Stage("audit", lambda run: False, _audit),
    Stage("report", lambda run: False, _report),
)


def check_job(job: ChainJob) -> None:
    """Validate what the later stages read, before the first one writes (``UserError``)."""
    if job.policy is not None:
        load_policy(job.policy)  # a bad policy is bad input: fail before training
        refuse_overwriting_inputs({"--policy": policy_file(job.policy)}, {"--out": job.run.tool_paths()})
    job.config.validate()  # and so are bad settings of the later stages
    selected_audits(job.config.audit)  # and audit names the registry does not know


@dataclass
class RunOutcome:
    run: RunDir
    privacy: dict
    generation: dict
    report: ReportOutcome
    timings: dict[str, float]

    @property
    def exit_code(self) -> int:
        return self.report.exit_code

    def summary(self) -> str:
        """What a user reads at the end of `auditor run` / `auditor demo`."""
        r = self.run.root
        lines = [  # epsilon is stated once, in the headline below
            f"run directory   {r}",
            f"  model         {self.run.model}",
            f"  synthetic     {self.run.existing_synthetic()}  ({self.generation['released']} rows, "
            f"validity {self.generation['validity']:.1%})",
            f"  audits        {self.run.audit}/",
            f"  report        {self.report.paths['html']}",
            f"                {self.report.paths['md']}",
            f"                {self.report.paths['json']}",
        ]
        lines.append("")
        heads = headline(self.report.record)
        width = max([16] + [len(h.label) + 2 for h in heads])  # "Membership inference" is wider than 16
        lines += [f"{h.label:<{width}}{h.value}  {h.detail}".rstrip() for h in heads]
        lines.append(f"{'time':<{width}}" + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items()))
        lines.append(f"{'verdict':<{width}}{self.report.verdict.upper()}")
        return "\n".join(lines)


def run_stage(stage: Stage, job: ChainJob, progress: Progress | None = None) -> object:
    """Run one stage of ``job`` (whatever the run directory holds)."""
    return stage.run(job, progress or Progress())


def run_chain(job: ChainJob, progress: Progress | None = None) -> RunOutcome:
    """Every stage of ``job`` in order (resumed: those not done); returns the outcome with each stage's seconds."""
    progress = progress or Progress()
    check_job(job)
    run = job.run
    timings: dict[str, float] = {}
    results: dict[str, object] = {}

    def timed(stage: Stage) -> None:
        if job.resume and stage.done(run):
            return
        t = time.perf_counter()
        results[stage.name] = run_stage(stage, job, progress)
        timings[stage.name] = time.perf_counter() - t

    timed(STAGES[0])  # training creates and locks the run directory itself
    # The later stages take the run's lock again; holding it across them keeps other writers out in between.
    with run.locked():
        for stage in STAGES[1:]:
            timed(stage)
    return RunOutcome(run=run, privacy=read_json(run.privacy), generation=read_json(run.generation),
                      report=results["report"], timings=timings)


def run_all(data, out: str | Path, *, config: RunConfig, policy: str | None = None, force: bool = False,
            quiet: bool = False, progress: Progress | None = None) -> RunOutcome:
    """train -> generate -> audit -> report into ``out``, each stage with ``config``'s section (`auditor run`,
    `auditor demo`, ``api.run``).

    ``policy``, when given, replaces ``config.policy.name``. ``progress`` defaults to the
    terminal's (bars and audit lines, none with ``quiet``).
    """
    config = copy.deepcopy(config)
    if policy is not None:
        config.policy.name = policy
    job = ChainJob(data=data, out=Path(out), config=config, force=force)
    with execution.activated(config.engine):
        return run_chain(job, progress or TerminalProgress(quiet))
