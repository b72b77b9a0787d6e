"""Leaks measured against the holdout control: the excess statistics, PII replay weighted by rarity,
re-identification in context, record copies, and the policy keys that read them."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from report_runs import dp_run, write_run

from attacks.distance import record_copies
from attacks.distance import run as distance_run
from attacks.excess import excess_over_control, fisher_one_sided
from auditor.pii.pii_audit import control_block
from auditor.pii.replay import record_evidence
from auditor.pii.scan import Finding
from auditor.policies import load_policy as load_preset
from reports.build import build_report
from reports.markdown import render_markdown
from reports.policy import evaluate, policy_from_mapping, verdict

ALPHA = 0.0125  # each tail of each split's interval at overall confidence 0.95 (Bonferroni over two splits)


# ----------------------------------------------------------------------------- attacks.excess

def test_fisher_one_sided_by_hand():
    # N = 6 pooled records, K = 4 hits, n = 4 in train: P[X >= 4] = C(4,4) C(2,0) / C(6,4) = 1/15
    assert fisher_one_sided(train_hits=4, train_n=4, control_hits=0, control_n=2) == pytest.approx(1 / 15)
    # N = 4, K = 2, n = 3: P[X >= 2] = C(2,2) C(2,1) / C(4,3) = 2/4
    assert fisher_one_sided(train_hits=2, train_n=3, control_hits=0, control_n=1) == pytest.approx(0.5)
    # as many control hits as chance predicts is no evidence: P[X >= 1] = 1 - C(1,0) C(1,1)/C(2,1) = 1/2
    assert fisher_one_sided(train_hits=1, train_n=1, control_hits=1, control_n=1) == pytest.approx(1.0)
    assert fisher_one_sided(train_hits=0, train_n=5, control_hits=0, control_n=5) == 1.0


def test_excess_all_train_records_hit_none_of_the_control():
    e = excess_over_control(train_hits=4, train_n=4, control_hits=0, control_n=2)
    # Clopper-Pearson closed forms: k = n -> lower alpha^(1/n); k = 0 -> upper 1 - alpha^(1/n)
    train_lo, control_hi = ALPHA ** (1 / 4), 1 - ALPHA ** (1 / 2)
    assert (e["train_rate"], e["control_rate"], e["excess_rate"], e["excess"]) == (1.0, 0.0, 1.0, 4.0)
    assert e["excess_rate_ci"] == pytest.approx([train_lo - control_hi, 1.0])
    assert e["excess_ci"] == pytest.approx([4 * (train_lo - control_hi), 4.0])
    assert train_lo - control_hi < 0 and e["excess_lower"] == 0.0  # four records cannot show a leak: floored
    assert e["p_value"] == pytest.approx(1 / 15)
    e = excess_over_control(train_hits=20, train_n=20, control_hits=0, control_n=20)
    lower = ALPHA ** (1 / 20) - (1 - ALPHA ** (1 / 20))
    assert e["excess_lower"] == pytest.approx(20 * lower) and 20 * lower > 12
    assert e["p_value"] == pytest.approx(1 / math.comb(40, 20))


def test_no_hits_anywhere_is_excess_zero():
    e = excess_over_control(train_hits=0, train_n=400, control_hits=0, control_n=100)
    assert (e["excess"], e["excess_lower"], e["p_value"]) == (0.0, 0.0, 1.0)
    assert e["excess_rate_ci"] == pytest.approx([-(1 - ALPHA ** (1 / 100)), 1 - ALPHA ** (1 / 400)])


def test_rates_not_counts_are_compared():
    # 4 of 400 training records vs 1 of 100 holdout records: the same rate, no excess
    e = excess_over_control(train_hits=4, train_n=400, control_hits=1, control_n=100)
    assert e["excess"] == pytest.approx(0.0) and e["excess_lower"] == 0.0
    assert e["p_value"] > 0.5


@pytest.mark.parametrize("kwargs, message", [
    ({"train_hits": 1, "train_n": 0, "control_hits": 0, "control_n": 1}, "train_n"),
    ({"train_hits": 3, "train_n": 2, "control_hits": 0, "control_n": 1}, "train_hits"),
    ({"train_hits": 0, "train_n": 2, "control_hits": -1, "control_n": 1}, "control_hits"),
    ({"train_hits": 0, "train_n": 2, "control_hits": 0, "control_n": 1, "confidence": 1.0}, "confidence"),
])
def test_excess_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        excess_over_control(**kwargs)


# ----------------------------------------------------------------------------- PII replay, rarity, context

def _findings(table: pd.DataFrame, entities: dict[str, str]) -> list[Finding]:
    """What a scanner reports on a hand-made table: every cell of the given columns is one finding."""
    return [Finding(row=i, column=c, entity=e, start=0, end=len(v), score=1.0, text=v)
            for c, e in entities.items() for i, v in enumerate(table[c])]


ENTITIES = {"email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER", "city": "LOCATION"}
CITIES = ["Oslo", "Lima", "Pune", "Graz"]


def _people(ids) -> pd.DataFrame:
    ids = list(ids)
    return pd.DataFrame({"email": [f"member{i:05d}@example.org" for i in ids],
                         "phone": [f"(212) 555-{i:04d}" for i in ids],
                         "city": [CITIES[i % 4] for i in ids]})


TRAIN, HOLDOUT = _people(range(0, 400)), _people(range(400, 500))


def _pii_record(synthetic: pd.DataFrame) -> dict:
    """The ``pii.replay_vs_control`` block as auditor.pii.pii_audit builds it, from hand-made findings."""
    ev = record_evidence(_findings(synthetic, ENTITIES),
                         {"train": _findings(TRAIN, ENTITIES), "holdout": _findings(HOLDOUT, ENTITIES)})
    return {"pii": {"replay_vs_control": control_block(ev, n_train=len(TRAIN), n_holdout=len(HOLDOUT))}}


def _policy_checks(record: dict) -> dict:
    policy = policy_from_mapping({k: v for k, v in load_preset("internal").thresholds.items()
                                  if k in ("max_excess_replayed_pii", "max_replayed_in_context")}, name="internal")
    return {c.name: (c.value, c.passed) for c in evaluate(record, policy)}


def test_fresh_fakes_only_have_no_excess_and_pass():
    # fresh people, but the cities (shared by 100 records each) are all "replayed"
    record = _pii_record(_people(range(1000, 1500)))
    block = record["pii"]["replay_vs_control"]
    assert (block["unique"]["train_hits"], block["unique"]["control_hits"]) == (0, 0)
    assert (block["in_context"]["train_hits"], block["in_context"]["control_hits"]) == (0, 0)
    assert block["unique"]["excess"] == 0.0 and block["in_context"]["synthetic_rows"] == []
    assert _policy_checks(record) == {"max_excess_replayed_pii": (0.0, True), "max_replayed_in_context": (0.0, True)}


def test_one_percent_copied_rows_are_flagged_in_context():
    synthetic = _people(range(1000, 1500))
    copied_to, copied_from = [7, 107, 207, 307, 407], [3, 50, 99, 250, 399]  # 5 of 500 rows = 1%
    synthetic.iloc[copied_to] = TRAIN.iloc[copied_from].to_numpy()
    block = _pii_record(synthetic)["pii"]["replay_vs_control"]
    ctx = block["in_context"]
    assert (ctx["train_hits"], ctx["train_n"], ctx["control_hits"], ctx["control_n"]) == (5, 400, 0, 100)
    assert ctx["excess"] == 5.0 and ctx["synthetic_rows"] == copied_to
    # 5 unique values in train and none in the control: Fisher P[X >= 5], N = 500, K = 5, n = 400
    assert ctx["p_value"] == pytest.approx(math.comb(400, 5) / math.comb(500, 5))
    assert block["unique"]["train_hits"] == 5
    # the copied cities are held by 100 records each: no evidence by rarity
    assert {e: b["train_hits"] for e, b in block["unique"]["by_entity"].items()} == {
        "EMAIL_ADDRESS": 5, "PHONE_NUMBER": 5}
    assert _policy_checks(_pii_record(synthetic)) == {
        "max_replayed_in_context": (5.0, False), "max_excess_replayed_pii": (0.0, True)}


def test_values_in_the_control_or_shared_are_no_evidence():
    train = pd.DataFrame({"email": ["a@x.org", "b@x.org", "c@x.org"], "city": ["Oslo", "Oslo", "Lima"]})
    holdout = pd.DataFrame({"email": ["b@x.org", "d@x.org"], "city": ["Pune", "Lima"]})
    synthetic = pd.DataFrame({"email": ["a@x.org", "b@x.org", "d@x.org", "z@x.org"],
                              "city": ["Oslo", "Oslo", "Pune", "Lima"]})
    ents = {"email": "EMAIL_ADDRESS", "city": "LOCATION"}
    ev = record_evidence(_findings(synthetic, ents), {"train": _findings(train, ents), "holdout": _findings(holdout, ents)})
    # a@ is unique to train row 0; b@ is also in the holdout; d@ is unique to holdout row 1;
    # Oslo is held by two records, Lima by two, Pune by holdout row 0 alone
    assert ev.unique == {"train": frozenset({0}), "holdout": frozenset({0, 1})}
    assert ev.unique_by_entity == {"EMAIL_ADDRESS": {"train": frozenset({0}), "holdout": frozenset({1})},
                                   "LOCATION": {"train": frozenset(), "holdout": frozenset({0})}}
    # synthetic row 0 (a@, Oslo): only train row 0 holds both -> re-identified in context;
    # row 1 (b@, Oslo): train row 1 holds both, holdout row 0 holds b@ only -> one holder -> in context
    assert ev.in_context == {"train": frozenset({0, 1}), "holdout": frozenset()}
    assert ev.context_rows == {"train": frozenset({0, 1}), "holdout": frozenset()}


def test_pii_audit_reports_the_control_block():
    from auditor.pii import analyze, report

    people = lambda ids: pd.DataFrame({"email": [f"member{i:04d}.x@example.org" for i in ids]})  # noqa: E731
    train, holdout, synthetic = people(range(0, 40)), people(range(40, 50)), people(range(100, 130))
    synthetic.iloc[[3, 4]] = train.iloc[[0, 1]].to_numpy()
    block = report(analyze(synthetic=synthetic, train=train, holdout=holdout, config={"ner": False}),
                   salt="s")["replay_vs_control"]
    assert (block["unique"]["train_hits"], block["unique"]["control_hits"]) == (2, 0)
    assert block["unique"]["by_column"]["email"]["train_hits"] == 2
    assert block["in_context"]["train_hits"] == 0  # one value per row: nothing to put in context
    without_control = report(analyze(synthetic=synthetic, train=train, config={"ner": False}), salt="s")
    assert without_control["replay_vs_control"] is None


# ----------------------------------------------------------------------------- copies

def test_record_copies_by_hand():
    c = record_copies(np.array([1, 2, 3, 9, 2]), np.array([1, 2, 5, 6]), np.array([3, 7]))
    assert (c["train_hits"], c["control_hits"]) == (2, 1)
    assert c["excess"] == pytest.approx(4 * (2 / 4 - 1 / 2))
    assert (c["synthetic_rows"], c["synthetic_rows_total"]) == ([0, 1, 4], 3)


def test_near_copies_on_the_learned_columns():
    rng = np.random.default_rng(3)
    people = lambda n: pd.DataFrame({"age": rng.integers(18, 90, n).astype(float),  # noqa: E731
                                     "income": rng.normal(5e4, 1e4, n).round(2),
                                     "name": [f"fake {v}" for v in rng.integers(0, 10**9, n)]})
    train, holdout, synthetic = people(60), people(30), people(50)
    synthetic.loc[[5, 6], ["age", "income"]] = train.loc[[10, 11], ["age", "income"]].to_numpy()  # fresh names
    synthetic.loc[9] = train.loc[12]
    kinds = {"age": "numeric", "income": "numeric", "name": "text"}
    out = distance_run(synthetic=synthetic, train=train, holdout=holdout, column_kinds=kinds,
                       learned_columns=["age", "income"])
    exact, near = out["copies"]["exact"], out["copies"]["near"]
    assert (exact["train_hits"], exact["control_hits"], exact["synthetic_rows"]) == (1, 0, [9])
    assert (near["train_hits"], near["control_hits"], near["synthetic_rows"]) == (3, 0, [5, 6, 9])
    assert out["copies"]["learned_columns"] == ["age", "income"]
    with pytest.raises(ValueError, match="learned_columns"):
        distance_run(synthetic=synthetic, train=train, holdout=holdout, column_kinds=kinds, learned_columns=["zip"])


# ----------------------------------------------------------------------------- model-free verdict

def _model_free_files() -> dict:
    files = dp_run()
    for rel in ("model/privacy.json", "generation.json", "audit/exposure.json", "audit/mia.json",
                "audit/dp_audit.json", "canaries.json"):
        files.pop(rel, None)
    files["run.json"]["config"] = {"mode": "model-free", "synthetic": "s.csv", "train": "t.csv"}
    files["audit/quality.json"]["validity"] = None
    return files


def test_model_free_checks_that_need_a_model_are_not_applicable(tmp_path):
    run = write_run(tmp_path, _model_free_files())
    policy = policy_from_mapping({"max_epsilon": 10, "max_canary_exposure": 10, "min_validity": 0.8,
                                  "max_dcr_train_share": 0.9}, name="t")
    record = build_report(run, policy=policy)
    assert [c["name"] for c in record["checks"]] == ["max_dcr_train_share"]
    assert record["verdict"] == "pass"
    basis = record["verdict_basis"]
    assert basis["mode"] == "model-free" and basis["checks"] == ["max_dcr_train_share"]
    assert [c["name"] for c in basis["not_applicable"]] == ["max_epsilon", "max_canary_exposure", "min_validity"]
    assert "rests on 1 check(s): max_dcr_train_share" in basis["text"]
    assert basis["text"] in render_markdown(record)


def test_require_dp_fails_without_a_dp_claim(tmp_path):
    policy = policy_from_mapping({"require_dp": True, "max_dcr_train_share": 0.9}, name="t")
    model_free = build_report(write_run(tmp_path / "mf", _model_free_files()), policy=policy)
    (failed,) = [c for c in model_free["checks"] if not c["passed"]]
    assert (failed["name"], failed["value"]) == ("require_dp", 0.0)
    assert model_free["verdict"] == "fail"
    with_dp = build_report(write_run(tmp_path / "dp", dp_run()), policy=policy)
    assert {c["name"]: c["value"] for c in with_dp["checks"]}["require_dp"] == 1.0
    assert with_dp["verdict"] == "pass"
    assert "require_dp" not in policy_from_mapping({"require_dp": False, "max_epsilon": 3}, name="t").thresholds
    with pytest.raises(ValueError, match="require_dp must be true or false"):
        policy_from_mapping({"require_dp": 1}, name="t")


def test_a_policy_none_of_whose_checks_applies_does_not_pass(tmp_path):
    record = build_report(write_run(tmp_path, _model_free_files()),
                          policy=policy_from_mapping({"max_epsilon": 10}, name="t"))
    assert record["checks"] == [] and record["verdict"] == "fail"
    assert verdict([]) == "fail"


def test_public_form_drops_the_named_rows_and_still_renders(tmp_path):
    from report_runs import nodp_run
    from reports.html import render_html
    from reports.public import public_record

    record = build_report(write_run(tmp_path, nodp_run()), policy=load_preset("internal"))
    assert record["distance"]["copies"]["exact"]["synthetic_rows"] == [88, 1203]
    assert "synthetic rows (0-based) 88, 1203" in render_markdown(record)
    public = public_record(record)
    assert '"synthetic_rows":' not in json.dumps({k: v for k, v in public.items() if k != "release"})
    assert public["distance"]["copies"]["exact"]["train_hits"] == 2  # the counts stay
    assert "distance.copies.exact.synthetic_rows" in public["release"]["removed"]
    assert "0-based" not in render_markdown(public) and "0-based" not in render_html(public)
