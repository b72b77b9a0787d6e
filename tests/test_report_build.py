"""The report record: sections are the audit files verbatim; absent audits are absent."""

import json
import math
import re

import pytest
from report_runs import dp_run, write_run
from reports.build import build_report
from reports.errors import ReportInputError
from reports.policy import policy_from_mapping
from reports.record import SCHEMA_VERSION
from reports.run_files import SOURCES
from reports.write import to_json

# audit/dp_verify.json comes from `auditor verify-dp`, not from a run's stages: tests/test_verify_dp.py
# checks that its section is the file verbatim.
SECTION_OF = {rel: section for section, (rel, _) in SOURCES.items() if rel != "audit/dp_verify.json"}


def test_sections_equal_the_files_on_disk(tmp_path):
    run = write_run(tmp_path, dp_run())
    record = build_report(run)
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["verdict"] == "no-policy" and record["policy"] is None and record["checks"] == []
    for rel, section in SECTION_OF.items():
        on_disk = json.loads((run / rel).read_text())
        if section == "run":
            for key in ("versions", "created", "config"):
                assert record["reproducibility"][key] == on_disk[key]
            # no seeds and no hash of the private data (or of a config that would reveal a seed)
            assert {"seeds", "data_hash", "config_hash"}.isdisjoint(record["reproducibility"])
        else:
            assert record[section] == on_disk, section
    assert set(record["reproducibility"]["inputs"]) == set(SECTION_OF)
    assert all(h.startswith("sha256:") for h in record["reproducibility"]["inputs"].values())


def test_the_record_round_trips_through_report_json(tmp_path):
    record = build_report(write_run(tmp_path, dp_run()))
    assert json.loads(to_json(record)) == record


@pytest.mark.parametrize("omit", [rel for rel in SECTION_OF if rel != "run.json"])
def test_absent_audits_give_absent_sections(tmp_path, omit):
    record = build_report(write_run(tmp_path, dp_run(), omit=(omit,)))
    assert SECTION_OF[omit] not in record
    assert omit not in record["reproducibility"]["inputs"]


def test_model_free_run_has_no_model_sections(tmp_path):
    keep = {"audit/distance.json", "audit/pii.json", "audit/quality.json"}
    record = build_report(write_run(tmp_path, dp_run(), omit=tuple(set(SECTION_OF) - keep)))
    assert {"privacy", "generation", "canaries", "mia", "audit"}.isdisjoint(record)
    assert {"distance", "pii", "quality"} <= set(record)
    assert "seeds" not in record["reproducibility"]


def test_policy_sets_checks_and_verdict(tmp_path):
    policy = policy_from_mapping({"max_epsilon": 5, "min_fidelity": 0.5}, name="t")
    record = build_report(write_run(tmp_path, dp_run()), policy=policy)
    assert record["policy"] == {"name": "t", "thresholds": {"max_epsilon": 5.0, "min_fidelity": 0.5}}
    assert record["verdict"] == "fail"
    assert [(c["name"], c["passed"], c["value"]) for c in record["checks"]] == [
        ("max_epsilon", False, 7.93), ("min_fidelity", True, 0.874)]


def test_policy_must_be_a_policy(tmp_path):
    with pytest.raises(TypeError, match="reports.policy.Policy"):
        build_report(write_run(tmp_path, dp_run()), policy="internal")


def test_nan_in_an_audit_file_is_rejected(tmp_path):
    run = write_run(tmp_path, dp_run())
    (run / "audit/mia.json").write_text(json.dumps({"signals": {}, "best_signal": "x", "n_members": math.nan,
                                                     "n_nonmembers": 1}))
    with pytest.raises(ReportInputError, match=r"audit/mia.json: not valid JSON .*NaN"):
        build_report(run)


def test_missing_contract_key_is_named(tmp_path):
    files = dp_run()
    del files["audit/distance.json"]["dcr_train_share"]
    with pytest.raises(ReportInputError, match="audit/distance.json: missing key\\(s\\) dcr_train_share"):
        build_report(write_run(tmp_path, files))


def test_not_a_run_dir(tmp_path):
    with pytest.raises(ReportInputError, match="run directory not found"):
        build_report(tmp_path / "nope")
    with pytest.raises(ReportInputError, match="no run files found"):
        build_report(tmp_path)
    (tmp_path / "run.json").write_text("[1, 2]")
    with pytest.raises(ReportInputError, match="run.json: expected a JSON object"):
        build_report(tmp_path)


def test_quality_audit_output_feeds_the_report(tmp_path):
    import numpy as np
    import pandas as pd

    from auditor.quality import QualityConfig, run
    from reports.html import render_html
    from reports.summary import fmt

    from reports.markdown import render_markdown

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=120), "c": rng.choice(["a", "b", "rare"], 120, p=[0.5, 0.45, 0.05])})
    quality = run(synthetic=frame.sample(60, random_state=1), train=frame.iloc[:80], holdout=frame.iloc[80:],
                  column_kinds={"x": "numeric", "c": "categorical"}, target="c",
                  config=QualityConfig(tstr_iterations=5, min_support=2))
    json.dumps(quality, allow_nan=False)  # the contract forbids NaN
    record = build_report(write_run(tmp_path, {"audit/quality.json": quality}))
    assert record["quality"] == {**quality, "provenance": record["quality"]["provenance"]}
    page = render_html(record)
    assert fmt(quality["fidelity"]) in page and fmt(quality["tstr"]["ratio"]) in page
    assert quality["rare_categories"]["worst"]["category"] == "rare" and "Rare categories" in page
    assert fmt(quality["tstr"]["auc"]["ratio"]) in page and "Worst conditional mean" in page
    summary = render_markdown(record)
    assert f"AUC {fmt(quality['tstr']['auc']['synthetic'])}" in summary and "c=rare" in summary


def test_reports_never_import_auditor():
    from pathlib import Path

    import reports

    for path in Path(reports.__file__).parent.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+auditor\b", source, re.MULTILINE), path.name
