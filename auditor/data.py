"""Records in and out: load, normalise, split, hash, write (schema inference and
validation: :mod:`auditor.schema_inference`).

Conventions every other module can rely on:

* A loaded table is a :class:`Dataset` whose ``frame`` holds **strings only**
  (pandas ``str`` dtype); a missing value is the empty string ``""``, never
  ``None`` or NaN. CSV cells are kept verbatim (no stripping, no number parsing);
  JSONL numbers keep their source spelling; Parquet values are rendered as text
  (``true``/``false``, ``repr`` of floats, ISO dates, compact JSON for nested values),
  and Parquet nulls and float NaN become ``""``.
* Plain text (``.txt``) is one record per line, in a one-column frame ``text``
  with ``is_text=True``; blank lines are skipped (an empty record trains nothing).
* Files are UTF-8 (a leading BOM is allowed). Every problem with the input is a
  :class:`~auditor.errors.UserError` whose one-line message names the file, line,
  byte offset or column, and never a data value (values may be PII).

"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from auditor.errors import UserError
from reports.atomic import atomic_file, atomic_write

DEMO_CSV = Path(__file__).parent / "data" / "demo.csv"
DEMO_SCHEMA = Path(__file__).parent / "data" / "demo_schema.yaml"

FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json-lines": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".txt": "text",
}
"""File extension -> format name. ``fmt=`` takes the format names."""

TEXT_COLUMN = "text"


@dataclass
class Dataset:
    """Records as a frame of strings.

    Attributes:
        frame: one row per record, every cell a ``str`` (pandas ``str`` dtype); missing
            is ``""``. The index is a ``RangeIndex``: row ``i`` is record ``i`` of the
            file, the index that :func:`split_holdout` and :class:`Problem` use.
        is_text: plain-text records (a single ``text`` column).
        name: where the records came from (a file name, or ``"<frame>"``), for messages.
    """

    frame: pd.DataFrame
    is_text: bool = False
    name: str = "<frame>"

    def __len__(self) -> int:
        return len(self.frame)


# --------------------------------------------------------------------------- loading


def load_records(path: str | os.PathLike, *, fmt: str | None = None) -> Dataset:
    """Read records from CSV, JSONL, Parquet or plain text.

    Args:
        path: the file.
        fmt: ``csv`` | ``jsonl`` | ``parquet`` | ``text``; by default taken from the
            extension (see :data:`FORMATS`).

    Returns:
        A :class:`Dataset` of strings (missing = ``""``) with at least one record.

    Raises:
        UserError: missing file, a directory, unsupported format, empty file,
            header-only CSV, bytes that are not UTF-8, ragged CSV rows, a JSONL line
            that is not an object, duplicate or empty column names.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a file of records")
    fmt = _format_of(path, fmt)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror})") from None
    if not raw.strip():
        raise UserError(f"{path}: the file is empty")
    if fmt == "parquet":
        frame = _parquet_frame(path, raw)
        return Dataset(frame=frame, name=path.name)
    text = _decode(path, raw)
    if fmt == "csv":
        return Dataset(frame=_csv_frame(path, text), name=path.name)
    if fmt == "jsonl":
        return Dataset(frame=_jsonl_frame(path, text), name=path.name)
    return Dataset(frame=_text_frame(path, text), is_text=True, name=path.name)


def dataset_from_frame(frame: pd.DataFrame) -> Dataset:
    """Normalise a caller's DataFrame to the loader's convention (strings, ``""`` missing).

    Values are rendered as Parquet values are (see the module docstring).

    Raises:
        UserError: no columns, no rows, duplicate or empty column names.
    """
    if not isinstance(frame, pd.DataFrame):
        raise UserError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    names = [str(c) for c in frame.columns]
    _check_names("the DataFrame", names)
    columns = {name: [cell_text(v, "the DataFrame", name) for v in frame.iloc[:, i].tolist()] for i, name in enumerate(names)}
    out = _string_frame(columns, names)
    if out.empty:
        raise UserError("the DataFrame has no records")
    return Dataset(frame=out)


