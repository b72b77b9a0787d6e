"""auditor.data: schema inference (outside the guarantee) and validation against a declared schema."""

from __future__ import annotations

import pandas as pd
import pytest

from auditor.data import load_records
from auditor.schema_inference import infer_schema, pattern_regex, require_valid, inferred_schema_facts, text_schema, validate_against_schema, value_shape
from auditor.errors import UserError
from auditor.schema import Column, Schema

SECRET = "078-05-1120"


def _infer_one(values: list[str]) -> Column:
    return infer_schema(pd.DataFrame({"c": values}, dtype="str")).columns[0]


# ----------------------------------------------------------------- inference, kind by kind


def test_numeric_integer():
    c = _infer_one(["18", "-3", "90", "+7", "1200"])
    assert (c.kind, c.integer, c.sig_digits, c.source) == ("numeric", True, 2, "inferred")


def test_numeric_float_sig_digits():
    c = _infer_one(["4012.37", "150.5", "1e3", ".25"])
    assert (c.kind, c.integer, c.sig_digits) == ("numeric", False, 6)


@pytest.mark.parametrize("values", [["007", "123"], ["1,000", "2"]])  # NaN/inf: refused (test_hostile_values)
def test_not_numeric(values):
    assert _infer_one(values * 30).kind != "numeric"


def test_long_digit_strings_are_patterns_not_numbers():
    cards = [f"4{i:015d}" for i in range(40)]
    c = _infer_one(cards)
    assert (c.kind, c.pattern) == ("pattern", "d" * 16)


@pytest.mark.parametrize(
    "values,fmt",
    [
        (["2024-01-31", "1999-12-01"], "%Y-%m-%d"),
        (["01/31/2024", "12/01/1999"], "%m/%d/%Y"),
        (["31/01/2024", "12/01/1999"], "%d/%m/%Y"),
        (["2024-01-31 23:59:00", "1999-12-01 00:00:00"], "%Y-%m-%d %H:%M:%S"),
    ],
)
def test_datetime_formats(values, fmt):
    c = _infer_one(values)
    assert (c.kind, c.format) == ("datetime", fmt)


def test_datetime_must_print_back():
    # strptime accepts "2024-1-5" under %Y-%m-%d, but the codec could not reproduce it
    assert _infer_one(["2024-1-5", "2024-01-05"] * 20).kind != "datetime"


def test_categorical_has_no_domain():
    c = _infer_one(["asthma"] * 30 + ["flu"] * 20 + ["migraine"] * 10)
    assert (c.kind, c.categories) == ("categorical", None)


def test_few_rows_per_value_is_not_categorical():
    assert _infer_one(["red", "green", "blue", "red", "green"]).kind == "text"


@pytest.mark.parametrize(
    "values,pattern",
    [
        (["123-45-6789", "987-65-4321"], "ddd-dd-dddd"),
        (["(555) 010-1234", "(212) 555-0000"], "(ddd) ddd-dddd"),
        (["4111 1111 1111 1111", "5500 0000 0000 0004"], "dddd dddd dddd dddd"),
        (["AB-1234x", "ZQ-0000k"], "AA-dddda"),
        (["a\\12", "b\\34"], "a\\\\dd"),
    ],
)
def test_pattern(values, pattern):
    c = _infer_one(values)
    assert (c.kind, c.pattern) == ("pattern", pattern)
    assert all(pattern_regex(c.pattern).fullmatch(v) for v in values)


@pytest.mark.parametrize("values", [["abc-de", "xyz-uv"], ["1-2", "3-4"], ["123-45", "12-345"]])
def test_not_a_pattern(values):
    assert _infer_one(values).kind == "text"


def test_nullable_and_all_missing():
    frame = pd.DataFrame({"a": ["1", "", "3"], "b": ["", "", ""]}, dtype="str")
    a, b = infer_schema(frame).columns
    assert (a.kind, a.nullable) == ("numeric", True)
    assert (b.kind, b.nullable) == ("text", True)


def test_inferred_schema_holds_no_values_and_round_trips(tmp_path):
    values = ["asthma"] * 30 + ["flu"] * 20
    frame = pd.DataFrame({"dx": values, "ssn": [f"{SECRET[:-4]}{i:04d}" for i in range(50)]}, dtype="str")
    schema = infer_schema(frame)
    schema.dump(tmp_path / "s.yaml")
    dumped = (tmp_path / "s.yaml").read_text()
    assert "asthma" not in dumped and SECRET[:3] not in dumped
    assert all(c.source == "inferred" for c in Schema.from_dict(schema.to_dict()).columns)


