"""Record-span canaries for tables without text or pattern columns, and the exposure cost rule (issue 15)."""

import math

import numpy as np
import pytest

from auditor.codec import RowCodec
from auditor.schema import Column, Schema
from canaries.config import CanaryConfig
from canaries.exposure_cost import MIN_REFERENCES, choose_references
from canaries.formats import CategoryPart, NumberPart, RecordFormat, make_format, number_text, record_values
from canaries.occurrences import count_occurrences
from canaries.plant import plant
from canaries.prompts import candidate_ids, canary_prompt, space_ids
from canaries.spans import number_part, record_format


def test_record_space_size_order_and_spec_round_trip():
    fmt = RecordFormat([CategoryPart("smoker", ["no", "yes"]), NumberPart("charges", 3, "1e+4")])
    assert fmt.size == 2 * 900
    assert fmt.log2_size == pytest.approx(math.log2(1800))
    assert record_values(fmt.at(0), 2) == ["no", "10000"]
    assert record_values(fmt.at(1), 2) == ["no", "10100"]
    assert record_values(fmt.at(900), 2) == ["yes", "10000"]
    assert record_values(fmt.at(1799), 2) == ["yes", "99900"]
    assert len(set(fmt.enumerate())) == 1800
    again = make_format(fmt.spec)
    assert again.spec == fmt.spec and again.size == 1800 and again.at(1234) == fmt.at(1234)
    assert again.columns == ["smoker", "charges"]
    with pytest.raises(ValueError, match="index 1800"):
        fmt.at(1800)
    with pytest.raises(ValueError, match="not a record secret of 3"):
        record_values(fmt.at(0), 3)
    with pytest.raises(ValueError, match="distinct categories"):
        CategoryPart("c", ["a", "a"])
    with pytest.raises(ValueError, match="column\\+categories"):
        make_format('record:[{"column":"c","digits":3}]')


def test_number_text_is_the_codecs_form():
    assert number_text(123, digits=3, sign=1, exponent=4) == "12300"
    assert number_text(123, digits=3, sign=1, exponent=2) == "123"
    assert number_text(123, digits=3, sign=1, exponent=0) == "1.23"
    assert number_text(123, digits=3, sign=1, exponent=-1) == "0.123"
    assert number_text(905, digits=3, sign=-1, exponent=3) == "-9050"
    assert NumberPart("x", 2, "-1e+1").value(0) == "-10" and NumberPart("x", 2, "1e-2").value(89) == "0.099"


@pytest.mark.parametrize("column, part", [
    (Column("n", "numeric", integer=True, sig_digits=2), NumberPart("n", 2, "1e+1")),
    (Column("n", "numeric", sig_digits=2, magnitudes=["1e-2", "1e+0"]), NumberPart("n", 2, "1e+0")),
    (Column("n", "numeric", sig_digits=2, magnitudes=["-1e+1", "1e+3"]), NumberPart("n", 2, "1e+3")),
    (Column("n", "numeric", sig_digits=2, minimum=-100, maximum=0), NumberPart("n", 2, "-1e+1")),
    (Column("n", "numeric", sig_digits=2, magnitudes=["1e-3"]), NumberPart("n", 2, "1e-3")),
])
def test_every_value_of_a_number_part_encodes_as_itself(column, part):
    got = number_part(column)
    assert got.to_dict() == part.to_dict()
    codec = RowCodec(Schema(columns=[column]))
    ids = {tuple(codec.encode_value("n", got.value(i))) for i in range(got.size)}
    assert len(ids) == got.size == 90
    assert all(codec.decode_value("n", codec.encode_value("n", got.value(i))) == got.value(i)
               for i in range(got.size))


def test_number_part_needs_a_magnitude_inside_the_bounds():
    assert number_part(Column("n", "numeric", integer=True, sig_digits=3, minimum=0, maximum=500)) is None
    assert number_part(Column("n", "numeric", integer=True, sig_digits=3, maximum=500)).magnitude == "-1e+2"
    assert number_part(Column("n", "numeric", sig_digits=3, magnitudes=["0"])) is None
    # 10.0 .. 99.9 fits a float column capped at 500
    assert number_part(Column("n", "numeric", sig_digits=3, minimum=0, maximum=500)).magnitude == "1e+1"


CREDIT = Schema(columns=[
    Column("default", "categorical", categories=["No", "Yes"]),
    Column("student", "categorical", categories=["No", "Yes"]),
    Column("balance", "numeric", sig_digits=3, minimum=0),
    Column("income", "numeric", sig_digits=3, minimum=0),
])


