"""`auditor run DATA --out RUN`: train -> generate -> all audits -> report, gated on a policy."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.commands._options import run_config, sample_config, sample_options, train_options
from auditor.pipeline import run_all


@click.command("run")
@click.argument("data", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False))
@train_options
@sample_options
@click.option("--policy", default=None, help="internal, external, or a YAML file of thresholds.")
@click.option("--no-ner", is_flag=True, help="PII scan with pattern recognizers only.")
@click.option("--force", is_flag=True, help="Overwrite a finished run in --out.")
@click.option("--quiet", "-q", is_flag=True)
def command(data, out, num_records, scrub_pii, policy, no_ner, force, quiet, temperature, top_p, magnitude_min_p, gen_seed, **opts):
    """Everything: train a DP synthesizer on DATA, generate, audit, and write the report."""
    cfg = run_config(**opts)
    outcome = run_all(data, Path(out), config=cfg, num_records=num_records,
                      sample=sample_config(temperature=temperature, top_p=top_p, magnitude_min_p=magnitude_min_p, gen_seed=gen_seed),
                      scrub_pii=scrub_pii, policy=policy, pii_ner=not no_ner, force=force, quiet=quiet)
    click.echo(outcome.summary())
    return outcome.exit_code
