"""The privacy ledger (auditor.dp.ledger): the one writer of privacy.json, one sentence per
fact, the delta split, epsilon composed over the history, and one format for epsilon."""

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

import auditor
from auditor.dp.accounting import epsilon_of
from auditor.dp.ledger import FACTS, PrivacyLedger, fact, note_after_training
from auditor.config import TrainConfig
from reports.summary import fmt_epsilon

ROOT = Path(auditor.__file__).resolve().parent.parent
PACKAGES = ("auditor", "canaries", "attacks", "reports")
LEDGER = Path("auditor/dp/ledger.py")
WRITERS = {"write_json", "write_text", "write_bytes", "dump", "atomic_file", "write_private", "open", "save"}


def privacy_writes(source: str) -> list[int]:
    """Lines of calls that write a file (``write_json``, ``open``, ``json.dump``, ...) with an
    argument that mentions privacy (``run.privacy``, ``"model/privacy.json"``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        args = [*node.args, *(k.value for k in node.keywords)]
        if isinstance(node.func, ast.Attribute):
            args.append(node.func.value)  # path.write_text(...)
        if name in WRITERS and any("privacy" in ast.unparse(a) for a in args):
            lines.append(node.lineno)
    return lines


def test_the_write_detector_finds_writes_of_privacy_json():
    assert privacy_writes("write_json(run.privacy, record)") == [1]
    assert privacy_writes("x = 1\n(run.model / 'privacy.json').write_text(s)") == [2]
    assert privacy_writes("with open(root / 'model' / 'privacy.json', 'w') as fh:\n    json.dump(p, fh)") == [1]
    assert privacy_writes("write_json(run.generation, stats)\nread_json(run.privacy)") == []


def test_no_module_but_the_ledger_writes_privacy_json():
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            lines = privacy_writes(path.read_text(encoding="utf-8"))
            if lines and rel != LEDGER:
                found[str(rel)] = lines
    assert found == {}
    assert privacy_writes((ROOT / LEDGER).read_text(encoding="utf-8"))  # ... and the ledger does


def test_each_sentence_is_defined_once_in_the_source():
    """No other module spells a fact's sentence (the longest literal part of each, up to 40 characters)."""
    for fact_id, text in FACTS.items():
        head = max(re.split(r"\{[^}]*\}", text.sentence), key=len)[:40]
        assert len(head) >= 15, fact_id
        holders = [str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                   if head in p.read_text(encoding="utf-8")]
        assert holders == [str(LEDGER)], (fact_id, holders)


@pytest.mark.parametrize("value,text", [
    (7.993586494443598, "7.994"), (8.0, "8"), (8, "8"), (0.51234, "0.5123"), (12.3456, "12.35"),
    (123456.7, "1.235e+05"), (0.0, "0"), (None, "n/a"), (float("inf"), "inf"),
])
def test_epsilon_has_one_format(value, text):
    assert fmt_epsilon(value) == text


def test_facts_are_made_from_the_table_only():
    assert fact("no_dp").sentence == "no DP guarantee: trained without DP (--no-dp)"
    assert fact("fake_column", column="ssn", fake="pattern").sentence == \
        "ssn: fresh fakes (pattern), drawn independently of the data"
    assert fact("fake_column", column="ssn", fake="pattern").entry == "not_learned"
    with pytest.raises(ValueError, match="unknown privacy fact 'pii replay scrub'"):
        fact("pii replay scrub")
    with pytest.raises(ValueError, match="needs the parameter 'n'"):
        fact("record_count_public")


def test_delta_split_and_epsilon_over_the_whole_history():
    ledger = PrivacyLedger(dp=True, delta=1e-5)
    assert ledger.reserve_delta("domain_selection", share=0.1) == 1e-5 * 0.1
    assert ledger.delta_accountant == 1e-5 - 1e-5 * 0.1
    ledger.charge("domain_selection", noise_multiplier=4.0, sample_rate=1.0, steps=1, details={"columns": ["a"]})
    ledger.charge("dp_sgd", noise_multiplier=1.1, sample_rate=0.05, steps=80)
    assert ledger.history == [(4.0, 1.0, 1), (1.1, 0.05, 80)]
    assert ledger.epsilon() == epsilon_of([(4.0, 1.0, 1), (1.1, 0.05, 80)], delta=9e-6)
    assert ledger.epsilon("rdp") == epsilon_of([(4.0, 1.0, 1), (1.1, 0.05, 80)], delta=9e-6, accountant="rdp")
    assert ledger.history_with((1.1, 0.05, 0)) == ledger.history  # no step yet: nothing pending
    with pytest.raises(ValueError, match="needs the run's delta"):
        PrivacyLedger(dp=True)


