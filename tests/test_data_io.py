"""auditor.data: loading, writing, hashing and splitting records, with real files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.data import data_hash, dataset_from_frame, dataset_from_texts, load_records, load_split, save_split, split_holdout, write_records
from auditor.errors import UserError

SECRET = "078-05-1120"  # stands in for PII: must never appear in an error message


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def _error(path, **kw) -> str:
    with pytest.raises(UserError) as info:
        load_records(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg and SECRET not in msg
    return msg


# ----------------------------------------------------------------- loading each format


def test_csv_loads_as_strings_with_empty_missing(tmp_path):
    p = _write(tmp_path / "d.csv", f'name,age,ssn\n"Doe, Jane",41,{SECRET}\nBob,,007\n')
    ds = load_records(p)
    assert not ds.is_text and ds.name == "d.csv"
    assert list(ds.frame.columns) == ["name", "age", "ssn"]
    assert ds.frame.values.tolist() == [["Doe, Jane", "41", SECRET], ["Bob", "", "007"]]
    assert all(isinstance(v, str) for v in ds.frame.to_numpy().ravel())


def test_csv_bom_crlf_blank_lines_and_multiline_field(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes('\ufeffa,b\r\n1,"two\r\nlines"\r\n\r\n3,4\r\n'.encode("utf-8"))
    assert load_records(p).frame.values.tolist() == [["1", "two\r\nlines"], ["3", "4"]]


def test_jsonl_keeps_number_spelling_unions_keys_and_renders_nested(tmp_path):
    lines = ['{"a": 1.50, "b": true, "c": null}', "", '{"a": 1e3, "d": {"x": [1, 2.0]}}']
    ds = load_records(_write(tmp_path / "d.jsonl", "\n".join(lines) + "\n"))
    assert list(ds.frame.columns) == ["a", "b", "c", "d"]
    assert ds.frame.values.tolist() == [["1.50", "true", "", ""], ["1e3", "", "", '{"x":[1,2.0]}']]


@pytest.mark.parametrize("suffix", [".json-lines", ".ndjson"])
def test_jsonl_aliases(tmp_path, suffix):
    assert load_records(_write(tmp_path / f"d{suffix}", '{"a": "x"}\n')).frame.values.tolist() == [["x"]]


def test_parquet_values_become_text(tmp_path):
    frame = pd.DataFrame(
        {
            "i": pd.array([1, None, 3], dtype="Int64"),
            "f": [0.5, float("nan"), 2.0],
            "s": ["x", None, "z"],
            "b": [True, False, True],
            "t": pd.to_datetime(["2020-01-02", "2021-03-04 05:06:07", None], format="mixed"),
        }
    )
    p = tmp_path / "d.parquet"
    frame.to_parquet(p)
    got = load_records(p).frame
    assert got.values.tolist() == [
        ["1", "0.5", "x", "true", "2020-01-02 00:00:00"],
        ["", "", "", "false", "2021-03-04 05:06:07"],
        ["3", "2.0", "z", "true", ""],
    ]


def test_text_one_record_per_line(tmp_path):
    ds = load_records(_write(tmp_path / "d.txt", "first line\r\n\nsecond, with comma\n"))
    assert ds.is_text and list(ds.frame.columns) == ["text"]
    assert ds.frame["text"].tolist() == ["first line", "second, with comma"]


def test_fmt_overrides_extension(tmp_path):
    p = _write(tmp_path / "records.data", "a,b\n1,2\n")
    assert load_records(p, fmt="csv").frame.values.tolist() == [["1", "2"]]


# ----------------------------------------------------------------- bad input, one test each


def test_missing_file(tmp_path):
    assert "no such file" in _error(tmp_path / "nope.csv")


def test_directory_given(tmp_path):
    d = tmp_path / "dir.csv"
    d.mkdir()
    assert "is a directory" in _error(d)


@pytest.mark.parametrize("name,text", [("e.csv", ""), ("e.jsonl", "\n\n"), ("e.txt", "  \n"), ("e.parquet", "")])
def test_empty_file(tmp_path, name, text):
    assert "empty" in _error(_write(tmp_path / name, text))


def test_header_only_csv(tmp_path):
    assert "header but no records" in _error(_write(tmp_path / "h.csv", "a,b,c\n"))


def test_undecodable_bytes_name_offset_not_content(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes(b"name,city\n" + SECRET.encode() + b",Z\xfcrich\n")
    msg = _error(p)
    assert "not valid UTF-8" in msg and "offset 23" in msg and "latin.csv" in msg
    assert "rich" not in msg


def test_ragged_row_names_its_line(tmp_path):
    p = _write(tmp_path / "r.csv", f'a,b\n1,2\n"multi\nline",3\n{SECRET},5,6\n')
    msg = _error(p)
    assert "line 5" in msg and "3 fields" in msg and "header has 2" in msg


def test_malformed_quoting_names_its_line(tmp_path):
    assert "line 3" in _error(_write(tmp_path / "q.csv", f'a,b\n1,2\n"{SECRET}"x,3\n'))


@pytest.mark.parametrize("name", ["d.xlsx", "noext"])
def test_unsupported_extension(tmp_path, name):
    assert "unsupported file type" in _error(_write(tmp_path / name, "a\n1\n"))


def test_unsupported_fmt_argument(tmp_path):
    assert "unsupported format 'xml'" in _error(_write(tmp_path / "d.csv", "a\n1\n"), fmt="xml")


@pytest.mark.parametrize("line,found", [(f'["{SECRET}"]', "a list"), (f'"{SECRET}"', "a string"), ("42", "a scalar")])
def test_jsonl_non_object_line(tmp_path, line, found):
    msg = _error(_write(tmp_path / "d.jsonl", '{"a": 1}\n' + line + "\n"))
    assert "line 2" in msg and f"expected a JSON object, found {found}" in msg


def test_jsonl_invalid_json(tmp_path):
    assert "line 1: not valid JSON" in _error(_write(tmp_path / "d.jsonl", '{"a": ' + SECRET + "}\n"))


def test_duplicate_columns_csv(tmp_path):
    assert "duplicate column name 'a'" in _error(_write(tmp_path / "d.csv", "a,b,a\n1,2,3\n"))


def test_duplicate_keys_jsonl(tmp_path):
    msg = _error(_write(tmp_path / "d.jsonl", '{"a": 1}\n{"a": 1, "a": 2}\n'))
    assert "line 2" in msg and "duplicate column name 'a'" in msg


def test_empty_column_name(tmp_path):
    assert "column 2 has an empty name" in _error(_write(tmp_path / "d.csv", "a,,c\n1,2,3\n"))


def test_corrupt_parquet(tmp_path):
    p = tmp_path / "d.parquet"
    p.write_bytes(b"PAR1 not really parquet " + SECRET.encode())
    assert "not a readable Parquet file" in _error(p)


def test_parquet_without_rows(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame({"a": pd.Series([], dtype="int64")}).to_parquet(p)
    assert "no records" in _error(p)


# ----------------------------------------------------------------- frames and texts from the API


def test_dataset_from_frame_matches_loaded_csv(tmp_path):
    frame = pd.DataFrame({"age": [41, 7], "cost": [1.5, None], "name": ["Ann", None]})
    ds = dataset_from_frame(frame)
    assert ds.frame.values.tolist() == [["41", "1.5", "Ann"], ["7", "", ""]]
    loaded = load_records(write_records(ds.frame, tmp_path / "x.csv"))
    assert data_hash(loaded.frame) == data_hash(ds.frame) == data_hash(frame)


def test_dataset_from_frame_rejects_duplicates_and_empty():
    with pytest.raises(UserError, match="duplicate column name 'a'"):
        dataset_from_frame(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(UserError, match="no records"):
        dataset_from_frame(pd.DataFrame({"a": []}))


def test_dataset_from_texts():
    ds = dataset_from_texts(["one", "", "two"])
    assert ds.is_text and ds.frame["text"].tolist() == ["one", "two"]
    with pytest.raises(UserError, match="record 2 is a int"):
        dataset_from_texts(["one", 2])


# ----------------------------------------------------------------- writing and round trips

_cell = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=6), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_write_then_load_round_trips_any_strings(tmp_path, rows, suffix):
    frame = pd.DataFrame(rows, columns=["a", "b c", "d,e"], dtype="str")
    path = write_records(frame, tmp_path / f"out{suffix}")
    back = load_records(path).frame
    assert back.values.tolist() == rows
    assert data_hash(back) == data_hash(frame)


def test_single_column_empty_value_survives_csv(tmp_path):
    frame = pd.DataFrame({"a": ["x", "", "y"]}, dtype="str")
    assert load_records(write_records(frame, tmp_path / "o.csv")).frame["a"].tolist() == ["x", "", "y"]


def test_write_texts_as_jsonl_and_csv(tmp_path):
    texts = ["a line", 'with "quotes", commas\nand a newline']
    for name in ("t.jsonl", "t.csv"):
        back = load_records(write_records(texts, tmp_path / name)).frame
        assert back["text"].tolist() == texts
    first = json.loads((tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first == {"text": "a line"}


def test_write_rejects_other_formats_and_leaves_nothing(tmp_path):
    with pytest.raises(UserError, match=r"\.csv or \.jsonl"):
        write_records(["x"], tmp_path / "o.txt")
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_atomically_without_temp_files(tmp_path):
    p = tmp_path / "s.csv"
    write_records(pd.DataFrame({"a": ["1"]}), p)
    write_records(pd.DataFrame({"a": ["2"]}), p)
    assert [q.name for q in tmp_path.iterdir()] == ["s.csv"]
    assert load_records(p).frame["a"].tolist() == ["2"]


# ----------------------------------------------------------------- hashing


def test_hash_is_sensitive_to_names_values_order():
    base = pd.DataFrame({"a": ["1", "2"], "b": ["x", ""]})
    h = data_hash(base)
    assert len(h) == 64 and h == data_hash(base.copy())
    assert data_hash(base.rename(columns={"b": "c"})) != h
    assert data_hash(base.iloc[::-1]) != h
    assert data_hash(base.replace({"x": "y"})) != h
    # a cell boundary moved is a different table
    assert data_hash(pd.DataFrame({"a": ["1,2"], "b": [""]})) != data_hash(pd.DataFrame({"a": ["1"], "b": [",2"]}))


def test_hash_same_records_same_hash_across_formats(tmp_path):
    _write(tmp_path / "d.csv", "a,b\n1,x\n2,\n")
    _write(tmp_path / "d.jsonl", '{"a": 1, "b": "x"}\n{"a": 2}\n')
    assert data_hash(load_records(tmp_path / "d.csv").frame) == data_hash(load_records(tmp_path / "d.jsonl").frame)


# ----------------------------------------------------------------- holdout split


@pytest.mark.parametrize("n,fraction,expected", [(100, 0.2, 20), (7, 0.2, 1), (2, 0.5, 1), (10, 0.0, 0), (3, 0.01, 1)])
def test_split_sizes_disjoint_cover(n, fraction, expected):
    train, holdout = split_holdout(n, fraction=fraction, seed=0)
    assert len(holdout) == expected
    assert not set(train) & set(holdout)
    assert sorted(np.concatenate([train, holdout]).tolist()) == list(range(n))
    assert train.dtype == np.int64 and list(train) == sorted(train)


def test_split_is_seeded():
    a = split_holdout(50, seed=3)
    assert all((x == y).all() for x, y in zip(a, split_holdout(50, seed=3)))
    assert not (a[1] == split_holdout(50, seed=4)[1]).all()


@pytest.mark.parametrize("n,fraction", [(1, 0.2), (0, 0.2), (10, 1.0), (10, -0.1)])
def test_split_bad_arguments(n, fraction):
    with pytest.raises(UserError):
        split_holdout(n, fraction=fraction, seed=0)


def test_split_save_load_round_trip(tmp_path):
    train, holdout = split_holdout(30, seed=1)
    p = save_split(tmp_path / "split.json", train, holdout)
    t2, h2 = load_split(p)
    assert (t2 == train).all() and (h2 == holdout).all()
    assert json.loads(p.read_text())["n"] == 30


def test_save_split_refuses_a_bad_split(tmp_path):
    with pytest.raises(ValueError, match="overlap"):
        save_split(tmp_path / "s.json", [0, 1], [1, 2])


@pytest.mark.parametrize(
    "payload,match",
    [
        ({"n": 3, "train": [0, 1], "holdout": [1]}, "overlap"),
        ({"n": 3, "train": [0], "holdout": [2]}, "cover"),
        ({"n": 4, "train": [0, 1], "holdout": [2]}, "n does not match"),
        ({"n": 2, "train": [0, "1"], "holdout": []}, "non-negative integers"),
        ({"train": [0]}, "needs keys"),
    ],
)
def test_load_split_rejects_bad_files(tmp_path, payload, match):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(payload))
    with pytest.raises(UserError, match=match):
        load_split(p)


def test_load_split_missing_and_corrupt(tmp_path):
    with pytest.raises(UserError, match="no such split file"):
        load_split(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not a readable split file"):
        load_split(tmp_path / "bad.json")