def dataset_from_texts(texts: Iterable[str]) -> Dataset:
    """Plain-text records from an iterable of strings; empty strings are skipped.

    Raises:
        UserError: a non-string item (its position is named), or no records.
    """
    kept = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise UserError(f"text record {i + 1} is a {type(t).__name__}, expected a string")
        if t:
            kept.append(t)
    if not kept:
        raise UserError("no text records given")
    return Dataset(frame=_string_frame({TEXT_COLUMN: kept}, [TEXT_COLUMN]), is_text=True)


def _format_of(path: Path, fmt: str | None) -> str:
    names = sorted(set(FORMATS.values()))
    if fmt is not None:
        if fmt not in names:
            raise UserError(f"unsupported format {fmt!r}; use one of {', '.join(names)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        shown = suffix or "(no extension)"
        raise UserError(
            f"{path.name}: unsupported file type {shown}; use one of {', '.join(FORMATS)} or give the format explicitly"
        )
    return FORMATS[suffix]


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path.name}: not valid UTF-8 (first bad byte at offset {exc.start}); re-encode it as UTF-8") from None


def _check_names(where: str, names: Sequence[str]) -> None:
    if not names:
        raise UserError(f"{where}: no columns")
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name == "":
            raise UserError(f"{where}: column {i + 1} has an empty name")
        if name in seen:
            raise UserError(f"{where}: duplicate column name {name!r}")
        seen.add(name)


def _string_frame(columns: dict[str, list[str]], names: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({n: pd.Series(columns[n], dtype="str") for n in names}, columns=list(names))


MAX_CELL_CHARS = 131_072  # Python csv's own default field limit: a table cell, not a document


def _csv_frame(path: Path, text: str) -> pd.DataFrame:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    # csv's limit is process-wide and its error names no column: lift it while reading, measure cells here.
    limit = csv.field_size_limit(max(len(text), MAX_CELL_CHARS))
    try:
        for row in reader:
            if not row:  # a blank line
                continue
            if header is None:
                header = row
                _check_names(f"{path.name} header", header)
                continue
            if len(row) != len(header):
                raise UserError(
                    f"{path.name} line {reader.line_num}: {len(row)} fields, the header has {len(header)}"
                )
            for name, cell in zip(header, row):
                if len(cell) > MAX_CELL_CHARS:
                    raise UserError(f"{path.name} line {reader.line_num}, column {name!r}: a value of {len(cell)} "
                                    f"characters (at most {MAX_CELL_CHARS} per cell)")
            rows.append(row)
    except csv.Error as exc:
        raise UserError(f"{path.name} line {reader.line_num}: malformed CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)
    if header is None:
        raise UserError(f"{path.name}: the file is empty")
    if not rows:
        raise UserError(f"{path.name}: has a header but no records")
    return _string_frame({n: [r[i] for r in rows] for i, n in enumerate(header)}, header)


class _JsonNumber(str):
    """A JSON number kept in its source spelling."""


class _JsonObject(list):
    """A JSON object as its (key, value) pairs, so duplicate keys can be seen."""


_JSON = json.JSONDecoder(
    parse_float=_JsonNumber, parse_int=_JsonNumber, parse_constant=_JsonNumber, object_pairs_hook=_JsonObject
)


def _json_text(value) -> str:
    """Render a decoded JSON value back as compact JSON (numbers as they were written)."""
    if isinstance(value, _JsonNumber):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, _JsonObject):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_json_text(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    return json.dumps(value)  # true, false, null


def _json_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):  # also _JsonNumber
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _json_text(value)


def _jsonl_frame(path: Path, text: str) -> pd.DataFrame:
    records: list[dict[str, str]] = []
    names: dict[str, None] = {}  # ordered set: first-seen key order
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = _JSON.decode(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path.name} line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, _JsonObject):
            kind = "a list" if isinstance(obj, list) else "a string" if type(obj) is str else "a scalar"
            raise UserError(f"{path.name} line {lineno}: expected a JSON object, found {kind}")
        keys = [k for k, _ in obj]
        _check_names(f"{path.name} line {lineno}", keys)
        records.append({k: _json_cell(v) for k, v in obj})
        names.update(dict.fromkeys(keys))
    if not records:
        raise UserError(f"{path.name}: the file is empty")
    order = list(names)
    return _string_frame({n: [r.get(n, "") for r in records] for n in order}, order)


