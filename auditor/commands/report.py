"""``auditor report RUN``: build report.json/html/md from a run directory; gate on a policy."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.commands._options import FLAGS, click_option


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click_option(FLAGS["policy"])
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; the exit code says pass (0) or fail (1).")
def command(run_dir: Path, policy: str | None, quiet: bool) -> int:
    """Write RUN/report.json, report.html and report.md from the run's audit files.

    Exits 1 when the verdict under --policy is fail, 0 otherwise.
    """
    # Deferred on purpose: the API imports torch and transformers (seconds), which --help never needs.
    from auditor import api
    from reports.summary import VERDICT_TEXT, failing, fmt

    outcome = api.report(run_dir, policy=policy)
    if not quiet:
        for c in failing(outcome.record):
            value = fmt(c["value"]) if c["value"] is not None else f"n/a ({c['note']})"
            click.echo(f"FAIL {c['name']}: {value} (limit {c['op']} {fmt(c['threshold'])})")
        click.echo(f"verdict: {VERDICT_TEXT[outcome.verdict]}")
        click.echo(f"report: {outcome.paths['html']}")
    return outcome.exit_code
