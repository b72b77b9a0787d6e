"""Schema inference from the data, and validation of a table against a schema.

Schema inference (:func:`infer_schema`) learns facts from the private data outside
DP-SGD, so every inferred fact is marked ``source="inferred"`` and listed by
:func:`inferred_schema_facts` for ``privacy.json`` (DESIGN.md, rule 2).
It never stores data values: categorical domains are left ``None`` so that they
are declared by the user or selected with DP later.
"""

from __future__ import annotations

import math
from datetime import datetime
import re
from dataclasses import dataclass

import pandas as pd

from auditor.data import NUMBER, TEXT_COLUMN, cell_text
from auditor.errors import UserError
from auditor.schema import Column, Schema

# --------------------------------------------------------------------------- schema inference

DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M",
    "%d.%m.%Y",
)
"""Formats tried, in order, by :func:`infer_schema`; the first under which every
value parses and prints back unchanged wins (so ``%m/%d/%Y`` beats ``%d/%m/%Y``
when both fit)."""

CATEGORICAL_MAX_DISTINCT = 50
CATEGORICAL_MIN_ROWS_PER_VALUE = 10
PATTERN_MIN_LENGTH = 4
NUMERIC_MAX_DIGITS = 9  # Column.sig_digits allows 1..9

_INTEGER = re.compile(r"[+-]?\d+")


def infer_schema(frame: pd.DataFrame) -> Schema:
    """Guess each column's kind from its values (an opt-in outside the DP guarantee).

    Rules, tried in this order on the non-missing values of a column:

    1. **numeric**: every value is a decimal number (``12``, ``-3.5``, ``1e3``) without
       a leading zero (``007`` is a code, not a number); ``integer`` when all are
       whole-number literals. ``sig_digits`` is the most significant digits seen,
       capped at 9; integers needing more than 9 digits are not numeric (card and
       account numbers would lose digits) and fall through.
    2. **datetime**: every value parses under one of :data:`DATETIME_FORMATS` and
       prints back unchanged; the format is recorded.
    3. **categorical**: at most 50 distinct values and at least 10 rows per distinct
       value on average (so a free-text or identifier column of a small table is not
       taken for a category). ``categories`` stays ``None``: the domain is declared
       by the user or selected with DP, never copied from the data here.
    4. **pattern**: every value has the same shape (:func:`value_shape`), at least 4
       characters long, with at least one digit (phone, SSN, card, zip+4 ...).
    5. **text** otherwise, with the default ``max_tokens`` (not fitted to the data).

    A column is ``nullable`` when any value is missing (``""``); an all-missing
    column is nullable text. Every column gets ``source="inferred"``.
    """
    if not isinstance(frame, pd.DataFrame) or len(frame.columns) == 0:
        raise UserError("cannot infer a schema: no columns")
    columns = []
    for name in frame.columns:
        values = [cell_text(v, "frame", str(name)) for v in frame[name].tolist()]
        present = [v for v in values if v != ""]
        nullable = len(present) < len(values) or not values
        columns.append(_infer_column(str(name), present, nullable))
    return Schema(columns=columns)


def text_schema(*, max_tokens: int = 48) -> Schema:
    """The schema of plain-text records: one ``text`` column.

    Nothing in it is learned from the data (the shape follows from the file
    format), so its column is ``source="declared"``.
    """
    return Schema(columns=[Column(TEXT_COLUMN, "text", max_tokens=max_tokens, source="declared")], text=True)


def _infer_column(name: str, present: list[str], nullable: bool) -> Column:
    def col(kind, **facts):
        return Column(name, kind, nullable=nullable, source="inferred", **facts)

    if not present:
        return col("text")
    _refuse_non_finite(name, present)
    numeric = _numeric_facts(present)
    if numeric is not None:
        integer, sig_digits = numeric
        return col("numeric", integer=integer, sig_digits=sig_digits)
    fmt = _datetime_format(present)
    if fmt is not None:
        return col("datetime", format=fmt)
    distinct = len(set(present))
    if distinct <= CATEGORICAL_MAX_DISTINCT and len(present) >= CATEGORICAL_MIN_ROWS_PER_VALUE * distinct:
        return col("categorical")
    shapes = {value_shape(v) for v in present}
    if len(shapes) == 1:
        (shape,) = shapes
        if len(present[0]) >= PATTERN_MIN_LENGTH and any(c.isdigit() for c in present[0]):
            return col("pattern", pattern=shape)
    return col("text")


