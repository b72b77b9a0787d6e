"""Nothing lost: --force deletes last and only the tool's files, outputs never replace inputs, one writer at a
time, every artifact written atomically (issue 18, points 1, 3, 6, 7, 14)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from auditor.data import DEMO_SCHEMA
from auditor.errors import UserError
from auditor.rundir import RunDir
from cli_helpers import run_cli

TRAIN = ["--model", "tiny", "--quiet", "--seed", "1", "--epochs", "0.2", "--no-canaries", "--batch-size", "32",
         "--schema", DEMO_SCHEMA]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), to show that nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(code: int, err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, demo_small_csv) -> Path:
    from auditor.cli import main

    out = tmp_path_factory.mktemp("finished") / "run"
    with pytest.raises(SystemExit) as exc:
        main(["train", str(demo_small_csv), "--out", str(out), *TRAIN])
    assert exc.value.code == 0
    return out


@pytest.fixture()
def run_dir(finished, tmp_path) -> Path:
    """A private copy of a finished run."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


@pytest.fixture()
def foreign(tmp_path) -> Path:
    """A project folder with its own run.json and folders named like the tool's."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('hello')\n")
    (root / "run.json").write_text(json.dumps({"my": "project config"}))
    (root / "model").mkdir()
    (root / "model" / "notes.txt").write_text("my notes\n")
    (root / "audit").mkdir()
    (root / "audit" / "q3.json").write_text("{}\n")
    (root / "report.md").write_text("# my report\n")
    return root


# ---------------------------------------------------------------------------- point 1: validate and load, then delete


@pytest.mark.parametrize("flags,needle", [
    (["--epsilon", "-1"], "--epsilon"),
    (["--model", "huge"], "preset"),
    (["--canary-repetitions", "1,x"], "canar"),
])
def test_force_with_a_bad_option_deletes_nothing(run_dir, demo_small_csv, capsys, flags, needle):
    before = snapshot(run_dir)
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", run_dir, *TRAIN, *flags, "--force")
    assert needle in one_line_error(code, err)
    assert snapshot(run_dir) == before


def test_run_force_with_a_bad_sampling_option_deletes_nothing(run_dir, demo_small_csv, capsys):
    before = snapshot(run_dir)
    code, _, err = run_cli(capsys, "run", demo_small_csv, "--out", run_dir, *TRAIN, "--temperature", "0", "--force")
    assert "--temperature" in one_line_error(code, err)
    assert snapshot(run_dir) == before


def test_force_keeps_an_input_inside_the_run_directory(run_dir, demo_small_csv, capsys):
    data = run_dir / "mydata.csv"
    shutil.copy(demo_small_csv, data)
    (run_dir / "notes").mkdir()
    (run_dir / "notes" / "todo.txt").write_text("ask legal\n")
    old_weights = (run_dir / "model" / "model.safetensors").read_bytes()
    code, _, err = run_cli(capsys, "train", data, "--out", run_dir, *TRAIN, "--seed", "2", "--force")
    assert code == 0, err
    assert data.read_bytes() == demo_small_csv.read_bytes()
    assert (run_dir / "notes" / "todo.txt").read_text() == "ask legal\n"
    assert json.loads((run_dir / "run.json").read_text())["config"]["data"]["path"] == str(data.resolve())
    assert (run_dir / "model" / "model.safetensors").read_bytes() != old_weights  # a new run replaced the old


def test_an_input_that_force_would_replace_is_refused(run_dir, demo_small_csv, capsys):
    shutil.copy(DEMO_SCHEMA, run_dir / "schema.yaml")
    before = snapshot(run_dir)
    args = [a if a != DEMO_SCHEMA else run_dir / "schema.yaml" for a in TRAIN]
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", run_dir, *args, "--force")
    line = one_line_error(code, err)
    assert "--schema" in line and "schema.yaml" in line
    assert snapshot(run_dir) == before


def _model_free_dir(root: Path) -> Path:
    """An earlier model-free audit directory of the tool (made by hand: no audit needs to run)."""
    with RunDir(root).new_run(force=False):
        (root / "run.json").write_text(json.dumps({"model_free": True}))
        (root / "audit").mkdir()
        (root / "audit" / "distance.json").write_text("{}\n")
        (root / "report.json").write_text("{}\n")
    return root


def test_model_free_audit_force_with_a_bad_policy_deletes_nothing(tmp_path, demo_small_csv, capsys):
    out = _model_free_dir(tmp_path / "mf")
    before = snapshot(out)
    code, _, err = run_cli(capsys, "audit", "--synthetic", demo_small_csv, "--train", demo_small_csv, "--out", out,
                           "--only", "distance", "--no-ner", "--policy", "no-such-policy", "--force", "-q")
    assert "no-such-policy" in one_line_error(code, err)
    assert snapshot(out) == before


def test_model_free_audit_never_deletes_its_input(tmp_path, demo_small_csv, capsys):
    out = _model_free_dir(tmp_path / "mf")
    synthetic = out / "audit" / "s.csv"
    shutil.copy(demo_small_csv, synthetic)
    before = snapshot(out)
    code, _, err = run_cli(capsys, "audit", "--synthetic", synthetic, "--train", demo_small_csv, "--out", out,
                           "--only", "distance", "--no-ner", "--force", "-q")
    assert "--synthetic" in one_line_error(code, err)
    assert snapshot(out) == before


# ---------------------------------------------------------------------------- point 3: only the tool's run, only its files


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("command", ["train", "run", "audit", "resume"])
def test_a_directory_that_is_not_the_tools_run_is_never_cleared(foreign, demo_small_csv, capsys, command, force):
    before = snapshot(foreign)
    if command == "audit":
        args = ["audit", "--synthetic", demo_small_csv, "--train", demo_small_csv, "--out", foreign,
                "--only", "distance", "--no-ner", "-q"]
    elif command == "resume":
        args = ["train", demo_small_csv, "--out", foreign, *TRAIN, "--resume"]
    else:
        args = [command, demo_small_csv, "--out", foreign, *TRAIN]
    code, _, err = run_cli(capsys, *args, *(["--force"] if force else []))
    line = one_line_error(code, err)
    assert "nothing" in line
    assert snapshot(foreign) == before
    assert sorted(p.name for p in foreign.iterdir()) == ["audit", "model", "report.md", "run.json", "src"]


def test_a_run_of_the_previous_version_is_not_cleared(run_dir, demo_small_csv, capsys):
    (run_dir / ".dp-auditor-run").unlink()  # runs made before the marker have none
    before = snapshot(run_dir)
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", run_dir, *TRAIN, "--force")
    line = one_line_error(code, err)
    assert "older version" in line and "delete it yourself" in line
    assert snapshot(run_dir) == before


def test_force_clears_only_what_the_tool_wrote(run_dir):
    from auditor.rundir import RUN_MARKER

    (run_dir / "notes.txt").write_text("mine\n")
    (run_dir / "mine").mkdir()
    (run_dir / "mine" / "a.csv").write_text("a\n1\n")
    (run_dir / ".split.json.0a1b2c3d.tmp").write_text("half a split")  # left by a killed atomic write
    (run_dir / "synthetic.csv").write_text("a\n1\n")
    (run_dir / "audit").mkdir()
    (run_dir / "audit" / "mia.json").write_text("{}\n")
    with RunDir(run_dir).new_run(force=True):
        kept = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
    assert kept == [".dp-auditor-run", ".dp-auditor.lock", "mine", "mine/a.csv", "notes.txt"]
    assert json.loads((run_dir / ".dp-auditor-run").read_text()) == RUN_MARKER


def test_clear_stage_deletes_only_tool_paths(run_dir):
    (run_dir / "notes.txt").write_text("mine\n")
    with pytest.raises(ValueError, match="not a file the tool writes"):
        RunDir(run_dir).clear_stage(run_dir / "notes.txt")
    assert (run_dir / "notes.txt").exists()


# ---------------------------------------------------------------------------- point 6: an output is never an input


@pytest.mark.parametrize("how", ["same", "dotdot", "symlink", "hardlink"])
def test_scan_never_writes_over_an_input(tmp_path, capsys, how):
    syn, train = tmp_path / "s.csv", tmp_path / "t.csv"
    syn.write_text("name,city\nAna Diaz,Lyon\n")
    train.write_text("name,city\nBo Li,Oslo\n")
    target = {"same": train, "dotdot": tmp_path / "sub" / ".." / "t.csv", "symlink": tmp_path / "link.json",
              "hardlink": tmp_path / "hard.json"}[how]
    (tmp_path / "sub").mkdir()
    if how == "symlink":
        target.symlink_to(train)
    if how == "hardlink":
        os.link(train, target)
    code, _, err = run_cli(capsys, "scan", syn, "--against", train, "--json", target, "--no-ner")
    assert "--against" in one_line_error(code, err)
    assert train.read_text() == "name,city\nBo Li,Oslo\n"
    code, _, err = run_cli(capsys, "scan", syn, "--against", train, "--reveal", syn, "--no-ner")
    assert "FILE" in one_line_error(code, err)
    assert syn.read_text() == "name,city\nAna Diaz,Lyon\n"


def test_refuse_overwriting_inputs_names_both_sides(tmp_path):
    from auditor.overwrite import refuse_overwriting_inputs

    run = RunDir(tmp_path / "run")
    refuse_overwriting_inputs({"DATA": tmp_path / "run" / "data.csv", "--schema": None}, {"--out": run.tool_paths()})
    with pytest.raises(UserError, match=r"^DATA .*model.* is also an output \(--out writes .*model\)"):
        refuse_overwriting_inputs({"DATA": tmp_path / "run" / "model" / "x.csv"}, {"--out": run.tool_paths()})


# ---------------------------------------------------------------------------- point 7: one writer at a time


def _hold_lock(root: Path):
    """Hold ``root``'s writer lock in another thread until the returned event is set."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with RunDir(root).locked():
            held.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    return release, thread


