"""``auditor scan``: summary table, JSON, 0600 reveal file, one-line errors with exit 2.

Runs the CLI in-process (``auditor.cli.main``) so the analyzer engine is built once.
"""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest
from faker import Faker

from auditor.cli import main


def write_people(path, n: int, *, seed: int) -> pd.DataFrame:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    frame = pd.DataFrame(
        {
            "name": [fake.unique.name() for _ in range(n)],
            "email": [fake.unique.email() for _ in range(n)],
            "ssn": [fake.unique.ssn() for _ in range(n)],
            "diagnosis": [fake.random_element(("flu", "asthma", "migraine")) for _ in range(n)],
        }
    )
    frame.to_csv(path, index=False)
    return frame


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture()
def files(tmp_path):
    train = write_people(tmp_path / "train.csv", 20, seed=31)
    holdout = write_people(tmp_path / "holdout.csv", 20, seed=32)
    synthetic = pd.concat([train.head(4), write_people(tmp_path / "other.csv", 4, seed=33)], ignore_index=True)
    synthetic.to_csv(tmp_path / "demo.csv", index=False)
    return tmp_path, train, holdout, synthetic


def test_scan_prints_a_table_and_writes_redacted_json(files, capsys):
    tmp, train, holdout, synthetic = files
    code, out, err = run_cli(capsys, "scan", str(tmp / "demo.csv"), "--no-ner")
    assert code == 0, err
    assert "column" in out and "entity" in out and "findings" in out
    assert "EMAIL_ADDRESS" in out and "US_SSN" in out
    assert "not scanned: PERSON" in out
    record = json.loads((tmp / "demo.csv.pii.json").read_text())
    assert record["synthetic"]["by_column"]["email"]["EMAIL_ADDRESS"]["findings"] == 8
    assert record["replay"] is None
    for value in synthetic[["name", "email", "ssn"]].to_numpy().ravel():
        assert value not in out and value not in err


def test_scan_against_train_with_holdout_and_reveal(files, capsys):
    tmp, train, holdout, synthetic = files
    out_json, reveal = tmp / "out" / "pii.json", tmp / "secret.json"
    code, out, err = run_cli(
        capsys, "scan", str(tmp / "demo.csv"), "--against", str(tmp / "train.csv"), "--holdout", str(tmp / "holdout.csv"),
        "--json", str(out_json), "--reveal", str(reveal), "--no-ner", "--entities", "EMAIL_ADDRESS,US_SSN",
    )  # fmt: skip
    assert code == 0, err
    assert "replay against train.csv: 8 replayed in context, 0 replayed alone, 8 novel" in out
    assert "holdout, by chance: 0 in context, 0 alone" in out
    record = json.loads(out_json.read_text())
    assert record["replay"]["replayed_in_context"] == 8 and record["exact_row_copies"] == 4
    assert set(record["entities_scanned"]) == {"EMAIL_ADDRESS", "US_SSN"}
    assert stat.S_IMODE(os.stat(reveal).st_mode) == 0o600
    revealed = json.loads(reveal.read_text())
    values = {f["value"] for f in revealed["findings"]}
    assert set(synthetic.email) <= values and set(synthetic.ssn) <= values
    text = out_json.read_text() + out
    for value in values:
        assert value not in text


def test_scan_with_extra_recognizers_and_allow_list(files, capsys):
    tmp, *_ = files
    pd.DataFrame({"staff_id": ["EMP-000123", "EMP-000456"], "note": ["ok", "fine"]}).to_csv(tmp / "staff.csv", index=False)
    (tmp / "rec.yaml").write_text(
        "recognizers:\n  - type: pattern\n    entity: EMPLOYEE_ID\n"
        "    patterns: [{name: emp, regex: 'EMP-\\d{6}', score: 0.3}]\n    context: [staff]\n"
    )
    (tmp / "allow.txt").write_text("# public ids\nEMP-000456\n")
    code, out, err = run_cli(
        capsys, "scan", str(tmp / "staff.csv"), "--recognizers", str(tmp / "rec.yaml"),
        "--allow-list", str(tmp / "allow.txt"), "--no-ner", "--threshold", "0.5",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads((tmp / "staff.csv.pii.json").read_text())
    assert record["synthetic"]["by_column"] == {
        "staff_id": {"EMPLOYEE_ID": record["synthetic"]["by_column"]["staff_id"]["EMPLOYEE_ID"]}
    }
    assert record["synthetic"]["by_column"]["staff_id"]["EMPLOYEE_ID"]["findings"] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.csv"], "no such file"),
        (["{demo}", "--threshold", "1.5"], "1.5"),
        (["{demo}", "--holdout", "{demo}"], "--holdout needs --against"),
        (["{demo}", "--model", "en_core_web_nonexistent"], "no download is attempted"),
        (["{demo}", "--recognizers", "{bad_yaml}"], "not valid YAML"),
        (["{demo}", "--recognizers", "{no_list}"], "'recognizers:' list"),
        (["{demo}", "--recognizers", "{bad_regex}", "--no-ner"], "not a valid regex"),
        (["{demo}", "--json", "{tmp}/x.json", "--reveal", "{tmp}/x.json"], "different file"),
        (["{demo}", "--against", "{empty}"], "empty"),
    ],
)
def test_bad_input_exits_2_with_one_line(files, capsys, monkeypatch, args, message):
    tmp, *_ = files
    (tmp / "bad.yaml").write_text("recognizers: [unclosed\n")
    (tmp / "nolist.yaml").write_text("something: 1\n")
    (tmp / "badre.yaml").write_text("recognizers:\n  - {type: pattern, entity: X, patterns: [{regex: '(oops'}]}\n")
    (tmp / "empty.csv").write_text("")
    paths = {"demo": tmp / "demo.csv", "bad_yaml": tmp / "bad.yaml", "no_list": tmp / "nolist.yaml",
             "bad_regex": tmp / "badre.yaml", "tmp": tmp, "empty": tmp / "empty.csv"}  # fmt: skip
    argv = [a.format(**paths) for a in args]
    monkeypatch.chdir(tmp)
    code, out, err = run_cli(capsys, "scan", *argv)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err