def test_span_choice_smallest_space_above_the_target():
    # spans: default 2, +student 4, +balance 3600, +income 3,240,000; balance+income 810,000 ...
    fmt = record_format(CREDIT.columns, count=340)
    assert fmt.columns == ["balance", "income"] and fmt.size == 900 * 900
    cats = [Column(n, "categorical", categories=[f"{n}{i}" for i in range(k)]) for n, k in
            (("a", 3), ("b", 4), ("c", 5))]
    small = record_format(cats, count=8)  # no span reaches the target: the largest, 60
    assert small.columns == ["a", "b", "c"] and small.size == 60
    # a text column breaks the run: only consecutive learned columns make a span
    broken = record_format([cats[0], Column("t", "text"), cats[1], cats[2]], count=8)
    assert broken.columns == ["b", "c"] and broken.size == 20
    with pytest.raises(ValueError, match="no column can hold a canary"):
        record_format([Column("t", "text")], count=8)


def test_plant_record_canaries_in_a_numeric_and_categorical_table():
    records = [{"default": "No", "student": "Yes", "balance": "812.5", "income": "30100"} for _ in range(40)]
    config = CanaryConfig(repetitions=(1, 2), per_repetition=2, twins=1, audit_canaries=10)
    codec = RowCodec(CREDIT)
    planted, manifest = plant(records, CREDIT, config=config, rng=np.random.default_rng(0),
                              secret_rng=np.random.default_rng(1), encoder=codec)
    assert not manifest.text and len(planted) == 40 + manifest.n_planted_rows
    secrets = [c.secret for c in manifest.canaries]
    assert len(secrets) == 18 == len(set(secrets))
    for c in manifest.canaries:
        assert c.fields == ["balance", "income"] and c.field == "balance" and c.context == ""
        balance, income = record_values(c.secret, 2)
        assert c.record["balance"] == balance and c.record["income"] == income
        assert c.record["default"] in ("No", "Yes")
        prompt = canary_prompt(codec, c)
        assert len(prompt.prefix) == 3 and len(prompt.secret) == 6  # BOS + 2 categories; 3 + 3 number tokens
    assert make_format(manifest.canaries[0].format).size == 810_000
    small = RecordFormat([CategoryPart("student", ["No", "Yes"]), NumberPart("balance", 1, "1e+2")])
    c0 = manifest.canaries[0]
    c0_small = type(c0)(**{**c0.__dict__, "fields": ["student", "balance"], "field": "student"})
    prompt0 = canary_prompt(codec, c0)
    assert space_ids(codec, c0_small, prompt0, small) == [candidate_ids(codec, c0_small, prompt0, v)
                                                          for v in small.enumerate()]
    c = manifest.group("schedule")[0]
    assert sum(planted[pos] == c.record for pos in c.rows) == c.repetitions
    # a numeric column named alone is a span of that column
    alone = plant(records, CREDIT, config=CanaryConfig(column="income", repetitions=(1,), per_repetition=1,
                                                      audit_canaries=0), rng=np.random.default_rng(0),
                  secret_rng=np.random.default_rng(1), encoder=codec)[1]
    assert alone.canaries[0].fields == ["income"] and make_format(alone.canaries[0].format).size == 900


def test_span_occurrences_match_cell_by_cell():
    secret = '["No", "12300", "0.50"]'
    fields = {"c1": ["default", "balance", "rate"]}
    rows = [{"default": "No", "balance": "12300", "rate": "0.50"},   # full
            {"default": "no", "balance": "12300", "rate": "0.51"},   # 2 of 3 cells: partial
            {"default": "Yes", "balance": "123000", "rate": "0.5"},  # no cell equal
            {"default": "No", "balance": "1", "rate": "2"}]          # 1 of 3
    occ = count_occurrences({"c1": secret}, rows, fields=fields)["c1"]
    assert (occ.full, occ.partial) == (1, 1)
    one = count_occurrences({"c2": '["12300"]'}, [{"b": "12300"}, {"b": "912300"}, {"b": "1230"}, {"b": "9"}],
                            fields={"c2": ["b"]})["c2"]
    assert (one.full, one.partial) == (1, 2)  # exact cell only; "1230" is a 4-character run of 5


def test_cost_rule_exact_when_it_fits_the_budget():
    exact = choose_references(size=10**4, groups=1, exact_s_per_candidate=1e-5, sampled_s_per_candidate=1e-4,
                              budget_s=1.0, exact_max_space=10**6, n_references=20_000)
    assert (exact.method, exact.n) == ("exact", 10**4) and exact.estimated_s == pytest.approx(0.1)
    # 40 distinct prefixes of a 10^6 space: 400 s exact, over a 120 s budget: sample 120/(40*1e-3) = 3000
    many = choose_references(size=10**6, groups=40, exact_s_per_candidate=1e-5, sampled_s_per_candidate=1e-3,
                             budget_s=120.0, exact_max_space=10**6, n_references=20_000)
    assert (many.method, many.n) == ("sampled", 3000)
    assert many.exact_estimated_s == pytest.approx(400.0) and many.estimated_s == pytest.approx(120.0)
    # the same space under one shared prefix fits: 10 s
    shared = choose_references(size=10**6, groups=1, exact_s_per_candidate=1e-5, sampled_s_per_candidate=1e-3,
                               budget_s=120.0, exact_max_space=10**6, n_references=20_000)
    assert shared.method == "exact"
    # the memory cap wins over the budget; a fast scorer samples n_references
    capped = choose_references(size=10**7, groups=1, exact_s_per_candidate=1e-9, sampled_s_per_candidate=1e-9,
                               budget_s=120.0, exact_max_space=10**6, n_references=20_000)
    assert (capped.method, capped.n) == ("sampled", 20_000)
    # a slow scorer still gets the floor of references
    slow = choose_references(size=10**6, groups=40, exact_s_per_candidate=1.0, sampled_s_per_candidate=1.0,
                             budget_s=1.0, exact_max_space=10**6, n_references=20_000)
    assert (slow.method, slow.n) == ("sampled", MIN_REFERENCES)
    with pytest.raises(ValueError, match="positive"):
        choose_references(size=10, groups=0, exact_s_per_candidate=1, sampled_s_per_candidate=1, budget_s=1,
                          exact_max_space=10, n_references=10)


