"""Values a careless or hostile table holds: subnormal numbers, NaN/inf in a numeric column, huge cells."""

import pytest

from auditor.codec import RowCodec, numeric_to_parts, value_magnitude
from auditor.data import load_records
from auditor.schema_inference import infer_schema, require_valid
from auditor.errors import UserError
from auditor.schema import Column, Schema
from cli_helpers import run_cli


@pytest.mark.parametrize("value", [5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 9.9e-10])
def test_values_below_the_smallest_exponent_encode_as_zero(value):
    assert numeric_to_parts(value, 3) is None
    assert numeric_to_parts(value, 9) is None
    col = Column("x", "numeric", sig_digits=3)
    assert value_magnitude(col, repr(value)) == "0"
    codec = RowCodec(Schema([col]))
    assert codec.decode(codec.encode({"x": repr(value)})) == {"x": "0"}


def test_the_smallest_exponent_still_rounds_up_into_range():
    # 9.996e-9 rounds to 1.00e-8 = 10**EXP_MIN (EXP_MIN = -8): kept, not zeroed
    assert numeric_to_parts(9.996e-9, 3) == (-8, 100)


def _frame(values):
    import pandas as pd

    return pd.DataFrame({"cost": values}, dtype="str")


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_nan_or_inf_in_a_numeric_column_is_refused_naming_it(bad):
    values = [str(10 * i + 3) for i in range(45)] + [bad] * 5  # 10% non-finite
    with pytest.raises(UserError, match=r"column 'cost': 5 of 50 values are NaN or infinite") as exc:
        infer_schema(_frame(values))
    assert "\n" not in str(exc.value)
    declared = Schema([Column("cost", "numeric", sig_digits=3)])
    with pytest.raises(UserError, match=r"cost.*not a (finite )?number"):
        require_valid(_frame(values), declared)


def test_a_text_column_that_holds_nan_is_still_text():
    values = ["apple pie", "nan", "banana", "inf"] * 5
    assert infer_schema(_frame(values)).columns[0].kind != "numeric"


def test_a_huge_csv_cell_is_refused_naming_line_and_column(tmp_path, capsys):
    path = tmp_path / "big.csv"
    path.write_text("id,note\n1,short\n2," + "x" * 1_000_000 + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"big\.csv line 3, column 'note': a value of 1000000 characters"):
        load_records(path)
    code, _, err = run_cli(capsys, "train", path, "--out", tmp_path / "run", "--model", "tiny", "-q")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "column 'note'" in err
    assert not (tmp_path / "run").exists()


MAX_CELL_CHARS = 131_072  # auditor.data.MAX_CELL_CHARS, Python csv's default field limit


def test_a_cell_at_the_limit_loads(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("id,note\n1," + "y" * MAX_CELL_CHARS + "\n", encoding="utf-8")
    frame = load_records(path).frame
    assert len(frame["note"][0]) == MAX_CELL_CHARS
