"""HTML and Markdown: golden-free (numbers come from audit/*.json), failing checks first, absent sections absent."""

import json
import re

import pytest
from report_runs import dp_run, nodp_run, write_run
from reports.build import build_report
from reports.html import render_html
from reports.markdown import render_markdown
from reports.policy import policy_from_mapping
from reports.summary import fmt
from reports.write import write_report

# Distinctive numbers that appear nowhere else in the fixture: if the page shows
# them, they came from the file.
PLANTED = {
    ("model/privacy.json", "epsilon"): 6.173,
    ("audit/exposure.json", "max_exposure"): 4.219,
    ("audit/distance.json", "dcr_train_share"): 0.5317,
    ("audit/quality.json", "fidelity"): 0.8139,
}


def _planted_files():
    files = dp_run()
    for (rel, key), value in PLANTED.items():
        files[rel][key] = value
    files["audit/mia.json"]["signals"]["reference"].update(auc=0.5471, tpr_at_fpr={"0.001": 0.0031,
                                                                                     "0.01": 0.0193, "0.1": 0.1171})
    files["audit/pii.json"]["replay"].update(replayed=13, replayed_in_context=8)
    files["audit/exposure.json"]["by_repetition"][1].update(exposure_mean=2.683)
    return files


@pytest.fixture
def planted(tmp_path):
    run = write_run(tmp_path, _planted_files())
    policy = policy_from_mapping({"max_epsilon": 10, "max_mia_auc": 0.52, "min_fidelity": 0.9}, name="t")
    record = build_report(run, policy=policy)
    return run, record


def _disk(run, rel):
    return json.loads((run / rel).read_text())


def _expected_values(run):
    mia = _disk(run, "audit/mia.json")["signals"]["reference"]
    exposure = _disk(run, "audit/exposure.json")
    return [
        _disk(run, "model/privacy.json")["epsilon"],
        exposure["max_exposure"],
        exposure["by_repetition"][1]["exposure_mean"],
        mia["auc"],
        mia["tpr_at_fpr"]["0.01"],
        _disk(run, "audit/distance.json")["dcr_train_share"],
        _disk(run, "audit/quality.json")["fidelity"],
    ]


def test_html_numbers_equal_the_audit_files(planted):
    run, record = planted
    page = render_html(record)
    for value in _expected_values(run):
        assert fmt(value) in page, value
    replay = _disk(run, "audit/pii.json")["replay"]
    assert f'<div class="value">{replay["replayed"] + replay["replayed_in_context"]}</div>' in page
    assert '<div class="value">AUC 0.5471</div>' in page
    assert '<div class="detail">1.93% of members found at 1% false alarms</div>' in page


def test_markdown_numbers_equal_the_audit_files(planted):
    run, record = planted
    text = render_markdown(record)
    for value in _expected_values(run):
        assert fmt(value) in text, value
    # no PII check in this policy: no icon; the raw count, then the excess over the holdout control
    assert ("| Replayed PII  | 21 (8 in their original context; beyond the holdout control: 0 records by a unique "
            "value, 0 in context) |") in text


def test_failing_checks_listed_first_in_every_format(planted, tmp_path):
    run, record = planted
    paths = write_report(run, record)
    expected = ["max_mia_auc", "min_fidelity", "max_epsilon"]
    assert [c["name"] for c in json.loads(paths["json"].read_text())["checks"]] == expected
    for kind in ("html", "md"):
        text = paths[kind].read_text()
        positions = [text.index(f"<code>{n}</code>" if kind == "html" else f"`{n}`") for n in expected]
        assert positions == sorted(positions), kind
    html = paths["html"].read_text()
    summary = html[html.index('id="summary"'):html.index("</section>")]
    assert "membership-inference AUC" in summary and "fidelity score" in summary
    assert "claimed ε" not in summary  # only failing checks are named in the summary box


SECTION_IDS = {
    "model/privacy.json": 'id="privacy"', "generation.json": 'id="generation"',
    "audit/exposure.json": 'id="canaries"', "audit/distance.json": 'id="distance"',
    "audit/pii.json": 'id="pii"', "audit/quality.json": 'id="quality"', "audit/dp_audit.json": 'id="dp-audit"',
}


@pytest.mark.parametrize("omit", list(SECTION_IDS))
def test_sections_whose_audit_did_not_run_are_absent(tmp_path, omit):
    record = build_report(write_run(tmp_path, dp_run(), omit=(omit,)))
    page = render_html(record)
    assert SECTION_IDS[omit] not in page
    for other, marker in SECTION_IDS.items():
        if other != omit:
            assert marker in page, other


def test_model_free_report_renders(tmp_path):
    keep = ("audit/distance.json", "audit/pii.json", "audit/quality.json", "run.json")
    omit = tuple(rel for rel in dp_run() if rel not in keep)
    record = build_report(write_run(tmp_path, dp_run(), omit=omit),
                          policy=policy_from_mapping({"max_epsilon": 3, "max_mia_auc": 0.6}, name="t"))
    page, text = render_html(record), render_markdown(record)
    assert 'id="mia"' not in page and 'id="canaries"' not in page and 'id="privacy"' not in page
    assert "model/privacy.json absent" in page and "model/privacy.json absent" in text
    assert [c["passed"] for c in record["checks"]] == [False, True]  # the distance attack answers the MIA check


def test_non_dp_report_says_so(tmp_path):
    record = build_report(write_run(tmp_path, nodp_run()))
    page, text = render_html(record), render_markdown(record)
    assert "No DP guarantee." in page and "none (trained without DP)" in text


def test_dp_audit_violation_is_loud(tmp_path):
    files = dp_run()
    files["audit/dp_audit.json"].update(violation=True, max_lower_bound=9.5)
    record = build_report(write_run(tmp_path, files))
    assert 'id="dp-violation"' in render_html(record)
    assert "DP audit violation" in render_markdown(record)


def test_html_is_self_contained(planted):
    _, record = planted
    page = render_html(record)
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)
    assert "<link" not in page and "<script" not in page
    assert page.count('src="data:image/png;base64,') == 4


def test_partial_audits_render(tmp_path):
    files = dp_run()
    files["audit/pii.json"].update(replay=None, holdout_control=None)
    files["audit/exposure.json"]["by_repetition"].append(
        {"repetitions": 100, "n": 0, "exposure_mean": None, "exposure_max": None, "max_possible": 26.58,
         "method": "exact"})
    record = build_report(write_run(tmp_path, files), policy=policy_from_mapping({"max_replayed_pii": 5}, name="t"))
    page, text = render_html(record), render_markdown(record)
    assert "Replay was not measured" in page
    assert record["verdict"] == "fail" and record["checks"][0]["value"] is None
    assert "| Replayed PII ❌ | n/a (no training data was scanned) |" in text
    assert "<td>name</td><td>PERSON</td><td class=\"num\">30</td><td class=\"num\">29</td>" in page


def test_columns_not_learned_are_listed(tmp_path):
    files = dp_run()
    files["model/privacy.json"]["not_learned"] = ["ssn: fresh fakes (pattern), drawn independently of the data"]
    record = build_report(write_run(tmp_path, files))
    page, text = render_html(record), render_markdown(record)
    assert "<strong>Not learned:</strong>" in page and "<li>ssn: fresh fakes (pattern)" in page
    assert "**Not learned** (fresh fakes, independent of the data): ssn" in text
    # a run without the list (older runs, text data) has neither
    plain = build_report(write_run(tmp_path / "plain", dp_run()))
    assert "Not learned" not in render_html(plain) and "Not learned" not in render_markdown(plain)