def _refuse_non_finite(name: str, values: list[str]) -> None:
    """A column of numbers with some NaN or infinite ones is refused, naming the column.

    Such values (``nan``, ``inf``, ``-Infinity``, ``1e999``) would make the column free
    text or encode as 0; a missing value is an empty cell (a pandas NaN is one already).
    A declared numeric column refuses them the same way (:func:`validate_against_schema`).
    """
    bad = [v for v in values if _is_float_text(v) and not math.isfinite(float(v))]
    rest = [v for v in values if v not in bad]
    if bad and rest and _numeric_facts(rest) is not None:
        raise UserError(f"column {name!r}: {len(bad)} of {len(values)} values are NaN or infinite; a numeric column "
                        "needs finite numbers (leave a missing value empty)")


def _is_float_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _numeric_facts(values: list[str]) -> tuple[bool, int] | None:
    """``(integer, sig_digits)`` if every value is a plain decimal number, else None."""
    integer = True
    most = 1
    for v in values:
        if not NUMBER.fullmatch(v):
            return None
        mantissa = re.split(r"[eE]", v)[0].lstrip("+-")
        whole = mantissa.split(".")[0]
        if len(whole) > 1 and whole[0] == "0":
            return None
        is_int = _INTEGER.fullmatch(v) is not None
        digits = mantissa.replace(".", "").lstrip("0") or "0"
        if is_int:
            digits = digits.rstrip("0") or "0"
            if len(whole) > NUMERIC_MAX_DIGITS:
                return None
        integer = integer and is_int
        most = max(most, len(digits))
    return integer, min(most, NUMERIC_MAX_DIGITS)


def _datetime_format(values: list[str]) -> str | None:
    for fmt in DATETIME_FORMATS:
        if all(_prints_back(v, fmt) for v in values):
            return fmt
    return None


def _prints_back(value: str, fmt: str) -> bool:
    try:
        return datetime.strptime(value, fmt).strftime(fmt) == value
    except ValueError:
        return False


def value_shape(value: str) -> str:
    """The class-shape of a value in :class:`~auditor.schema.Column` pattern syntax.

    ASCII digits become ``d``, ASCII upper-case letters ``A``, lower-case ``a``;
    anything else is a literal (a backslash is escaped). ``"123-45-6789"`` ->
    ``"ddd-dd-dddd"``; ``"(555) 010-1234"`` -> ``"(ddd) ddd-dddd"``.
    """
    out = []
    for c in value:
        if "0" <= c <= "9":
            out.append("d")
        elif "A" <= c <= "Z":
            out.append("A")
        elif "a" <= c <= "z":
            out.append("a")
        elif c == "\\":
            out.append("\\\\")
        else:
            out.append(c)
    return "".join(out)


def pattern_regex(pattern: str) -> re.Pattern:
    """A compiled regex matching exactly the values of a pattern (``d`` ``A`` ``a`` ``\\x``)."""
    parts = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            nxt = next(chars, None)
            if nxt is None:
                raise ValueError("pattern ends with a lone backslash")
            parts.append(re.escape(nxt))
        else:
            parts.append({"d": "[0-9]", "A": "[A-Z]", "a": "[a-z]"}.get(c) or re.escape(c))
    return re.compile("".join(parts))