@pytest.mark.parametrize("command", ["train", "generate", "audit", "report", "run"])
def test_a_second_writer_is_refused(run_dir, demo_small_csv, capsys, command):
    args = {"train": ["train", demo_small_csv, "--out", run_dir, *TRAIN, "--force"],
            "run": ["run", demo_small_csv, "--out", run_dir, *TRAIN, "--force"],
            "generate": ["generate", run_dir, "-n", "5", "-q"],
            "audit": ["audit", run_dir, "-q"],
            "report": ["report", run_dir, "-q"]}[command]
    before = snapshot(run_dir)
    release, thread = _hold_lock(run_dir)
    try:
        code, _, err = run_cli(capsys, *args)
    finally:
        release.set()
        thread.join()
    assert "another auditor command is writing" in one_line_error(code, err)
    assert snapshot(run_dir) == before


def test_two_concurrent_trainings_one_is_refused(tmp_path, demo_small_csv):
    from auditor.pipeline import train
    from auditor.config import DataConfig, RunConfig, TrainConfig
    from canaries.config import CanaryConfig

    out = tmp_path / "run"
    start = threading.Barrier(2)
    results: list = []

    def one():
        cfg = RunConfig(data=DataConfig(schema=str(DEMO_SCHEMA)), canaries=CanaryConfig(enabled=False),
                        train=TrainConfig(model="tiny", epochs=0.2, batch_size=32, seed=1))
        start.wait()
        try:
            results.append(train(demo_small_csv, out, config=cfg))
        except UserError as exc:
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, UserError)]
    assert len(results) == 2 and len(errors) == 1, results
    assert str(out) in str(errors[0]) and "\n" not in str(errors[0])
    assert json.loads((out / "model" / "privacy.json").read_text())["steps"] >= 1


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(tmp_path):
    from auditor.locking import exclusive

    lock = tmp_path / ".lock"
    seen = []
    with exclusive(lock, busy="busy"):
        with exclusive(lock, busy="busy"):  # auditor run: the stages take the lock run_all holds
            t = threading.Thread(target=lambda: seen.append(_try(lock)))
            t.start()
            t.join()
    assert seen == ["busy"]
    assert _try(lock) == "free"


