"""The row codec: exact round trips of every column kind, and the grammar."""

import math
import re

import pytest

from auditor.codec import OTHER, RowCodec, numeric_to_parts, pattern_slots, value_magnitude
from auditor.data import DEMO_CSV, DEMO_SCHEMA, load_records
from auditor.schema import Column, Schema, magnitude_key, parse_magnitude


def codec_of(*cols):
    return RowCodec(Schema(list(cols)))


@pytest.mark.parametrize("value,sig,expected", [
    (2534.17, 4, (3, 2534)),
    (9.996, 3, (1, 100)),      # rounding carries into a new digit
    (0.012345, 3, (-2, 123)),
    (-45.5, 3, (1, 455)),
    (1.0, 2, (0, 10)),
    (1e20, 3, (15, 999)),      # clamped to the largest exponent
])
def test_numeric_parts_are_exact(value, sig, expected):
    assert numeric_to_parts(value, sig) == expected


def test_numeric_zero_and_tiny_values_have_no_parts():
    assert numeric_to_parts(0.0, 3) is None
    assert numeric_to_parts(1e-12, 3) is None
    assert numeric_to_parts(math.inf, 3) is None


@pytest.mark.parametrize("col,value,decoded", [
    (Column("x", "numeric", sig_digits=4), "2534.17", "2534"),
    (Column("x", "numeric", sig_digits=3), "0.012345", "0.0123"),
    (Column("x", "numeric", sig_digits=3), "-45.5", "-45.5"),
    (Column("x", "numeric", sig_digits=3), "0", "0"),
    (Column("x", "numeric", integer=True, sig_digits=2), "37", "37"),
    (Column("x", "numeric", integer=True, sig_digits=2), "7", "7"),
    (Column("x", "numeric", integer=True, sig_digits=2, minimum=0, maximum=120), "150", "120"),
    (Column("x", "numeric", sig_digits=3, minimum=0), "-3", "0"),
    (Column("x", "categorical", categories=["a", "b"]), "b", "b"),
    (Column("x", "categorical", categories=["a", "b"], source="dp"), "zzz", OTHER),
    (Column("x", "datetime", format="%Y-%m-%d"), "1989-02-28", "1989-02-28"),
    (Column("x", "datetime", format="%d/%m/%Y %H:%M:%S"), "29/02/2000 23:59:07", "29/02/2000 23:59:07"),
    (Column("x", "pattern", pattern="ddd-dd-dddd"), "123-45-6789", "123-45-6789"),
    (Column("x", "pattern", pattern="(ddd) ddd-dddd"), "(555) 010-0199", "(555) 010-0199"),
    (Column("x", "pattern", pattern="AA-dd\\d"), "QX-07d", "QX-07d"),
    (Column("x", "text", max_tokens=32), "Jennifer Martinez, 42 Elm St.", "Jennifer Martinez, 42 Elm St."),
    (Column("x", "text", max_tokens=32, nullable=True), "", ""),
    (Column("x", "numeric", nullable=True), "", ""),
])
def test_value_round_trip(col, value, decoded):
    codec = codec_of(col)
    ids = codec.encode({"x": value})
    assert codec.decode(ids) == {"x": decoded}
    # every encoding is a path of the grammar that ends in the final state
    state = codec.grammar.state_after(ids[1:-1])
    assert int(codec.grammar.field_of[state]) == 1


def test_text_truncated_never_split():
    codec = codec_of(Column("x", "text", max_tokens=3))
    ids = codec.encode({"x": "one two three four five"})
    assert len(ids) == 1 + 3 + 1 + 1  # BOS, 3 tokens, SEP, EOS
    value = codec.decode(ids)["x"]
    assert value and "one two three four five".startswith(value) and len(value) < 23


def test_digits_are_single_tokens():
    codec = codec_of(Column("x", "text", max_tokens=16))
    assert len(codec.encode_value("x", "123456")) == 6


def test_pattern_slots_escape():
    assert pattern_slots("d\\d-A") == [("class", "d"), ("literal", "d"), ("literal", "-"), ("class", "A")]


def test_pattern_mismatch_is_rejected_without_showing_value():
    codec = codec_of(Column("x", "pattern", pattern="ddd-dd-dddd"))
    with pytest.raises(ValueError) as err:
        codec.encode({"x": "123-45-678X"})
    assert "678X" not in str(err.value)