def test_a_column_whose_dp_domain_kept_nothing_holds_no_part():
    empty = Column("e", "categorical", categories=[], source="dp")
    fmt = record_format([Column("a", "categorical", categories=["x", "y"]), empty,
                         Column("b", "categorical", categories=["u", "v", "w"])], count=4)
    assert fmt.columns == ["b"] and fmt.size == 3
    schema = Schema(columns=[empty, Column("b", "categorical", categories=["u", "v", "w"])])
    _, manifest = plant([{"e": "q", "b": "u"}] * 5, schema,
                        config=CanaryConfig(repetitions=(1,), per_repetition=1, twins=1, audit_canaries=0),
                        rng=np.random.default_rng(0), secret_rng=np.random.default_rng(1), encoder=RowCodec(schema))
    assert [c.record["e"] for c in manifest.canaries] == ["<other>", "<other>"]


def test_a_small_record_span_gets_fewer_canaries():
    from canaries.plant import fitted_to_space

    config = CanaryConfig()  # 5 repetition counts x 4 x (1 + 1 twin) = 40 scheduled and twins, 300 audit
    assert (fitted_to_space(config, 1000).per_repetition, fitted_to_space(config, 1000).audit_canaries) == (4, 300)
    assert (fitted_to_space(config, 400).per_repetition, fitted_to_space(config, 400).audit_canaries) == (4, 160)
    assert (fitted_to_space(config, 72).per_repetition, fitted_to_space(config, 72).audit_canaries) == (3, 0)
    assert fitted_to_space(config, 12) is config
    cats = Schema(columns=[Column("a", "categorical", categories=list("abcdef")),
                           Column("b", "categorical", categories=list("wxyz")),
                           Column("c", "categorical", categories=list("uvt"))])
    _, manifest = plant([{"a": "a", "b": "x", "c": "u"}] * 10, cats, config=config, rng=np.random.default_rng(0),
                        secret_rng=np.random.default_rng(1), encoder=RowCodec(cats))
    assert len(manifest.canaries) == 30 == len({c.secret for c in manifest.canaries})
    assert (manifest.config["per_repetition"], manifest.config["audit_canaries"]) == (3, 0)
    small = Schema(columns=cats.columns[1:])  # |R| = 12: not even one canary per repetition count fits
    with pytest.raises(ValueError, match="12 distinct secrets"):
        plant([{"b": "x", "c": "u"}] * 10, small, config=config, rng=np.random.default_rng(0),
              secret_rng=np.random.default_rng(1))


def test_small_record_spans_are_counted_not_scrubbed():
    cats = Schema(columns=[Column("a", "categorical", categories=list("abcdef")),
                           Column("b", "categorical", categories=list("wxyz"))])
    config = CanaryConfig(repetitions=(1,), per_repetition=2, twins=1, audit_canaries=0)
    _, small = plant([{"a": "a", "b": "x"}] * 10, cats, config=config, rng=np.random.default_rng(0),
                     secret_rng=np.random.default_rng(1))
    assert small.scrub_ids() == []
    _, large = plant([{"default": "No", "student": "No", "balance": "1", "income": "2"}] * 10, CREDIT,
                     config=config, rng=np.random.default_rng(0), secret_rng=np.random.default_rng(1))
    assert large.scrub_ids() == [c.id for c in large.inserted()] and len(large.scrub_ids()) == 2


def test_a_record_span_canary_row_teaches_only_its_span():
    from auditor.train import grammar_states, token_weights

    codec = RowCodec(CREDIT)
    seq = codec.encode({"default": "No", "student": "Yes", "balance": "812", "income": "30100"})
    states = grammar_states(seq, codec.grammar)
    fields = [int(codec.grammar.field_of[s]) for s in states]  # 0, 1, 2 x3, 3 x3, 4 (EOS)
    weights = token_weights(states, codec.grammar, mode="token", only_field=(2, 3))
    assert [w > 0 for w in weights] == [f in (2, 3) for f in fields]
    assert sum(weights) == pytest.approx(1.0) and weights.count(1 / 6) == 6