def test_written_record_states_epsilon_once_per_accountant(tmp_path):
    config = TrainConfig(epsilon=None, noise_multiplier=1.1, batch_size=32, epochs=2.0)
    ledger = PrivacyLedger.for_training(config, delta=1e-5)
    ledger.record_training(config=config, noise_multiplier=1.1, sample_rate=0.05, steps=80, n_records=640,
                           engine={"world_size": 1})
    ledger.note("record_count_public", n=640)
    ledger.note("record_count_public", n=640)
    ledger.note("fake_column", column="ssn", fake="pattern")
    record = ledger.write(tmp_path / "privacy.json")
    assert json.loads((tmp_path / "privacy.json").read_text()) == record
    assert record["epsilon"] == epsilon_of([(1.1, 0.05, 80)], delta=1e-5)
    assert record["history"] == [[1.1, 0.05, 80]]
    assert record["delta_split"] == {"accountant": 1e-5, "domain_selection": 0.0}
    assert record["guarantee"].startswith(f"(epsilon, delta) = ({fmt_epsilon(record['epsilon'])}, 1e-05) ")
    assert record["outside_guarantee"] == [fact("record_count_public", n=640).sentence]
    assert record["not_learned"] == ["ssn: fresh fakes (pattern), drawn independently of the data"]
    assert note_after_training(tmp_path / "privacy.json", "pii_replay_scrub") is True
    assert note_after_training(tmp_path / "privacy.json", "pii_replay_scrub") is False
    after = json.loads((tmp_path / "privacy.json").read_text())
    assert after["outside_guarantee"] == record["outside_guarantee"] + [fact("pii_replay_scrub").sentence]


def test_fit_is_a_loop_without_dp_branches():
    from auditor.train import fit

    assert "config.dp" not in inspect.getsource(fit)


def test_each_outside_fact_appears_once_with_its_sentence(tmp_path, demo_small_csv):
    """Inferred schema + reproducible noise + PII replay scrub (twice): every fact once, in the ledger's words."""
    from auditor.config import RunConfig
    from auditor.loading import load_dataset, resolve_schema
    from auditor.pipeline import generate, train
    from canaries.config import CanaryConfig

    cfg = RunConfig(train=TrainConfig(model="tiny", epochs=1.0, batch_size=32, lr=0.01, seed=3, reproducible_noise=7,
                                      device="cpu"),
                    canaries=CanaryConfig(enabled=False))
    trained = train(demo_small_csv, tmp_path / "run", config=cfg)
    for _ in range(2):
        generate(tmp_path / "run", num_records=8, scrub_pii="replayed", device="cpu")
    privacy = json.loads((tmp_path / "run" / "model" / "privacy.json").read_text())
    _, inferred = resolve_schema(load_dataset(demo_small_csv), None)
    assert len(inferred) == 11
    detection = privacy["identifier_detection"]  # no --schema: the identifier detection read the data too
    assert privacy["outside_guarantee"] == [f.sentence for f in inferred] + [
        fact("identifier_detection", sample=200, model=detection["model"], faked=", ".join(detection["faked"]),
             quasi=", ".join(detection["quasi_identifiers"])).sentence,
        fact("record_count_public", n=privacy["n_records"]).sentence,
        fact("reproducible_noise").sentence,
        fact("pii_replay_scrub").sentence,
    ]
    assert privacy["epsilon"] == trained.privacy["epsilon"]
    assert privacy["epsilon"] == epsilon_of([tuple(h) for h in privacy["history"]], delta=privacy["delta_accountant"])


def test_run_summary_states_epsilon_once(tmp_path):
    """`auditor run` / `auditor demo` end with epsilon once, in the one format."""
    from report_runs import dp_run, write_run

    from auditor.chain import RunOutcome
    from auditor.pipeline import ReportOutcome
    from auditor.rundir import RunDir
    from reports.build import build_report

    files = dp_run()
    files["model/privacy.json"]["epsilon"] = 7.993586494443598
    (tmp_path / "synthetic.csv").write_text("a\n1\n")
    write_run(tmp_path, files)
    record = build_report(tmp_path)
    outcome = RunOutcome(run=RunDir(tmp_path), privacy=files["model/privacy.json"],
                         generation=files["generation.json"] | {"released": 1931},
                         report=ReportOutcome(record=record, paths={k: tmp_path / f"report.{k}" for k in
                                                                    ("html", "md", "json")}),
                         timings={"train": 1.0})
    text = outcome.summary()
    assert text.count("ε") == 1 and "epsilon" not in text
    assert "ε = 7.994  δ = 1e-05" in text
