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
    analysis = api.scan("synthetic.csv", against="train.csv")  # PII findings (auditor.pii.pii_audit.analyze)
    api.verify_dp("runs/r1")                              # white-box check of the DP-SGD code (docs/verify-dp.md)
"""

from auditor.audits import audit_files
from auditor.audits import audit_run as audit
from auditor.chain import run_all as run
from auditor.config import (AuditConfig, DataConfig, PolicyConfig, RunConfig, SampleConfig, TrainConfig,
                            from_mapping, load_yaml)
from auditor.pipeline import generate, report, train
from auditor.release import release
from auditor.sweep.config import SweepConfig
from auditor.train import is_main_process
from canaries.config import CanaryConfig


def sweep(config: SweepConfig, out, *, quiet: bool = False):
    """Run (or resume) the sweep of ``config`` in ``out``; returns its record, paths and exit code."""
    # Deferred on purpose: the sweep's plots import matplotlib (seconds), which the other verbs never need.
    from auditor.sweep.runner import run_sweep

    return run_sweep(config, out, quiet=quiet)


def scan(file, *, against=None, holdout=None, config=None):
    """PII scan of a records file (CSV, JSONL, Parquet or text), optionally classified against the
    training file ``against`` with ``holdout`` as the chance control; returns the in-memory analysis
    (``auditor.pii.pii_audit.report`` redacts it, ``reveal`` gives the unredacted findings).
    """
    # Deferred on purpose: the PII engine imports Presidio and spaCy (seconds), which the other verbs never need.
    from auditor.data import load_records
    from auditor.pii.config import load_config as load_pii_config
    from auditor.pii.pii_audit import analyze

    def records(path):
        if path is None:
            return None
        dataset = load_records(path)
        return dataset.frame["text"].tolist() if dataset.is_text else dataset.frame

    return analyze(synthetic=records(file), train=records(against), holdout=records(holdout),
                   config=config or load_pii_config())


def verify_dp(run=None, **claim_and_trial) -> dict:
    """``auditor verify-dp``: see :func:`auditor.dp.verify.verify_dp` for the arguments."""
    # Deferred on purpose: the check trains a model (torch), which the other verbs import on their own.
    from auditor.dp.verify import verify_dp as check

    return check(run, **claim_and_trial)


def load_config(path) -> RunConfig:
    """The ``RunConfig`` of a YAML file (the shape of ``auditor.config``); relative paths resolve beside it."""
    return from_mapping(load_yaml(path))


__all__ = ["AuditConfig", "CanaryConfig", "DataConfig", "PolicyConfig", "RunConfig", "SampleConfig", "SweepConfig",
           "TrainConfig", "audit", "audit_files", "generate", "is_main_process", "load_config", "release", "report",
           "run", "scan", "sweep", "train", "verify_dp"]
