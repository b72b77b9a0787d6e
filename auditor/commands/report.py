"""``auditor report RUN``: build report.json/html/md from a run directory; gate on a policy."""

from __future__ import annotations

from pathlib import Path

import click
from reports.build import build_report
from reports.errors import ReportInputError
from reports.summary import VERDICT_TEXT, failing, fmt
from reports.write import write_report

from auditor.errors import UserError
from auditor.overwrite import refuse_overwriting_inputs
from auditor.policies import load_policy, policy_file
from auditor.rundir import RunDir


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--policy", "policy_name", metavar="P",
              help="Policy to gate on: 'internal', 'external', or a YAML file of thresholds.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; the exit code says pass (0) or fail (1).")
def command(run_dir: Path, policy_name: str | None, quiet: bool) -> int:
    """Write RUN/report.json, report.html and report.md from the run's audit files.

    Exits 1 when the verdict under --policy is fail, 0 otherwise.
    """
    run = RunDir(run_dir)
    refuse_overwriting_inputs({"--policy": policy_file(policy_name)}, {"report": run.report_files()})
    policy = load_policy(policy_name) if policy_name is not None else None
    with run.locked():
        try:
            record = build_report(run_dir, policy=policy)
        except ReportInputError as exc:
            raise UserError(str(exc)) from exc
        paths = write_report(run_dir, record)
    if not quiet:
        for c in failing(record):
            value = fmt(c["value"]) if c["value"] is not None else f"n/a ({c['note']})"
            click.echo(f"FAIL {c['name']}: {value} (limit {c['op']} {fmt(c['threshold'])})")
        click.echo(f"verdict: {VERDICT_TEXT[record['verdict']]}")
        click.echo(f"report: {paths['html']}")
    return 1 if record["verdict"] == "fail" else 0
