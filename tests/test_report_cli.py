"""``auditor report``: exit codes 0 / 1 (policy fail) / 2 (bad input), failing checks named."""

import json

import pytest
from report_runs import dp_run, nodp_run, write_run

from auditor.cli import main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_non_dp_run_with_repeated_canaries_fails_external(tmp_path, capsys):
    run = write_run(tmp_path, nodp_run())
    code, out, _ = _run(["report", str(run), "--policy", "external"], capsys)
    assert code == 1
    for name in ("max_epsilon", "max_canary_exposure", "max_mia_auc", "max_excess_replayed_pii",
                 "max_replayed_in_context", "max_excess_exact_copies"):
        assert f"FAIL {name}:" in out
    assert "verdict: FAIL" in out
    record = json.loads((run / "report.json").read_text())
    assert record["verdict"] == "fail" and record["policy"]["name"] == "external"
    assert "max_canary_exposure" in (run / "report.md").read_text().split("| ✅")[0]


def test_dp_run_passes_internal_and_writes_three_files(tmp_path, capsys):
    run = write_run(tmp_path, dp_run())
    code, out, _ = _run(["report", str(run), "--policy", "internal"], capsys)
    assert code == 0 and "verdict: PASS" in out and "FAIL" not in out
    assert all((run / f"report.{kind}").is_file() for kind in ("json", "html", "md"))


def test_no_policy_exits_zero_and_quiet_prints_nothing(tmp_path, capsys):
    run = write_run(tmp_path, nodp_run())
    assert _run(["report", str(run), "--quiet"], capsys) == (0, "", "")
    assert _run(["report", str(run), "-q", "--policy", "external"], capsys) == (1, "", "")


def test_unknown_policy_key_exits_two(tmp_path, capsys):
    run = write_run(tmp_path / "run", dp_run())
    policy = tmp_path / "p.yaml"
    policy.write_text("max_epsilon: 3\nmax_exposure: 2\n")
    code, out, err = _run(["report", str(run), "--policy", str(policy)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: policy 'p': unknown key(s) max_exposure") and len(err.splitlines()) == 1
    assert not (run / "report.json").exists()


def test_bad_run_dir_exits_two(tmp_path, capsys):
    code, _, err = _run(["report", str(tmp_path / "missing")], capsys)
    assert code == 2 and err.startswith("error: run directory not found")
