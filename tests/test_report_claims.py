"""The report states per-record claims: single-copy exposure, duplicates with their group ε, audit power."""

from report_runs import dp_run, write_run
from reports.build import build_report
from reports.html import render_html


def test_html_shows_single_copy_exposure_duplicates_and_audit_power(tmp_path):
    files = dp_run()
    files["audit/exposure.json"]["max_exposure_single_copy"] = 1.987
    files["audit/dp_audit.json"].update(
        max_attainable=4.573, correction={"method": "bonferroni", "family_size": 1, "per_bound_significance": 0.05},
        power_note="this audit cannot detect a violation above 4.57: even a perfect attacker could not make it "
                   "report more at its sizes, so it cannot test the claimed epsilon = 7.93")
    files["audit/dp_audit.json"]["bounds"][1].update(heuristic=True, max_attainable=3.48)
    html = render_html(build_report(write_run(tmp_path, files)))
    assert "<strong>1.987</strong> bits, the value the policy checks" in html
    # the repetition curve states each group's epsilon: 10 copies at 7.93 -> 79.3
    assert "<th>Covered at ε (kε)</th>" in html and '<td class="num">79.3</td>' in html
    assert 'id="duplicates"' in html and "<strong>5</strong> of 4000 training records" in html
    assert '<td class="num">15.86</td>' in html and '<td class="num">23.79</td>' in html
    assert 'id="dp-audit-power"' in html and "cannot detect a violation above 4.57" in html
    assert "no (heuristic" in html and '<td class="num">3.48</td>' in html


def test_old_records_without_the_new_keys_still_render(tmp_path):
    files = dp_run()
    del files["audit/exposure.json"]["max_exposure_single_copy"]
    html = render_html(build_report(write_run(tmp_path, files, omit=("audit/duplicates.json",))))
    assert 'id="duplicates"' not in html and 'id="dp-audit-power"' not in html


def test_markdown_states_power_duplicates_and_anonymity_risks(tmp_path):
    from reports.markdown import render_markdown

    files = dp_run()
    files["audit/dp_audit.json"]["power_note"] = "this audit cannot detect a violation above 3.91"
    rates = {"train": 0.3, "control": 0.1, "excess": 0.2, "excess_ci": [0.1, 0.3], "n_train": 300,
             "n_control": 300}
    files["audit/anonymity.json"] = {
        "singling_out": dict(rates, risk=0.2222, risk_ci=[0.0912, 0.3466]),
        "linkability": dict(rates, risk=0.0103, risk_ci=[-0.0117, 0.0311]),
        "inference": {"by_secret": {"age": dict(rates, risk=0.0417, risk_ci=[-0.0628, 0.1571])},
                      "worst_secret": "age", "worst_risk": 0.0417, "worst_risk_ci": [-0.0628, 0.1571]},
        "n_compared": 400, "n_attacks": 300}
    md = render_markdown(build_report(write_run(tmp_path, files)))
    assert "**Audit power:** this audit cannot detect a violation above 3.91" in md
    assert "**Duplicated training records** (learned columns): 5 of 4000, up to 3 copies" in md
    assert ("singling out 0.2222 (0.0912–0.3466); linkability 0.0103 (-0.0117–0.0311); "
            "inference 0.0417 (-0.0628–0.1571)") in md


def test_anonymity_checks_read_the_lower_risk_bound(tmp_path):
    from reports.policy import evaluate, policy_from_mapping

    files = dp_run()
    rates = {"train": 0.3, "control": 0.1, "excess": 0.2, "excess_ci": [0.1, 0.3], "n_train": 300,
             "n_control": 300}
    files["audit/anonymity.json"] = {
        "singling_out": dict(rates, risk=0.2222, risk_ci=[0.0912, 0.3466]),
        "linkability": dict(rates, risk=0.0103, risk_ci=[-0.0117, 0.0311]),
        "inference": None, "n_compared": 400}
    record = build_report(write_run(tmp_path, files))
    policy = policy_from_mapping({"max_singling_out_risk": 0.05, "max_linkability_risk": 0.05,
                                  "max_inference_risk": 0.05}, name="t")
    checks = {c.name: c for c in evaluate(record, policy)}
    assert checks["max_singling_out_risk"].value == 0.0912 and not checks["max_singling_out_risk"].passed
    assert checks["max_linkability_risk"].value == -0.0117 and checks["max_linkability_risk"].passed
    assert checks["max_inference_risk"].value is None and "could not be measured" in checks["max_inference_risk"].note
