"""`auditor run DATA --out RUN`: train -> generate -> all audits -> report, gated on a policy."""

from __future__ import annotations

import click

from auditor.commands._options import AUDIT_FLAGS, ENGINE_FLAGS, SAMPLE_FLAGS, TRAIN_FLAGS, build_config, config_option, options


@click.command("run")
@click.argument("data", type=click.Path(), required=False)
@click.option("--out", required=True, type=click.Path(file_okay=False))
@config_option
@options(*TRAIN_FLAGS, *SAMPLE_FLAGS, *AUDIT_FLAGS, *ENGINE_FLAGS)
@click.option("--force", is_flag=True, help="Overwrite a finished run in --out.")
@click.option("--quiet", "-q", is_flag=True)
@click.pass_context
def command(ctx, data, out, force, quiet, **values):
    """Everything: train a DP synthesizer on DATA, generate, audit, and write the report."""
    cfg = build_config(ctx, values, data=data, need_data=True)
    # Deferred on purpose: the API imports torch, transformers and Opacus (seconds), which --help never needs.
    from auditor import api

    outcome = api.run(cfg.data.path, out, config=cfg, force=force, quiet=quiet)
    click.echo(outcome.summary())
    return outcome.exit_code
