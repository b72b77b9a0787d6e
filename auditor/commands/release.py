"""``auditor release RUN --out DIR``: the files of a run meant for publication, scanned for leaks."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("release")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Bundle directory to create (new or empty).")
@click.option("--with-model", is_flag=True, help="Also bundle the model: weights, config.json, codec.json, privacy.json.")
@click.option("--no-ner", is_flag=True, help="Find training PII with pattern recognizers only (faster; misses names).")
def command(run_dir: Path, out: Path, with_model: bool, no_ner: bool) -> int:
    """Copy the synthetic data, the report in its public form (no seeds, no hashes of private
    data, no salted hashes, no per-row examples) and, with --with-model, the model's public files
    into OUT, then scan them for the run's private traces: seeds and RNG states, private
    hashes and salts, exact training losses, canary secrets, raw training PII, private files
    and wide file modes.

    Exits 1, writing nothing, when anything is found (one line per finding, values masked).
    """
    # Deferred on purpose: the API imports torch and transformers (seconds), which --help never needs.
    from auditor import api

    result = api.release(run_dir, out, with_model=with_model, ner=not no_ner)
    if not result.ok:
        for finding in result.findings:
            click.echo(f"leak: {finding.line()}")
        click.echo(f"refused: {len(result.findings)} finding(s); nothing written to {out}", err=True)
        return 1
    for name in result.files:
        click.echo(f"  {out / name}")
    verdict = (result.verdict or "no-policy").upper()
    click.echo(f"released {len(result.files)} files to {out} (report verdict {verdict}); scan found no private trace")
    return 0
