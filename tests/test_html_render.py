"""The HTML report in headless Chromium: it renders, shows the verdict, logs no console errors."""

import pytest
from report_runs import dp_run, nodp_run, write_run
from reports.build import build_report
from reports.policy import policy_from_mapping
from reports.write import write_report

import chromium

pytestmark = pytest.mark.skipif(chromium.find() is None, reason="no chromium (scripts/test.sh installs it)")


@pytest.mark.parametrize("files, verdict", [(dp_run, "PASS"), (nodp_run, "FAIL")])
def test_report_renders_in_chromium(tmp_path, files, verdict):
    run = write_run(tmp_path / "run", files())
    policy = policy_from_mapping({"max_epsilon": 10, "max_mia_auc": 0.6}, name="t")
    html = write_report(run, build_report(run, policy=policy))["html"]
    shot = chromium.screenshot(html, tmp_path / "report.png", height=2400)
    assert shot.console_errors == []
    assert chromium.non_blank(shot.png)
    assert f'id="verdict">{verdict}</span>' in shot.dom
    assert shot.dom.count("data:image/png;base64,") == 4


def test_the_helper_sees_console_errors_and_blank_pages(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    shot = chromium.screenshot(page, tmp_path / "bad.png", width=400, height=300)
    assert any("boom" in e for e in shot.console_errors)
    assert not chromium.non_blank(shot.png)
