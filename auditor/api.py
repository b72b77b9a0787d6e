"""The Python API: the same verbs as the CLI, on paths or pandas DataFrames.

    from auditor import api
    cfg = api.RunConfig(train=api.TrainConfig(epsilon=4.0, epochs=10))
    trained = api.train(df, "runs/r1", config=cfg)        # DataFrame, list of texts or a path
    gen = api.generate("runs/r1", num_records=1000)       # -> .path, .stats
    api.audit("runs/r1")                                  # -> {audit name: json path}
    rep = api.report("runs/r1", policy="internal")        # -> .record (report.json), .verdict, .paths
    out = api.run(df, Path("runs/r2"), config=cfg, policy="external")   # everything; out.exit_code
    api.audit_files(synthetic="s.csv", train="t.csv", holdout="h.csv", out="audit-dir")  # any generator
"""

from auditor.audits import AuditConfig, audit_files
from auditor.audits import audit_run as audit
from auditor.generate import SampleConfig
from auditor.pipeline import DataConfig, RunConfig, generate, report, train
from auditor.pipeline import run_all as run
from auditor.train import TrainConfig
from canaries.config import CanaryConfig

__all__ = ["AuditConfig", "CanaryConfig", "DataConfig", "RunConfig", "SampleConfig", "TrainConfig", "audit",
           "audit_files", "generate", "report", "run", "train"]
