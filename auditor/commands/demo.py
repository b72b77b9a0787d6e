"""`auditor demo`: the whole pipeline on the bundled fake patient table, in a few minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.commands._options import ENGINE_FLAGS, build_config, config_option, options

# The demo's own defaults, under --config and the flags. Training and sampling settings are the
# defaults fitted to the table (auditor/defaults.py): for the demo's ~2,200 training rows of at most
# 45 tokens that is 20 epochs at batch 512, lr 1e-2, physical batch 256 and magnitude min-p 0.1. The
# identifier columns are fakes (demo_schema.yaml), so rows are short: train + generate in under 3
# minutes, everything in under 5 on 2 cores. DEMO_TRAIN spells out what the defaults give (for the
# benchmarks; tests/test_defaults.py checks that the two agree). 4-digit PINs in the free-text note:
# the whole space (10^4) is enumerated exactly for every canary.
DEMO_TRAIN = dict(model="small", epochs=20.0, batch_size=512, physical_batch_size=256, lr=1e-2)
DEMO_CANARIES = dict(format="digits:4")
DEMO = {
    "train": {"model": "small", "seed": 0},
    "canaries": dict(DEMO_CANARIES),
    "policy": {"name": "internal"},
}
_SHOWN = {"train.seed": 0, "policy.name": "internal"}


@click.command("demo")
@click.option("--out", default="demo-run", show_default=True, type=click.Path(file_okay=False))
@config_option
@options("no_dp", "epsilon", "seed", "policy", *ENGINE_FLAGS, defaults=_SHOWN)
@click.option("--quiet", "-q", is_flag=True)
@click.pass_context
def command(ctx, out, quiet, **values):
    """Train a DP synthesizer on the bundled fake patient data (2,400 rows, PII columns, canaries),
    generate, audit and write the privacy report; prints where everything is and the verdict."""
    # Deferred on purpose: auditor.data imports pandas and the API torch, transformers and Opacus (seconds),
    # which --help never needs.
    from auditor import api
    from auditor.data import DEMO_CSV, DEMO_SCHEMA

    cfg = build_config(ctx, values, base={**DEMO, "data": {"path": str(DEMO_CSV), "schema": str(DEMO_SCHEMA)}})
    cfg.generate.seed = cfg.train.seed  # one seed drives the demo: split, canary layout, model and sampler

    outcome = api.run(cfg.data.path, Path(out), config=cfg, force=True, quiet=quiet)
    click.echo(outcome.summary())
    return outcome.exit_code