def inferred_schema_facts(schema: Schema) -> dict[str, str]:
    """Column name -> what was inferred of it outside DP-SGD, for each inferred column.

    ``privacy.json``'s ``outside_guarantee`` says it in the ledger's sentence (fact
    ``schema_inferred`` of ``auditor.dp.ledger``). The facts are the column's kind, and
    integer / sig_digits / format / pattern / max_tokens / domain size / nullable: shapes,
    never data values. Declared and DP-selected columns add nothing.
    """
    out = {}
    for c in schema.columns:
        if c.source != "inferred":
            continue
        facts = [f"kind={c.kind}"]
        if c.kind == "numeric":
            facts += [f"integer={str(c.integer).lower()}", f"sig_digits={c.sig_digits}"]
        elif c.kind == "datetime":
            facts.append(f"format={c.format}")
        elif c.kind == "pattern":
            facts.append(f"pattern={c.pattern}")
        elif c.kind == "text":
            facts.append(f"max_tokens={c.max_tokens}")  # sets the model's maximum length
        elif c.kind == "categorical" and c.categories is not None:
            facts.append(f"domain of {len(c.categories)} values")
        facts.append(f"nullable={str(c.nullable).lower()}")
        out[c.name] = ", ".join(facts)
    return out


# --------------------------------------------------------------------------- schema validation


@dataclass(frozen=True)
class Problem:
    """A value that does not fit the declared schema, or a missing/extra column.

    Attributes:
        column: the column name.
        row: 0-based position in the frame, or ``None`` for a column-level problem.
            Messages show it 1-based as "record N" (the N-th record of the file).
        reason: what is wrong, never the value itself.
    """

    column: str
    row: int | None
    reason: str

    def __str__(self) -> str:
        where = f"column {self.column!r}" if self.row is None else f"column {self.column!r}, record {self.row + 1}"
        return f"{where}: {self.reason}"


def validate_against_schema(frame: pd.DataFrame, schema: Schema) -> list[Problem]:
    """Check every value against its declared column; returns the problems (empty = fits).

    Per kind: missing (``""``) only where ``nullable``; numeric parses as a finite
    decimal number (an integer literal where ``integer``); datetime parses under
    ``format``; pattern matches ``pattern`` in full; categorical is in
    ``categories`` when a domain is given (``None`` = chosen later, anything
    goes); text always fits. Columns of the frame missing from the schema, or of
    the schema missing from the frame, are column-level problems.
    """
    problems: list[Problem] = []
    names = [str(c) for c in frame.columns]
    for c in schema.columns:
        if c.name not in names:
            problems.append(Problem(c.name, None, "declared in the schema but not in the data"))
    for n in names:
        if n not in schema.names:
            problems.append(Problem(n, None, "in the data but not declared in the schema"))
    for c in schema.columns:
        if c.name not in names:
            continue
        check = _value_check(c)
        for i, v in enumerate(frame[c.name].tolist()):
            v = cell_text(v, "frame", c.name)
            if v == "":
                if not c.nullable:
                    problems.append(Problem(c.name, i, "missing value in a column that is not nullable"))
                continue
            reason = check(v)
            if reason is not None:
                problems.append(Problem(c.name, i, reason))
    return problems


def require_valid(frame: pd.DataFrame, schema: Schema, *, name: str = "the data") -> None:
    """Raise one :class:`UserError` summarising :func:`validate_against_schema`, if any problem.

    The message counts the problems and shows the first three (column + record, no values).
    """
    problems = validate_against_schema(frame, schema)
    if problems:
        shown = "; ".join(str(p) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UserError(f"{name} does not match the declared schema: {len(problems)} problems: {shown}{more}")


def _value_check(c: Column):
    """A function value -> reason-or-None for one declared column."""
    if c.kind == "numeric":
        def check(v):
            if not NUMBER.fullmatch(v):
                return "not a number"
            if not math.isfinite(float(v)):
                return "not a finite number"
            if c.integer and not _INTEGER.fullmatch(v):
                return "not an integer"
            return None
    elif c.kind == "datetime":
        def check(v):
            try:
                datetime.strptime(v, c.format)
            except ValueError:
                return f"not a date in format {c.format}"
            return None
    elif c.kind == "pattern":
        regex = pattern_regex(c.pattern)

        def check(v):
            return None if regex.fullmatch(v) else f"does not match pattern {c.pattern}"
    elif c.kind == "categorical" and c.categories is not None:
        domain = set(c.categories)

        def check(v):
            return None if v in domain else "not in the declared categories"
    else:
        def check(v):
            return None
    return check
