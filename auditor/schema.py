"""The table schema: column kinds and the public facts the codec needs.

Privacy rule 2 of DESIGN.md: schema facts (column kinds, categorical domains,
numeric formats) are either declared public by the user (a YAML file), or
selected with DP and charged to the budget, or inferred from the data as an
explicit opt-in that the run reports as outside the DP guarantee.
``Column.source`` records which of the three each fact came from.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from reports.atomic import atomic_write

Kind = Literal["numeric", "categorical", "datetime", "text", "pattern"]
KINDS: tuple[str, ...] = ("numeric", "categorical", "datetime", "text", "pattern")
Source = Literal["declared", "dp", "inferred"]


_MAGNITUDE = re.compile(r"^(-?)1e([+-]\d+)$")


def magnitude_key(sign: int, exponent: int) -> str:
    """``(1, 3) -> "1e+3"``; ``(0, 0) -> "0"`` (zero)."""
    if sign == 0:
        return "0"
    return f"{'-' if sign < 0 else ''}1e{exponent:+d}"


def parse_magnitude(key: str) -> tuple[int, int]:
    """Inverse of ``magnitude_key``: ``(sign, exponent)``, ``(0, 0)`` for ``"0"``; ValueError if malformed."""
    if str(key) == "0":
        return (0, 0)
    m = _MAGNITUDE.match(str(key))
    if not m:
        raise ValueError(f"bad magnitude {key!r} (expected e.g. '1e+3', '-1e-2', '0')")
    return (-1 if m.group(1) else 1, int(m.group(2)))


@dataclass
class Column:
    """One column and how it is tokenized.

    Attributes:
        name: column name.
        kind: numeric | categorical | datetime | text | pattern.
        nullable: whether the column may be empty.
        integer: numeric only; values are whole numbers.
        minimum, maximum: numeric only; optional public bounds. The grammar then only
            allows signs and magnitudes inside them, and values are clamped to them.
        sig_digits: numeric only; significant digits kept (mantissa tokens).
        magnitudes: numeric only; the decimal magnitudes the column takes, as keys
            ``"1e+3"`` (values in [1e3, 1e4)), ``"-1e+0"`` (in (-10, -1]) and ``"0"``.
            ``None`` admits every magnitude inside the bounds; in a DP run an
            undeclared set is selected with DP like a categorical domain. Values
            outside the set are clamped to the nearest magnitude in it.
        categories: categorical only; the domain. ``None`` means "select with DP".
        format: datetime only; a ``strftime`` format, e.g. ``%Y-%m-%d``.
        max_tokens: text only; longer values are truncated (the record is never split).
        pattern: pattern only; ``d`` digit, ``A`` upper-case letter, ``a`` lower-case
            letter, ``\\`` escapes the next character, anything else is a literal.
            Only the class positions are learned; literals are put back on decoding.
        pii: optional Presidio entity hint (``PERSON``, ``US_SSN`` ...).
        fake: not learned: generation fills the column with fresh format-preserving
            fakes (``pattern`` for a pattern column, or a Faker provider such as
            ``name``, ``email``, ``address`` for a text column); see ``auditor.fakes``.
        source: where the facts above came from: declared | dp | inferred.
    """

    name: str
    kind: Kind
    nullable: bool = False
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    sig_digits: int = 3
    magnitudes: list[str] | None = None
    categories: list[str] | None = None
    format: str | None = None
    max_tokens: int = 48
    pattern: str | None = None
    pii: str | None = None
    fake: str | None = None
    source: Source = "declared"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r} (expected one of {', '.join(KINDS)})")
        if self.kind == "pattern" and not self.pattern:
            raise ValueError(f"column {self.name!r}: kind 'pattern' needs a pattern")
        if self.kind == "datetime" and not self.format:
            raise ValueError(f"column {self.name!r}: kind 'datetime' needs a format")
        if not 1 <= self.sig_digits <= 9:
            raise ValueError(f"column {self.name!r}: sig_digits must be in 1..9")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"column {self.name!r}: minimum is above maximum")
        if self.magnitudes is not None:
            if not self.magnitudes:
                raise ValueError(f"column {self.name!r}: magnitudes must not be empty")
            for key in self.magnitudes:
                try:
                    parse_magnitude(key)
                except ValueError as exc:
                    raise ValueError(f"column {self.name!r}: {exc}") from None
        if self.max_tokens < 1:
            raise ValueError(f"column {self.name!r}: max_tokens must be >= 1")


@dataclass
class Schema:
    """Ordered columns; the sequence order is the order of ``columns``."""

    columns: list[Column] = field(default_factory=list)
    text: bool = False  # plain-text records: one ``text`` column, written as .jsonl

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def learned(self) -> list[Column]:
        """The columns the model learns, in sequence order (all but the ``fake`` ones)."""
        return [c for c in self.columns if not c.fake]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Schema":
        if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
            raise ValueError("schema must be a mapping with a 'columns' list")
        known = set(Column.__dataclass_fields__)
        cols = []
        for raw in data["columns"]:
            unknown = set(raw) - known
            if unknown:
                raise ValueError(f"schema column {raw.get('name')!r}: unknown keys {sorted(unknown)}")
            cols.append(Column(**raw))
        return cls(columns=cols, text=bool(data.get("text", False)))

    @classmethod
    def load(cls, path: str | Path) -> "Schema":
        """Read a declared (public) schema from YAML; every fact in it is public.

        Raises:
            ValueError: not safe YAML (a syntax error, a ``!!python`` tag: never
                constructed), an integer too long to convert, or not a schema.
        """
        with open(path, encoding="utf-8") as fh:
            try:
                data = yaml.safe_load(fh)
            except yaml.YAMLError as exc:
                raise ValueError(yaml_problem(exc)) from None
        schema = cls.from_dict(data)
        for c in schema.columns:
            c.source = "declared"
        return schema

    def dump(self, path: str | Path) -> None:
        atomic_write(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: where and what (PyYAML's own message spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or exc.__class__.__name__
    return f"invalid YAML{where}: {' '.join(str(problem).split())}"
