"""Bad input: one line naming the problem, exit code 2, no traceback, nothing written."""

import pytest

from auditor.data import DEMO_SCHEMA
from cli_helpers import run_cli


def _check(capsys, out_dir, *args):
    code, out, err = run_cli(capsys, *args)
    assert code == 2, (out, err)
    lines = [x for x in err.strip().splitlines() if x]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    assert not out_dir.exists(), "a bad input wrote the run directory"
    return lines[0]


def _csv(tmp_path, text, name="d.csv", mode="w"):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


TRAIN = ["--model", "tiny", "--quiet", "--seed", "1"]


@pytest.mark.parametrize("case,content,name,needle", [
    ("missing", None, "nope.csv", "no such file"),
    ("empty", "", "d.csv", "empty"),
    ("header-only", "a,b,c\n", "d.csv", "no records"),
    ("undecodable", b"a,b\n1,\xff\xfe\n", "d.csv", "UTF-8"),
    ("ragged", "a,b\n1,2\n3,4,5\n", "d.csv", "line 3"),
    ("unsupported", "x", "d.xlsx", "unsupported"),
])
def test_bad_files(tmp_path, capsys, case, content, name, needle):
    path = tmp_path / name if content is None else _csv(tmp_path, content, name)
    out = tmp_path / "run"
    line = _check(capsys, out, "train", path, "--out", out, *TRAIN)
    assert needle.lower() in line.lower()


def test_too_few_records(tmp_path, capsys, demo_small_csv):
    lines = demo_small_csv.read_text().splitlines()[:11]
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    out = tmp_path / "run"
    line = _check(capsys, out, "train", path, "--out", out, "--schema", DEMO_SCHEMA, "--no-canaries", *TRAIN)
    assert "batch-size" in line


@pytest.mark.parametrize("flags,needle", [
    (["--epsilon", "0"], "epsilon"),
    (["--epsilon", "-1"], "epsilon"),
    (["--delta", "0.5"], "delta"),
    (["--delta", "0.004"], "1/n"),
    (["--no-dp", "--epsilon", "3"], "conflicts"),
    (["--epsilon", "3", "--noise-multiplier", "1.0"], "not both"),
    (["--model", "huge"], "preset"),
    (["--canary-repetitions", "1,x"], "canar"),
])
def test_bad_flags(tmp_path, capsys, demo_small_csv, flags, needle):
    out = tmp_path / "run"
    line = _check(capsys, out, "train", demo_small_csv, "--out", out, "--schema", DEMO_SCHEMA, *TRAIN, *flags)
    assert needle in line


def test_schema_mismatch_names_column_not_value(tmp_path, capsys, demo_small_csv):
    text = demo_small_csv.read_text().replace("hypertension", "HYPERTENSION-X", 1)
    path = _csv(tmp_path, text)
    out = tmp_path / "run"
    line = _check(capsys, out, "train", path, "--out", out, "--schema", DEMO_SCHEMA, *TRAIN)
    assert "diagnosis" in line and "HYPERTENSION-X" not in line


def test_finished_run_is_not_overwritten(tmp_path, capsys, demo_small_csv):
    out = tmp_path / "run"
    args = ["train", demo_small_csv, "--out", out, "--schema", DEMO_SCHEMA, "--epochs", "0.2", "--no-canaries",
            "--batch-size", "32", *TRAIN]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    before = (out / "model" / "privacy.json").read_bytes()
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "--force" in err and "Traceback" not in err
    assert (out / "model" / "privacy.json").read_bytes() == before
    code, _, err = run_cli(capsys, *args, "--force")
    assert code == 0, err


def test_generate_without_training(tmp_path, capsys):
    code, _, err = run_cli(capsys, "generate", tmp_path / "none", "-n", "5")
    assert code == 2 and "no such run directory" in err
