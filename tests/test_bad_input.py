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
    # the fitted batch is at most n / 4; a batch given that exceeds the records is refused
    line = _check(capsys, out, "train", path, "--out", out, "--schema", DEMO_SCHEMA, "--no-canaries", *TRAIN,
                  "--batch-size", "128")
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


# ---------------------------------------------------------------------------- every numeric option

NONFINITE = ["nan", "inf", "-inf"]
# flag -> bad values: the non-finite ones, 0 where 0 is outside the range, a negative and one beyond the top
# (0 is a valid --seed, --gen-seed, --holdout, --audit-canaries, --magnitude-min-p and --threshold).
TRAIN_FLAGS = {
    "--epsilon": [*NONFINITE, "0", "-1", "101"],
    "--delta": [*NONFINITE, "0", "-1e-6", "1"],
    "--noise-multiplier": [*NONFINITE, "0", "-1", "1001", "0.1"],
    "--max-grad-norm": [*NONFINITE, "0", "-1", "1e5"],
    "--epochs": [*NONFINITE, "0", "-2", "1e9"],
    "--batch-size": [*NONFINITE, "0", "-5", "1000000000"],
    "--physical-batch-size": [*NONFINITE, "0", "-1", "2000000"],
    "--lr": [*NONFINITE, "0", "-0.1", "11"],
    "--seed": [*NONFINITE, "-1", "4294967296"],
    "--holdout": [*NONFINITE, "-0.1", "1"],
    "--audit-canaries": [*NONFINITE, "-1", "100001"],
    "--canary-repetitions": [*NONFINITE, "0", "1,-1", "1,1001"],
    "--checkpoint-every": [*NONFINITE, "0", "-1", "1000000001"],
    "--lora-rank": [*NONFINITE, "0", "-1", "4097"],
}
SAMPLE_FLAGS = {
    "--num-records": [*NONFINITE, "0", "-1", "100000001"],
    "--temperature": [*NONFINITE, "0", "-1", "101"],
    "--top-p": [*NONFINITE, "0", "-0.5", "1.5"],
    "--magnitude-min-p": [*NONFINITE, "-0.1", "1"],
    "--gen-seed": [*NONFINITE, "-1", "4294967296"],
    "--partitions": [*NONFINITE, "0", "-1", "100001"],
}
WORKERS = {"--workers": [*NONFINITE, "0", "-1", "4097"]}
SWEEP_FLAGS = {
    **{flag: values for flag, values in TRAIN_FLAGS.items() if flag not in ("--lora-rank",)},
    **SAMPLE_FLAGS,
    "--jobs": [*NONFINITE, "0", "-1", "1025"],
    "--threads": [*NONFINITE, "0", "-1", "1025"],
}
# command -> (the arguments before the flag with DATA and OUT as placeholders, its numeric flags)
COMMANDS = {
    "train": (["train", "DATA", "--out", "OUT", "--force"], TRAIN_FLAGS),
    "run": (["run", "DATA", "--out", "OUT", "--force"], {**TRAIN_FLAGS, **SAMPLE_FLAGS, **WORKERS}),
    "generate": (["generate", "OUT"], {**SAMPLE_FLAGS, **WORKERS}),
    "audit": (["audit", "OUT"], WORKERS),
    "sweep": (["sweep", "DATA", "--out", "OUT"], SWEEP_FLAGS),
    "demo": (["demo", "--out", "OUT"], {"--epsilon": TRAIN_FLAGS["--epsilon"], "--seed": TRAIN_FLAGS["--seed"],
                                        **WORKERS}),
    "scan": (["scan", "DATA"], {"--threshold": [*NONFINITE, "-0.1", "1.5"], **WORKERS}),
    "verify-dp": (["verify-dp", "--records", "300", "--out", "OUT"],
                  {flag: TRAIN_FLAGS[flag] for flag in ("--epsilon", "--delta", "--noise-multiplier", "--max-grad-norm",
                                                        "--epochs", "--batch-size", "--seed")}),
}
CASES = [(command, flag, value) for command, (_, flags) in COMMANDS.items() for flag, values in flags.items()
         for value in values]


def _tree(root):
    """Every file under ``root`` with its bytes: what a refused command must leave alone."""
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, demo_small_csv):
    """The data and a finished-looking run, and their bytes (files only: no refused command may get far
    enough to read them)."""
    root = tmp_path_factory.mktemp("finished")
    (root / "data.csv").write_bytes(demo_small_csv.read_bytes())
    run = root / "run"
    (run / "model").mkdir(parents=True)
    (run / "run.json").write_text('{"n_records": 300}')
    (run / "model" / "privacy.json").write_text('{"epsilon": 8.0}')
    (run / "synthetic.csv").write_text("a,b\n1,2\n")
    return root, _tree(root)


@pytest.mark.parametrize("existing", [False, True], ids=["new-out", "finished-out"])
@pytest.mark.parametrize("command,flag,value", CASES)
def test_every_numeric_option_refuses_bad_values(capsys, finished, existing, command, flag, value):
    """nan, inf, -inf, 0, a negative and an out-of-range value: exit 2, one line naming the flag, nothing written
    and, with a finished run as --out (and --force), nothing deleted."""
    root, files = finished
    out = root / "run" if existing or command == "generate" else root / "new"
    prefix, _ = COMMANDS[command]
    args = [{"DATA": root / "data.csv", "OUT": out}.get(a, a) for a in prefix]
    code, stdout, err = run_cli(capsys, *args, flag, value)
    assert code == 2, (stdout, err)
    lines = [x for x in err.strip().splitlines() if x]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert flag in lines[0], lines[0]
    assert _tree(root) == files and not (root / "new").exists(), "a refused command wrote or deleted files"


# ---------------------------------------------------------------------------- YAML files

@pytest.mark.parametrize("text,needle", [
    ('columns:\n  - !!python/object/apply:os.system ["touch {marker}"]\n', "python/object/apply"),
    ("columns: [a, b\n", "line 2"),
    ("columns:\n  - {name: age, kind: numeric, maximum: " + "9" * 5000 + "}\n", "digits"),
], ids=["python-tag", "syntax-error", "5000-digits"])
def test_a_bad_schema_yaml_is_one_line_and_runs_nothing(tmp_path, capsys, demo_small_csv, text, needle):
    marker = tmp_path / "marker"
    schema = _csv(tmp_path, text.replace("{marker}", str(marker)), "schema.yaml")
    out = tmp_path / "run"
    line = _check(capsys, out, "train", demo_small_csv, "--out", out, "--schema", schema, *TRAIN)
    assert needle in line and "schema.yaml" in line
    assert not marker.exists()


@pytest.mark.parametrize("digits", [400, 5000])
def test_a_policy_with_a_huge_integer_is_one_line(tmp_path, capsys, digits):
    policy = _csv(tmp_path, "max_epsilon: " + "9" * digits + "\n", "policy.yaml")
    out = tmp_path / "run"
    line = _check(capsys, out, "report", out, "--policy", policy)
    assert "policy" in line and ("too long" in line or "finite number" in line)
