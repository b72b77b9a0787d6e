"""`auditor generate RUN`: sample synthetic records from a trained run."""

from __future__ import annotations

import click
from pathlib import Path

from auditor.commands._options import count_progress, sample_config, sample_options
from auditor.pipeline import generate
from auditor.rundir import RunDir, read_json


@click.command("generate")
@click.argument("run", type=click.Path(file_okay=False))
@sample_options
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def command(run, num_records, scrub_pii, device, quiet, **opts):
    """Generate synthetic records into RUN/synthetic.csv (or .jsonl for text)."""
    rd = RunDir(Path(run))
    rd.require_trained()
    n = read_json(rd.run_json)["n_records"] if num_records is None else num_records
    with count_progress(quiet, "generate") as progress:
        outcome = generate(run, num_records=n, config=sample_config(**opts), device=device, scrub_pii=scrub_pii,
                           progress=progress)
    s = outcome.stats
    click.echo(f"wrote {outcome.path}: {s['released']} rows (validity {s['validity']:.1%}, "
               f"{s['scrubbed_canary_rows']} canary rows and {s['scrubbed_pii_rows']} PII rows scrubbed)")
    return 0
