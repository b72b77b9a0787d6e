"""The ``auditor`` command line: a thin layer over ``auditor.api``.

The command table carries each command's name and one-line help, so that listing
the commands (``auditor --help``) imports none of them; a command's module is
imported when that command is called or asked for its own help, and imports the
heavy libraries (torch, transformers, Opacus) only in its body.

Exit codes: 0 success or policy pass, 1 policy fail, 2 bad usage or bad input
(a one-line message, no traceback).
"""

from __future__ import annotations

import importlib
import sys

import click

from auditor.errors import UserError

# name -> one-line help (the first line of the command's docstring says the same at more length)
COMMANDS: dict[str, str] = {
    "train": "Train a DP synthesizer on DATA (CSV, JSONL, Parquet or text) into the run directory.",
    "generate": "Generate synthetic records into RUN/synthetic.csv (or .jsonl for text).",
    "audit": "Run the audits and write the report.",
    "report": "Write RUN/report.json, report.html and report.md from the run's audit files.",
    "run": "Everything: train a DP synthesizer on DATA, generate, audit, and write the report.",
    "demo": "Train a DP synthesizer on the bundled fake patient data, audit it and write the report.",
    "scan": "Scan FILE (CSV, JSONL, Parquet or text) for PII and print a summary.",
    "sweep": "Run DATA through train -> generate -> audits -> report for every setting of a grid.",
    "release": "Copy a run's publishable files into OUT and scan them for the run's private traces.",
    "verify-dp": "A white-box test that DP-SGD delivers the epsilon it claims.",
    "schema": "Infer DATA's schema (kinds, identifiers to fake, domains) into a YAML file to review.",
}


class _LazyGroup(click.Group):
    """Lists the commands from ``COMMANDS``; imports a command's module only when that command is used."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"auditor.commands.{name.replace('-', '_')}").command

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dp-auditor")
def cli():
    """Train DP synthesizers with canaries, audit what leaked, write a privacy report."""


def main(argv=None):
    try:
        rv = cli.main(args=argv, prog_name="auditor", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