def _text_frame(path: Path, text: str) -> pd.DataFrame:
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    kept = [line for line in lines if line]
    if not kept:
        raise UserError(f"{path.name}: the file is empty")
    return _string_frame({TEXT_COLUMN: kept}, [TEXT_COLUMN])


def _parquet_frame(path: Path, raw: bytes) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path.name}: not a readable Parquet file ({type(exc).__name__})") from None
    names = [str(n) for n in table.column_names]
    _check_names(path.name, names)
    if table.num_rows == 0:
        raise UserError(f"{path.name}: has columns but no records")
    columns = {n: [cell_text(v, path.name, n) for v in table.column(i).to_pylist()] for i, n in enumerate(names)}
    return _string_frame(columns, names)


def cell_text(value, where: str, column: str) -> str:
    """One typed value (Parquet, pandas, numpy) as text; missing -> ``""``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, Decimal):
        return "" if value.is_nan() else str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{where}: column {column!r} holds bytes that are not UTF-8 (offset {exc.start})") from None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


# --------------------------------------------------------------------------- writing


NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
"""A number as written in a table cell (sign, digits, optional fraction and exponent)."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_like(text: str) -> bool:
    """A cell a spreadsheet may run as a formula (CSV injection, OWASP): it starts with
    ``= + - @``, a tab or a carriage return and is not a plain number (``-12.5`` is data)."""
    return text.startswith(FORMULA_PREFIXES) and not NUMBER.fullmatch(text)


def formula_like_cells(frame: pd.DataFrame) -> dict:
    """Which header names and how many cells per column are :func:`formula_like`.

    Written as is (the synthetic data must stay comparable with the real data, where a
    ``+1 555`` phone or a ``-`` placeholder is a value), and recorded in generation.json.
    """
    cells = {}
    for name in frame.columns:
        n = sum(formula_like(cell_text(v, "frame", str(name))) for v in frame[name].tolist())
        if n:
            cells[str(name)] = n
    return {"header": [str(n) for n in frame.columns if formula_like(str(n))], "cells": cells,
            "total": sum(cells.values()), "written": "as is (not neutralised)"}


