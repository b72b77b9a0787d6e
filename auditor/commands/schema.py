"""`auditor schema DATA --out schema.yaml`: draft the schema a run would infer, for review."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("schema")
@click.argument("data", type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The schema YAML to write.")
@click.option("--domains", type=click.Choice(["dp", "data"]), default="dp", show_default=True,
              help="Categorical domains and numeric magnitudes: left to DP selection at training, or written "
                   "from the data for review.")
@click.option("--learn-identifiers", is_flag=True, help="Do not declare the detected direct identifiers fake.")
@click.option("--no-ner", is_flag=True, help="Identifier detection with pattern recognizers and column names only.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--quiet", "-q", is_flag=True)
def command(data, out, domains, learn_identifiers, no_ner, force, quiet):
    """Infer DATA's schema (kinds, identifiers to fake, domains) into a YAML file to review and then
    declare public with `--schema`."""
    from auditor.errors import UserError
    from auditor.identifiers import decision_table, fake_identifiers
    from auditor.loading import load_dataset, resolve_schema
    from auditor.overwrite import refuse_overwriting_inputs
    from auditor.schema_draft import domains_from_data, render_schema
    from reports.atomic import atomic_write

    refuse_overwriting_inputs({"DATA": data}, {"--out": out})
    if Path(out).exists() and not force:
        raise UserError(f"{out} exists (nothing was written); give --force to overwrite it")
    dataset = load_dataset(data)
    schema, _ = resolve_schema(dataset, None)
    detection = None
    if not dataset.is_text and not learn_identifiers:
        schema, detection = fake_identifiers(schema, dataset.frame, ner=not no_ner)
    if domains == "data" and not dataset.is_text:
        schema = domains_from_data(schema, dataset.frame)
    text = render_schema(schema, detection=detection, domains=domains, data=str(data), out=str(out),
                         n_records=len(dataset.frame))
    atomic_write(out, text, mode=0o600)  # drafted from private data: the reviewer decides what becomes public
    if not quiet:
        if detection is not None:
            click.echo(decision_table(detection))
        click.echo(f"wrote {out}: {len(schema.columns)} columns, {len(schema.columns) - len(schema.learned)} faked; "
                   f"review it, then: auditor run {data} --schema {out} --out RUN")
    return 0