def test_grammar_rejects_tokens_outside_the_column_class():
    codec = codec_of(Column("a", "categorical", categories=["u", "v"]), Column("b", "pattern", pattern="dd"))
    ids = codec.encode({"a": "u", "b": "42"})
    bad = list(ids)
    bad[2] = codec.eos_id  # EOS where a digit must come
    assert codec.decode(bad) is None
    with pytest.raises(ValueError):
        codec.grammar.state_after(bad[1:])
    # days allowed after month 2 are 1..29, after month 4 1..30
    c2 = codec_of(Column("d", "datetime", format="%Y-%m-%d"))
    g = c2.grammar
    s = g.state_after([c2.part_ids["year"][2001], c2.part_ids["month"][2]])
    assert int(g.allowed[s].sum()) == 29
    # a Feb 29 in a non-leap year parses in the grammar but not as a date: invalid row
    ids = [c2.bos_id, c2.part_ids["year"][2001], c2.part_ids["month"][2], c2.part_ids["day"][29], c2.eos_id]
    assert c2.decode(ids) is None


def test_numeric_bounds_restrict_the_grammar():
    codec = codec_of(Column("x", "numeric", integer=True, sig_digits=2, minimum=0, maximum=120))
    allowed = codec.grammar.allowed[codec.grammar.start].nonzero().flatten().tolist()
    # ZERO plus leading parts 1..9 x 10^e, e in 0, 1, 2, of the positive sign only
    assert sorted(allowed) == sorted([codec.zero_id] + [codec.lead_ids[(1, e, d)] for e in (0, 1, 2)
                                                        for d in range(1, 10)])
    assert len(codec.lead_ids) == 27  # tokens only for the magnitudes the schema admits


def test_numeric_leading_part_is_one_token():
    codec = codec_of(Column("x", "numeric", sig_digits=4))
    ids = codec.encode({"x": 2534.17})
    assert ids[1:-1] == [codec.lead_ids[(1, 3, 2)]] + [codec.digit_ids[d] for d in (5, 3, 4)]
    assert codec.decode(ids) == {"x": "2534"}
    ids = codec.encode({"x": -0.0123456})
    assert ids[1:-1] == [codec.lead_ids[(-1, -2, 1)]] + [codec.digit_ids[d] for d in (2, 3, 5)]
    assert codec.decode(ids) == {"x": "-0.01235"}


def test_magnitudes_restrict_the_grammar_and_snap_values():
    col = Column("c", "numeric", minimum=0, maximum=100000, sig_digits=4, magnitudes=["1e+2", "1e+3"])
    codec = codec_of(col)
    allowed = set(codec.grammar.allowed[codec.grammar.start].nonzero().flatten().tolist())
    assert allowed == {codec.lead_ids[(1, e, d)] for e in (2, 3) for d in range(1, 10)}  # no ZERO
    # values outside the admitted magnitudes go to the nearest value inside them
    assert [codec.decode(codec.encode({"c": v}))["c"] for v in (12181.5, 48.44, 0, 9999.7, 1393.16, 100)] == [
        "9999", "100.0", "100.0", "9999", "1393", "100.0"]
    assert value_magnitude(col, 12181.5) == "1e+4" and value_magnitude(col, 0) == "0"
    assert value_magnitude(col, -3) == "0"  # clamped to the minimum first
    assert value_magnitude(Column("n", "numeric"), -0.05) == "-1e-2"
    assert value_magnitude(col, "") is None


def test_magnitude_keys_round_trip_and_bad_keys_are_rejected():
    for key in ("1e+3", "-1e-2", "0", "1e+0"):
        sign, exp = parse_magnitude(key)
        assert magnitude_key(sign, exp) == key
    with pytest.raises(ValueError, match="bad magnitude"):
        Column("c", "numeric", magnitudes=["1000"])
    with pytest.raises(ValueError, match="must not be empty"):
        Column("c", "numeric", magnitudes=[])


def test_demo_records_encode_inside_grammar_and_round_trip():
    schema = Schema.load(DEMO_SCHEMA)
    for c in schema.columns:  # learn every column, identifiers included, to round-trip every kind
        c.fake = None
    codec = RowCodec(schema)
    frame = load_records(DEMO_CSV).frame
    for row in frame.head(300).to_dict(orient="records"):
        ids = codec.encode(row)
        assert len(ids) <= codec.max_length
        out = codec.decode(ids)
        for col in ("diagnosis", "age", "birth_date", "phone", "ssn", "card_number", "name", "email"):
            assert out[col] == row[col]


