"""`auditor generate RUN`: sample synthetic records from a trained run."""

from __future__ import annotations

import click

from auditor.commands._options import ENGINE_FLAGS, SAMPLE_FLAGS, build_config, options


@click.command("generate")
@click.argument("run", type=click.Path(file_okay=False))
@options(*SAMPLE_FLAGS, "device", *ENGINE_FLAGS)
@click.option("--quiet", "-q", is_flag=True)
@click.pass_context
def command(ctx, run, quiet, **values):
    """Generate synthetic records into RUN/synthetic.csv (or .jsonl for text)."""
    cfg = build_config(ctx, values)
    # Deferred on purpose: the API imports torch and transformers (seconds), which --help never needs.
    from auditor import api, execution
    from auditor.progress import count_progress

    with execution.activated(cfg.engine), count_progress(quiet, "generate") as progress:
        outcome = api.generate(run, config=cfg.generate, device=cfg.train.device, progress=progress)
    s = outcome.stats
    click.echo(f"wrote {outcome.path}: {s['released']} rows (validity {s['validity']:.1%}, "
               f"{s['scrubbed_canary_rows']} canary rows and {s['scrubbed_pii_rows']} PII rows scrubbed)")
    return 0
