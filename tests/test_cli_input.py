"""The CLI's front door: --help of every command, --config files, and bad input before any progress bar."""

import pytest

from auditor.cli import COMMANDS
from cli_helpers import run_cli


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0 and out.startswith(f"Usage: auditor {command} ")
    assert ("--config FILE" in out) == (command in ("train", "run", "demo", "sweep"))


def test_the_command_list_needs_no_command_module(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for name, line in COMMANDS.items():
        assert f"  {name} " in out and line.split()[0] in out


@pytest.mark.parametrize("args", [["train", "missing.csv"], ["run", "missing.csv"], ["generate", "no-run"]],
                         ids=["train", "run", "generate"])
def test_bad_input_errors_before_any_progress_bar(tmp_path, capsys, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args, *(["--out", "run"] if args[0] != "generate" else []))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "%|" not in err and "it/s" not in err, err
    assert not (tmp_path / "run").exists()


def test_a_config_file_gives_the_data_and_a_bad_one_is_one_line(tmp_path, capsys):
    conf = tmp_path / "run.yaml"
    conf.write_text("data: missing.csv\ntrain: {epochs: 2}\n")
    code, _, err = run_cli(capsys, "train", "--config", conf, "--out", tmp_path / "run")
    assert code == 2 and "missing.csv" in err and err.count("\n") == 1
    conf.write_text("train: {epochs: 2}\n")
    code, _, err = run_cli(capsys, "train", "--config", conf, "--out", tmp_path / "run")
    assert code == 2 and err == "error: no input data: give DATA or `data:` in the --config file\n"
    conf.write_text("train: {epohcs: 2}\n")
    code, _, err = run_cli(capsys, "run", "x.csv", "--config", conf, "--out", tmp_path / "run")
    assert code == 2 and err == "error: config: unknown train key(s) epohcs\n"
    assert not (tmp_path / "run").exists()