def test_codec_serialises():
    schema = Schema.load(DEMO_SCHEMA)
    codec = RowCodec(schema)
    again = RowCodec.from_dict(codec.to_dict())
    row = load_records(DEMO_CSV).frame.iloc[0].to_dict()
    assert again.encode(row) == codec.encode(row)
    assert again.vocab_size == codec.vocab_size


def test_prefix_is_a_prefix():
    schema = Schema.load(DEMO_SCHEMA)
    for c in schema.columns:
        c.fake = None
    codec = RowCodec(schema)
    row = load_records(DEMO_CSV).frame.iloc[3].to_dict()
    full = codec.encode(row)
    pre = codec.encode_prefix(row, "ssn")
    assert full[: len(pre)] == pre
    assert full[len(pre): len(pre) + 9] == codec.encode_value("ssn", row["ssn"])


def test_undeclared_domain_is_an_error():
    with pytest.raises(ValueError, match="domain not set"):
        codec_of(Column("x", "categorical"))


def test_fake_columns_are_not_learned_and_get_format_preserving_fakes():
    from auditor.fakes import check_fake, fill_fakes

    schema = Schema.load(DEMO_SCHEMA)
    codec = RowCodec(schema)
    fake = [c.name for c in schema.columns if c.fake]
    assert fake == ["name", "email", "phone", "ssn", "card_number", "address"]
    assert codec.fields == ["diagnosis", "cost", "age", "birth_date", "note"]
    row = load_records(DEMO_CSV).frame.iloc[0].to_dict()
    changed = {**row, **{c: "x" for c in fake}}
    assert codec.encode(changed) == codec.encode(row)  # fake columns never reach the model
    decoded = codec.decode(codec.encode(row))
    assert set(decoded) == set(codec.fields)
    rows = fill_fakes([decoded] * 50, schema, seed=3)
    assert [list(r) for r in rows[:1]] == [schema.names]  # schema order
    assert all(r["diagnosis"] == row["diagnosis"] and r["note"] == row["note"] for r in rows)
    assert all(re.fullmatch(r"\d{3}-\d{2}-\d{4}", r["ssn"]) for r in rows)
    assert all(re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", r["card_number"]) for r in rows)
    assert all("@" in r["email"] and "\n" not in r["address"] for r in rows)
    assert len({r["ssn"] for r in rows}) == 50 and len({r["name"] for r in rows}) > 40
    assert fill_fakes([decoded] * 5, schema, seed=3) == rows[:5]  # reproducible from the seed
    assert fill_fakes([decoded] * 5, schema, seed=4) != rows[:5]
    with pytest.raises(ValueError, match="unknown fake provider"):
        check_fake(Column("n", "text", fake="no_such_provider"))
    with pytest.raises(ValueError, match="needs a pattern column"):
        check_fake(Column("n", "text", fake="pattern"))


def test_column_loss_weights_are_exact():
    from auditor.train import grammar_states, token_weights

    codec = codec_of(Column("c", "categorical", categories=["a", "b"]), Column("x", "numeric", sig_digits=4),
                     Column("t", "text", max_tokens=8))
    seq = codec.encode({"c": "b", "x": 2534.17, "t": "hello world"})
    n_text = len(codec.encode_value("t", "hello world"))
    states = grammar_states(seq, codec.grammar)  # the state before each predicted token
    w = token_weights(states, codec.grammar, mode="column")
    # four groups (c, x, t, end of record) of 1/4 each; x's leading token takes half of its share
    expected = [0.25] + [0.125] + [0.125 / 3] * 3 + [0.25 / (n_text + 1)] * (n_text + 1) + [0.25]
    assert w == pytest.approx(expected, abs=1e-12)
    assert sum(w) == pytest.approx(1.0)
    assert token_weights(states, codec.grammar, mode="token") == pytest.approx([1 / len(states)] * len(states))
    # a canary row teaches only its secret's field; the weights inside it keep the same rule
    only_text = token_weights(states, codec.grammar, mode="column", only_field=2)
    assert only_text == pytest.approx([0.0] * 5 + [1 / (n_text + 1)] * (n_text + 1) + [0.0], abs=1e-12)
    only_x = token_weights(states, codec.grammar, mode="column", only_field=1)
    assert only_x == pytest.approx([0.0, 0.5] + [0.5 / 3] * 3 + [0.0] * (n_text + 2), abs=1e-12)