def write_records(records: pd.DataFrame | Sequence[str], path: str | os.PathLike) -> Path:
    """Write records as ``.csv`` or ``.jsonl`` (atomically: a temporary file, then rename).

    Args:
        records: a frame (cells written as text; ``None``/NaN as missing ``""``), or
            a sequence of strings (plain-text records, written as ``{"text": ...}``
            objects in JSONL or a one-column CSV).
        path: the output file; its extension picks the format.

    Returns:
        The path written. Reading it back with :func:`load_records` gives the same
        strings (a CSV cell is always read as text, so a frame of strings round-trips).
    """
    path = Path(path)
    fmt = _format_of(path, None)
    if fmt not in ("csv", "jsonl"):
        raise UserError(f"{path.name}: records are written as .csv or .jsonl, not {fmt}")
    if isinstance(records, pd.DataFrame):
        names = [str(c) for c in records.columns]
        _check_names(path.name, names)
        rows = [[cell_text(v, path.name, names[j]) for j, v in enumerate(r)] for r in records.itertuples(index=False)]
    else:
        names = [TEXT_COLUMN]
        rows = [[t] for t in records]
    with atomic_file(path, newline="") as fh:
        if fmt == "csv":
            # CRLF (RFC 4180) so that the writer also quotes a lone "\r" in a cell
            writer = csv.writer(fh, lineterminator="\r\n")
            writer.writerow(names)
            writer.writerows(rows)
        else:
            for row in rows:
                fh.write(json.dumps(dict(zip(names, row)), ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------- hashing


def data_hash(frame: pd.DataFrame, *, key: str | None = None) -> str:
    """SHA-256 (hex) of a canonical serialisation of the records; HMAC-SHA256 keyed with
    ``key`` (a run's private salt) when given, so that the hash cannot confirm a guessed table.

    The serialisation is one compact JSON array per line: first the column names,
    then each row's cells as text (missing as ``""``), in frame order. Equal
    records give equal hashes whatever the source format; any change to a name,
    a value or the row order changes it.
    """
    h = hashlib.sha256() if key is None else hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)
    names = [str(c) for c in frame.columns]
    h.update(json.dumps(names, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
    for row in frame.itertuples(index=False):
        cells = [cell_text(v, "frame", names[j]) for j, v in enumerate(row)]
        h.update(json.dumps(cells, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
    return h.hexdigest()


# --------------------------------------------------------------------------- holdout split


def split_holdout(n: int, *, fraction: float = 0.2, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split record indices ``0..n-1`` into a training set and a held-out set.

    ``round(n * fraction)`` indices, drawn uniformly without replacement with
    ``numpy.random.default_rng(seed)``, are held out; the rest train. Both arrays
    are sorted ``int64``, disjoint, and together cover ``0..n-1``.

    Raises:
        UserError: ``fraction`` outside ``[0, 1)``, or ``n`` too small to leave a
            record on each side of a non-empty holdout.
    """
    if not 0.0 <= fraction < 1.0:
        raise UserError(f"holdout fraction must be in [0, 1), got {fraction}")
    if n < 1:
        raise UserError("no records to split")
    n_holdout = int(round(n * fraction))
    if fraction > 0 and n_holdout == 0:
        n_holdout = 1
    if n - n_holdout < 1:
        raise UserError(f"{n} records are too few for a holdout fraction of {fraction}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_holdout:]).astype(np.int64), np.sort(order[:n_holdout]).astype(np.int64)


def save_split(path: str | os.PathLike, train_idx: Sequence[int], holdout_idx: Sequence[int]) -> Path:
    """Write the split as JSON ``{"n": N, "train": [...], "holdout": [...]}``.

    Raises:
        ValueError: the indices are not a disjoint cover of ``0..N-1`` (a bug, not bad input).
    """
    train, holdout = _checked_split(train_idx, holdout_idx)
    if train is None:
        raise ValueError(holdout)
    payload = {"n": len(train) + len(holdout), "train": train, "holdout": holdout}
    return atomic_write(path, json.dumps(payload, separators=(",", ":")) + "\n")


def load_split(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a split written by :func:`save_split`; returns ``(train_idx, holdout_idx)``.

    Raises:
        UserError: missing or unreadable file, or indices that are not a disjoint
            cover of ``0..n-1``.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such split file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable split file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or not {"n", "train", "holdout"} <= set(payload):
        raise UserError(f"{path}: a split file needs keys n, train, holdout")
    train, holdout = _checked_split(payload["train"], payload["holdout"])
    if train is None:
        raise UserError(f"{path}: {holdout}")
    if payload["n"] != len(train) + len(holdout):
        raise UserError(f"{path}: n does not match the number of indices")
    return np.asarray(train, dtype=np.int64), np.asarray(holdout, dtype=np.int64)


def _checked_split(train_idx, holdout_idx):
    """``(sorted train, sorted holdout)``, or ``(None, reason)`` if not a disjoint cover."""
    try:
        train = sorted(_as_index(i) for i in train_idx)
        holdout = sorted(_as_index(i) for i in holdout_idx)
    except (TypeError, ValueError):
        return None, "indices must be non-negative integers"
    if set(train) & set(holdout):
        return None, "train and holdout indices overlap"
    both = sorted(train + holdout)
    if both != list(range(len(both))):
        return None, "indices do not cover 0..n-1 exactly once"
    return train, holdout


def _as_index(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError("not an index")
    return int(value)
