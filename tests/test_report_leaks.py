"""The report must not leak raw PII or canary secrets (DESIGN.md rule 4)."""

import json

import pytest
from report_runs import CANARY_SECRETS, SECRETS, TRAIN_PII, dp_run, nodp_run, write_run
from reports.build import build_report
from reports.leakcheck import find_leaks, secret_pattern
from reports.policy import policy_from_mapping
from reports.write import write_report


@pytest.mark.parametrize("text", [
    "the code 5713-2209-4461 appeared", "code 5713 2209 4461", "CODE 571322094461!", "<td>code&#32;5713-2209-4461</td>",
])
def test_finds_a_secret_in_any_separator_form(text):
    leaks = find_leaks({"page": text}, ["code 5713-2209-4461"])
    assert leaks and all(leak.source == "page" for leak in leaks)
    assert all("5713" not in leak.secret and "2209" not in leak.secret for leak in leaks)


def test_finds_escaped_html_and_ignores_inline_images():
    assert find_leaks({"p": "<b>Quentin Abernathy&#45;Vole</b>"}, ["Quentin Abernathy-Vole"])
    assert not find_leaks({"p": '<img src="data:image/png;base64,AAA40817AAA">'}, ["40817 "])
    assert not find_leaks({"p": "h:140817ab and 4081"}, ["40817"])  # inside longer runs / prefixes only


def test_too_short_secrets_are_an_error():
    assert secret_pattern("ab-12") is not None and secret_pattern("a1") is None
    with pytest.raises(ValueError, match="fewer than 4"):
        find_leaks({"p": "x"}, ["12"])


@pytest.mark.parametrize("files", [dp_run, nodp_run])
def test_rendered_report_leaks_no_secret(tmp_path, files):
    run = write_run(tmp_path, files())
    manifest = json.loads((run / "canaries.json").read_text())
    secrets = [c["secret"] for c in manifest["canaries"]] + TRAIN_PII
    assert sorted(secrets) == sorted(SECRETS)
    record = build_report(run, policy=policy_from_mapping({"max_epsilon": 1}, name="t"))
    paths = write_report(run, record)
    texts = {kind: path.read_text() for kind, path in paths.items()}
    assert find_leaks(texts, secrets) == []
    assert find_leaks({"manifest": (run / "canaries.json").read_text()}, CANARY_SECRETS)  # the check can fire


def test_secret_kind_masks_every_letter_and_digit():
    from reports.pii_masking import mask_value

    assert mask_value("code 5713-2209-4461", "secret") == "**** ****-****-****"
    assert mask_value("code 5713-2209-4461").endswith("4461")  # the default keeps the last 4 digits