def test_inferred_schema_facts():
    schema = Schema(
        columns=[
            Column("age", "numeric", integer=True, sig_digits=2, source="inferred"),
            Column("ssn", "pattern", pattern="ddd-dd-dddd", nullable=True, source="inferred"),
            Column("dx", "categorical", source="dp"),
            Column("note", "text", source="declared"),
        ]
    )
    assert inferred_schema_facts(schema) == {"age": "kind=numeric, integer=true, sig_digits=2, nullable=false",
                                             "ssn": "kind=pattern, pattern=ddd-dd-dddd, nullable=true"}
    assert inferred_schema_facts(text_schema()) == {}


def test_text_schema():
    s = text_schema(max_tokens=64)
    assert s.text and s.names == ["text"] and s.columns[0].max_tokens == 64


def test_infer_from_loaded_file(tmp_path):
    p = tmp_path / "d.csv"
    rows = "\n".join(f"{20 + i % 50},{'ab'[i % 2]},2024-01-{1 + i % 28:02d},{i:03d}-{i:04d}" for i in range(100))
    p.write_text("age,g,day,code\n" + rows + "\n")
    kinds = [c.kind for c in infer_schema(load_records(p).frame).columns]
    assert kinds == ["numeric", "categorical", "datetime", "pattern"]


def test_value_shape():
    assert value_shape("Ab1-Z é\\") == "Aad-A é\\\\"


# ----------------------------------------------------------------- validation against a declared schema

DECLARED = Schema(
    columns=[
        Column("dx", "categorical", categories=["asthma", "flu"]),
        Column("age", "numeric", integer=True),
        Column("cost", "numeric", nullable=True),
        Column("born", "datetime", format="%Y-%m-%d"),
        Column("ssn", "pattern", pattern="ddd-dd-dddd"),
        Column("note", "text"),
    ]
)


def test_valid_frame_has_no_problems():
    frame = pd.DataFrame(
        [["asthma", "41", "1.5", "1984-02-29", SECRET, "x"], ["flu", "7", "", "2019-12-31", "123-45-6789", "free text"]],
        columns=DECLARED.names,
    )
    assert validate_against_schema(frame, DECLARED) == []
    require_valid(frame, DECLARED)


def test_each_problem_names_column_and_record_not_value():
    bad = [
        ["cancer", "4.5", "abc", "1984-02-30", "078-05-112O", "x"],
        ["", "x", "1e", "02/01/1984", "078051120", "ok"],
    ]
    frame = pd.DataFrame(bad, columns=DECLARED.names)
    problems = validate_against_schema(frame, DECLARED)
    got = {(p.column, p.row): p.reason for p in problems}
    assert got == {
        ("dx", 0): "not in the declared categories",
        ("age", 0): "not an integer",
        ("cost", 0): "not a number",
        ("born", 0): "not a date in format %Y-%m-%d",
        ("ssn", 0): "does not match pattern ddd-dd-dddd",
        ("dx", 1): "missing value in a column that is not nullable",
        ("age", 1): "not a number",
        ("cost", 1): "not a number",
        ("born", 1): "not a date in format %Y-%m-%d",
        ("ssn", 1): "does not match pattern ddd-dd-dddd",
    }
    assert str(problems[0]) == "column 'dx', record 1: not in the declared categories"
    for p in problems:
        assert all(v not in str(p) for row in bad for v in row if len(v) > 2)


def test_missing_and_extra_columns():
    frame = pd.DataFrame({"dx": ["flu"], "extra": ["1"]})
    problems = {(p.column, p.row, p.reason) for p in validate_against_schema(frame, Schema(columns=DECLARED.columns[:2]))}
    assert problems == {
        ("age", None, "declared in the schema but not in the data"),
        ("extra", None, "in the data but not declared in the schema"),
    }


def test_domain_none_accepts_anything():
    s = Schema(columns=[Column("dx", "categorical")])
    assert validate_against_schema(pd.DataFrame({"dx": ["anything"]}), s) == []


def test_require_valid_is_one_line_without_values():
    frame = pd.DataFrame({"ssn": [SECRET.replace("-", "")] * 5})
    with pytest.raises(UserError) as info:
        require_valid(frame, Schema(columns=[Column("ssn", "pattern", pattern="ddd-dd-dddd")]), name="d.csv")
    msg = str(info.value)
    assert msg.startswith("d.csv does not match the declared schema: 5 problems: column 'ssn', record 1")
    assert "(and 2 more)" in msg and "\n" not in msg and SECRET.replace("-", "") not in msg


def test_pattern_regex_escapes():
    r = pattern_regex("\\d-dd.A")
    assert r.fullmatch("d-12.Q") and not r.fullmatch("5-12.Q") and not r.fullmatch("d-12xQ")
    with pytest.raises(ValueError):
        pattern_regex("dd\\")
