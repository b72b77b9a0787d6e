"""`auditor train DATA --out RUN`: DP-SGD training of a synthesizer with planted canaries."""

from __future__ import annotations

import click

from auditor.commands._options import TRAIN_FLAGS, build_config, config_option, options


@click.command("train")
@click.argument("data", type=click.Path(), required=False)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@config_option
@options(*TRAIN_FLAGS)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@click.option("--force", is_flag=True, help="Overwrite a finished run in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def command(ctx, data, out, resume, force, quiet, **values):
    """Train a DP synthesizer on DATA (CSV, JSONL, Parquet or text) into the run directory."""
    cfg = build_config(ctx, values, data=data, need_data=True)
    # Deferred on purpose: the API imports torch, transformers and Opacus (seconds), which --help never needs.
    from auditor import api
    from auditor.dp.ledger import fact
    from auditor.progress import train_progress
    from reports.summary import fmt_epsilon

    main = api.is_main_process()  # under torchrun only rank 0 shows progress and prints
    with train_progress(quiet or not main) as progress:
        outcome = api.train(cfg.data.path, out, config=cfg, force=force, resume=resume, progress=progress,
                            echo=None if quiet or not main else (lambda s: click.echo(s, err=True)))
    if not main:
        return 0
    p = outcome.privacy
    if p["dp"]:
        click.echo(f"trained {out}: epsilon = {fmt_epsilon(p['epsilon'])} (delta = {p['delta']:.3g}, {p['accountant']}), "
                   f"noise multiplier {p['noise_multiplier']:.3f}, C = {p['max_grad_norm']}, {p['steps']} steps "
                   f"in {outcome.seconds:.0f} s")
    else:
        click.echo(f"trained {out} WITHOUT DP (no DP guarantee), {p['steps']} steps in {outcome.seconds:.0f} s")
    if p.get("reproducible_noise"):
        click.echo(f"NO DP GUARANTEE: {fact('reproducible_noise').sentence}")
    return 0
