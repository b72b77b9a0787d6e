"""The Python API: the same verbs as the CLI, on paths or pandas DataFrames; the CLI commands call these.

    from auditor import api
    cfg = api.RunConfig(train=api.TrainConfig(epsilon=4.0, epochs=10))
    trained = api.train(df, "runs/r1", config=cfg)        # DataFrame, list of texts or a path
    gen = api.generate("runs/r1", num_records=1000)       # -> .path, .stats
    api.audit("runs/r1")                                  # -> {audit name: json path}
    rep = api.report("runs/r1", policy="internal")        # -> .record (report.json), .verdict, .paths, .exit_code
    out = api.run(df, Path("runs/r2"), config=cfg, policy="external")   # everything; out.exit_code
    api.audit_files(synthetic="s.csv", train="t.csv", holdout="h.csv", out="audit-dir")  # any generator
    cfg = api.load_config("run.yaml")                     # a RunConfig from a YAML file
    api.sweep(api.SweepConfig.from_dict({...}), "sweeps/s1")  # a grid of runs (docs/sweep.md)
    api.release("runs/r1", "bundle")                      # the publishable files, scanned for private traces
"""

from auditor.audits import audit_files
from auditor.audits import audit_run as audit
from auditor.config import (AuditConfig, DataConfig, PolicyConfig, RunConfig, SampleConfig, TrainConfig,
                            from_mapping, load_yaml)
from auditor.pipeline import generate, report, train
from auditor.pipeline import run_all as run
from auditor.release import release
from auditor.sweep.config import SweepConfig
from auditor.train import is_main_process
from canaries.config import CanaryConfig


def sweep(config: SweepConfig, out, *, quiet: bool = False):
    """Run (or resume) the sweep of ``config`` in ``out``; returns its record, paths and exit code."""
    # Deferred on purpose: the sweep's plots import matplotlib (seconds), which the other verbs never need.
    from auditor.sweep.runner import run_sweep

    return run_sweep(config, out, quiet=quiet)


def load_config(path) -> RunConfig:
    """The ``RunConfig`` of a YAML file (the shape of ``auditor.config``); relative paths resolve beside it."""
    return from_mapping(load_yaml(path))


__all__ = ["AuditConfig", "CanaryConfig", "DataConfig", "PolicyConfig", "RunConfig", "SampleConfig", "SweepConfig",
           "TrainConfig", "audit", "audit_files", "generate", "is_main_process", "load_config", "release", "report",
           "run", "sweep", "train"]
