"""The ``auditor`` command line: a thin layer over ``auditor.api``.

Exit codes: 0 success or policy pass, 1 policy fail, 2 bad usage or bad input
(a one-line message, no traceback).
"""

from __future__ import annotations

import importlib
import sys

import click

from auditor.errors import UserError

COMMANDS = ("train", "generate", "audit", "report", "run", "demo", "scan", "sweep", "release", "verify-dp", "schema")


class _LazyGroup(click.Group):
    """Imports a command's module only when it is called (keeps --help fast)."""

    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx, name):
        return self._load(name)

    @staticmethod
    def _load(name):
        if name not in COMMANDS:
            return None
        try:
            module = importlib.import_module(f"auditor.commands.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name == f"auditor.commands.{name.replace('-', '_')}":
                return None
            raise
        return module.command


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
