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
    assert 'id="duplicates"' in html and "<strong>5</strong> of 4000 training records" in html
    assert '<td class="num">15.86</td>' in html and '<td class="num">23.79</td>' in html
    assert 'id="dp-audit-power"' in html and "cannot detect a violation above 4.57" in html
    assert "no (heuristic" in html and '<td class="num">3.48</td>' in html


def test_old_records_without_the_new_keys_still_render(tmp_path):
    files = dp_run()
    del files["audit/exposure.json"]["max_exposure_single_copy"]
    html = render_html(build_report(write_run(tmp_path, files, omit=("audit/duplicates.json",))))
    assert 'id="duplicates"' not in html and 'id="dp-audit-power"' not in html
