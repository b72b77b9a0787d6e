"""`auditor demo`: the whole pipeline on the bundled fake patient table, in a few minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.bounds import TRAIN, BoundedType
from auditor.data import DEMO_CSV, DEMO_SCHEMA
from auditor.generate import SampleConfig
from auditor.pipeline import DataConfig, RunConfig, run_all
from auditor.train import TrainConfig
from canaries.config import CanaryConfig

# Training and sampling settings are the defaults fitted to the table (auditor/defaults.py): for the
# demo's ~2,200 training rows of at most 45 tokens that is 20 epochs at batch 512, lr 1e-2, physical
# batch 256 and magnitude min-p 0.1. The identifier columns are fakes (demo_schema.yaml), so rows are
# short: train + generate in under 3 minutes, everything in under 5 on 2 cores. DEMO_TRAIN spells out
# what the defaults give (for the benchmarks; tests/test_defaults.py checks that the two agree).
DEMO_TRAIN = dict(model="small", epochs=20.0, batch_size=512, physical_batch_size=256, lr=1e-2)
# 4-digit PINs in the free-text note: the whole space (10^4) is enumerated exactly for every canary.
DEMO_CANARIES = dict(format="digits:4")


@click.command("demo")
@click.option("--out", default="demo-run", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-dp", is_flag=True, help="The same run without DP, to compare the two reports.")
@click.option("--epsilon", type=BoundedType(TRAIN["epsilon"]), default=8.0, show_default=True)
@click.option("--seed", type=BoundedType(TRAIN["seed"]), default=0, show_default=True)
@click.option("--policy", default="internal", show_default=True, help="internal, external or a YAML file.")
@click.option("--quiet", "-q", is_flag=True)
def command(out, no_dp, epsilon, seed, policy, quiet):
    """Train a DP synthesizer on the bundled fake patient data (2,400 rows, PII columns, canaries),
    generate, audit and write the privacy report; prints where everything is and the verdict."""
    cfg = RunConfig(
        data=DataConfig(path=str(DEMO_CSV), schema=str(DEMO_SCHEMA)),
        train=TrainConfig(dp=not no_dp, epsilon=None if no_dp else epsilon, seed=seed),
        canaries=CanaryConfig(**DEMO_CANARIES),
    )
    outcome = run_all(DEMO_CSV, Path(out), config=cfg, sample=SampleConfig(seed=seed), policy=policy, force=True,
                      quiet=quiet)
    click.echo(outcome.summary())
    return outcome.exit_code
