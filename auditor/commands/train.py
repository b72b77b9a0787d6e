"""`auditor train DATA --out RUN`: DP-SGD training of a synthesizer with planted canaries."""

from __future__ import annotations

import click

from auditor.commands._options import run_config, train_options, train_progress
from auditor.pipeline import train
from auditor.train import is_main_process


@click.command("train")
@click.argument("data", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@train_options
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@click.option("--force", is_flag=True, help="Overwrite a finished run in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(data, out, resume, force, quiet, **opts):
    """Train a DP synthesizer on DATA (CSV, JSONL, Parquet or text) into the run directory."""
    cfg = run_config(**opts)
    with train_progress(quiet or not is_main_process()) as progress:
        outcome = train(data, out, config=cfg, force=force, resume=resume, progress=progress,
                        echo=None if quiet or not is_main_process() else (lambda s: click.echo(s, err=True)))
    if not is_main_process():
        return 0
    p = outcome.privacy
    if p["dp"]:
        click.echo(f"trained {out}: epsilon = {p['epsilon']:.3f} (delta = {p['delta']:.3g}, {p['accountant']}), "
                   f"noise multiplier {p['noise_multiplier']:.3f}, C = {p['max_grad_norm']}, {p['steps']} steps "
                   f"in {outcome.seconds:.0f} s")
    else:
        click.echo(f"trained {out} WITHOUT DP (no DP guarantee), {p['steps']} steps in {outcome.seconds:.0f} s")
    if p.get("reproducible_noise"):
        click.echo("NO DP GUARANTEE: the noise seed is recorded (--reproducible-noise); for debugging and tests only")
    return 0