def test_a_stage_runs_inside_the_lock_its_caller_holds(tmp_path):
    from auditor.rundir import locks_run

    @locks_run
    def stage(out):
        return "ran"

    with RunDir(tmp_path).locked():  # what `auditor run` does around generate, audit and report
        assert stage(tmp_path) == "ran"


def _try(lock: Path) -> str:
    from auditor.locking import exclusive

    try:
        with exclusive(lock, busy="busy"):
            return "free"
    except UserError as exc:
        return str(exc)


# ---------------------------------------------------------------------------- point 14: temp file, fsync, rename


@pytest.fixture()
def fsynced(monkeypatch):
    """Inodes of every file and directory fsynced from now on."""
    seen: set[int] = set()
    real = os.fsync

    def record(fd):
        seen.add(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def _writers():
    import pandas as pd

    from auditor.data import save_split, write_records
    from auditor.rundir import write_json
    from auditor.schema import Schema
    from reports.atomic import write_private

    return {
        "split.json": lambda p: save_split(p, [0, 2], [1]),
        "schema.yaml": lambda p: Schema.load(DEMO_SCHEMA).dump(p),
        "run.json": lambda p: write_json(p, {"a": 1}),
        "canaries.json": lambda p: write_private(p, {"secret": "x"}),
        "synthetic.csv": lambda p: write_records(pd.DataFrame({"a": ["1"]}), p),
    }


@pytest.mark.parametrize("name", ["split.json", "schema.yaml", "run.json", "canaries.json", "synthetic.csv"])
def test_artifacts_are_fsynced_then_renamed(tmp_path, fsynced, name):
    path = tmp_path / name
    path.write_text("the old version\n")
    old_inode = path.stat().st_ino
    _writers()[name](path)
    assert path.stat().st_ino != old_inode, "written in place"
    assert path.stat().st_ino in fsynced, "not fsynced before the rename"
    assert tmp_path.stat().st_ino in fsynced, "directory not fsynced after the rename"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_scan_json_is_fsynced_then_renamed(tmp_path, capsys, fsynced):
    syn = tmp_path / "s.csv"
    syn.write_text("name,email\nAna Diaz,ana@example.com\n")
    out = tmp_path / "s.json"
    out.write_text("old\n")
    old_inode = out.stat().st_ino
    code, _, err = run_cli(capsys, "scan", syn, "--json", out, "--no-ner")
    assert code == 0, err
    assert out.stat().st_ino != old_inode and out.stat().st_ino in fsynced
    assert json.loads(out.read_text())["synthetic"]["rows"] == 1


def test_atomic_write_keeps_the_old_file_on_failure_and_sets_the_mode(tmp_path):
    from reports.atomic import atomic_file, atomic_write

    path = tmp_path / "secret.json"
    old = os.umask(0)
    try:
        atomic_write(path, b"v1", mode=0o600)
    finally:
        os.umask(old)
    assert path.read_bytes() == b"v1" and path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(RuntimeError):
        with atomic_file(path, mode=0o600) as fh:
            fh.write("half")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"v1"
    assert [p.name for p in tmp_path.iterdir()] == ["secret.json"]
