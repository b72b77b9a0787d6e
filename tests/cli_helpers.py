"""Run the CLI in-process and capture exit code and output."""

import pytest

from auditor.cli import main


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err
