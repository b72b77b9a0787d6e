"""Secret formats: the randomness space R a canary secret is drawn from.

A format knows its exact size |R|, enumerates R in a fixed order (``at(i)`` for
``0 <= i < |R|``) and samples from it uniformly. Exposure (Carlini et al., "The
Secret Sharer", USENIX Security 2019) is measured against R, so its maximum is
``log2 |R|``.

Formats are built from a spec string through a registry::

    digits:6          six random digits               |R| = 10^6
    ssn               SSN-like AAA-GG-SSSS            |R| = 898 * 99 * 9999
    card              Luhn-valid 16-digit card, 4...  |R| = 10^14
    card:space        the same, grouped ``dddd dddd dddd dddd`` (``card:dash``: with ``-``)
    phone             US-like NXX-NXX-XXXX            |R| = 8^2 * 10^8
    email_local       first.lastNN (bundled names)    |R| = F * L * 100
    name              "First Last" (bundled names)    |R| = F * L
    pattern:ddd-dd    a schema pattern (d, A, a, \\ escapes)
    name+digits:4     a composition, parts joined by a space
    record:[...]      values of consecutive table columns (JSON; see ``RecordFormat``)

Most formats are products of per-position alphabets (``ProductFormat``); their
enumeration order is lexicographic in the positions, so candidates that share
leading characters are adjacent, which the trie scorer exploits.
"""

from __future__ import annotations

import json
import math
import re
import string
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

if TYPE_CHECKING:  # only the annotations name numpy; importing it costs the CLI's --help a tenth of a second
    import numpy as np

DIGITS = tuple(string.digits)


class SecretFormat:
    """A finite randomness space of secrets."""

    spec: str

    @property
    def size(self) -> int:
        """``|R|``, the number of distinct secrets."""
        raise NotImplementedError

    @property
    def log2_size(self) -> float:
        """``log2 |R|``: the maximum possible exposure of a secret of this format."""
        return math.log2(self.size)

    def at(self, index: int) -> str:
        """The ``index``-th secret of R in enumeration order."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> str:
        """One secret drawn uniformly from R."""
        raise NotImplementedError

    def enumerate(self) -> Iterator[str]:
        """All of R, in enumeration order."""
        return (self.at(i) for i in range(self.size))

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise ValueError(f"format {self.spec!r}: index {index} outside 0..{self.size - 1}")


class ProductFormat(SecretFormat):
    """Secrets ``a_1 a_2 ... a_n`` with ``a_j`` from alphabet ``A_j``; ``|R| = prod |A_j|``.

    Index ``i`` is read in mixed radix, most significant position first.
    """

    def __init__(self, spec: str, alphabets: Sequence[Sequence[str]]):
        if not alphabets or any(len(a) == 0 for a in alphabets):
            raise ValueError(f"format {spec!r}: every position needs a non-empty alphabet")
        self.spec = spec
        self.alphabets = [tuple(a) for a in alphabets]

    @property
    def size(self) -> int:
        return math.prod(len(a) for a in self.alphabets)

    def at(self, index: int) -> str:
        self._check_index(index)
        out = []
        for alphabet in reversed(self.alphabets):
            index, j = divmod(index, len(alphabet))
            out.append(alphabet[j])
        return "".join(reversed(out))

    def sample(self, rng: np.random.Generator) -> str:
        return "".join(a[int(rng.integers(len(a)))] for a in self.alphabets)


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit for ``digits`` (the payload, without the check digit).

    From the right end of the payload, every other digit starting with the last
    is doubled (minus 9 when above 9); the check digit is ``(10 - sum mod 10) mod 10``
    (ISO/IEC 7812-1, Annex B).
    """
    if not digits or not digits.isdigit():
        raise ValueError(f"luhn_check_digit needs a non-empty digit string, got {len(digits)} characters")
    total = 0
    for pos, ch in enumerate(reversed(digits)):
        d = int(ch)
        if pos % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """Whether the last digit of ``number`` is its Luhn check digit."""
    return len(number) >= 2 and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


class CardFormat(SecretFormat):
    """16-digit card numbers ``4`` + 14 free digits + Luhn check digit; ``|R| = 10^14``.

    ``sep`` (if any) is put between groups of four digits.
    """

    def __init__(self, spec: str = "card", sep: str = ""):
        self.spec = spec
        self.sep = sep
        self._payload = ProductFormat(spec, [("4",)] + [DIGITS] * 14)

    @property
    def size(self) -> int:
        return self._payload.size

    def _grouped(self, payload: str) -> str:
        number = payload + luhn_check_digit(payload)
        return self.sep.join(number[i:i + 4] for i in range(0, 16, 4))

    def at(self, index: int) -> str:
        return self._grouped(self._payload.at(index))

    def sample(self, rng: np.random.Generator) -> str:
        return self._grouped(self._payload.sample(rng))


class CompositeFormat(SecretFormat):
    """Secrets ``s_1 sep s_2 ...`` with ``s_j`` from format ``F_j``; ``|R| = prod |F_j|``."""

    def __init__(self, parts: Sequence[SecretFormat], sep: str = " "):
        if len(parts) < 2:
            raise ValueError("a composite format needs at least two parts")
        self.parts = list(parts)
        self.sep = sep
        self.spec = "+".join(p.spec for p in parts)

    @property
    def size(self) -> int:
        return math.prod(p.size for p in self.parts)

    def at(self, index: int) -> str:
        self._check_index(index)
        out = []
        for part in reversed(self.parts):
            index, j = divmod(index, part.size)
            out.append(part.at(j))
        return self.sep.join(reversed(out))

    def sample(self, rng: np.random.Generator) -> str:
        return self.sep.join(p.sample(rng) for p in self.parts)


_MAGNITUDE = re.compile(r"^(-?)1e([+-]\d+)$")


def number_text(mantissa: int, *, digits: int, sign: int, exponent: int) -> str:
    """The text of ``sign * mantissa * 10**(exponent - digits + 1)`` with ``digits - 1 - exponent``
    decimals (none when that is negative): the codec's form of a decoded number (exact, via Decimal)."""
    value = Decimal(sign * mantissa).scaleb(exponent - digits + 1)
    return f"{value:.{max(0, digits - 1 - exponent)}f}"


class CategoryPart:
    """One categorical column of a record secret: a value of its (public) domain, one token."""

    def __init__(self, column: str, values: Sequence[str]):
        values = tuple(str(v) for v in values)
        if not values or len(set(values)) != len(values):
            raise ValueError(f"record part {column!r}: needs distinct categories, got {len(values)}")
        self.column, self.values = column, values

    @property
    def size(self) -> int:
        return len(self.values)

    def value(self, index: int) -> str:
        return self.values[index]

    def to_dict(self) -> dict:
        return {"column": self.column, "categories": list(self.values)}


class NumberPart:
    """One numeric column of a record secret: its ``digits`` significant digits under a fixed
    public magnitude ``sign * 10**exponent``.

    The mantissa ``m`` runs over ``10**(digits-1) .. 10**digits - 1`` (``|part| = 9 * 10**(digits-1)``);
    the codec writes the number as one leading token (sign, exponent, first digit) and
    ``digits - 1`` digit tokens, so every value is a distinct token sequence.
    """

    def __init__(self, column: str, digits: int, magnitude: str):
        m = _MAGNITUDE.match(str(magnitude))
        if not m or not 1 <= int(digits) <= 9:
            raise ValueError(f"record part {column!r}: needs digits in 1..9 and a magnitude like '1e+3', "
                             f"got {digits!r}, {magnitude!r}")
        self.column, self.digits, self.magnitude = column, int(digits), str(magnitude)
        self.sign, self.exponent = (-1 if m.group(1) else 1), int(m.group(2))

    @property
    def size(self) -> int:
        return 9 * 10 ** (self.digits - 1)

    def value(self, index: int) -> str:
        return number_text(10 ** (self.digits - 1) + index, digits=self.digits, sign=self.sign,
                           exponent=self.exponent)

    def to_dict(self) -> dict:
        return {"column": self.column, "digits": self.digits, "magnitude": self.magnitude}


RecordPart = CategoryPart | NumberPart


class RecordFormat(SecretFormat):
    """Secrets made of the values of consecutive table columns (a span of the record).

    For tables without a text or pattern column (``canaries.spans``): a rare
    combination of categorical values, a number's digits under a fixed
    magnitude, or a whole record. ``|R| = prod |part|``; the secret is the JSON
    list of the column values (``["yes", "12300"]``), enumerated in mixed radix,
    first column most significant. The spec holds every public fact of the parts
    (``record:[{"column": ..., "categories": [...]}, {"column": ..., "digits": 3,
    "magnitude": "1e+4"}]``), so the space is rebuilt from the manifest alone.
    """

    def __init__(self, parts: Sequence[RecordPart]):
        if not parts:
            raise ValueError("a record format needs at least one column")
        columns = [p.column for p in parts]
        if len(set(columns)) != len(columns):
            raise ValueError(f"a record format names a column twice: {columns}")
        self.parts = list(parts)
        self.spec = "record:" + json.dumps([p.to_dict() for p in parts], separators=(",", ":"), ensure_ascii=False)

    @property
    def columns(self) -> list[str]:
        return [p.column for p in self.parts]

    @property
    def size(self) -> int:
        return math.prod(p.size for p in self.parts)

    def join(self, values: Sequence[str]) -> str:
        """The secret of per-column ``values``."""
        return json.dumps(list(values), ensure_ascii=False)

    def at(self, index: int) -> str:
        self._check_index(index)
        out = []
        for part in reversed(self.parts):
            index, j = divmod(index, part.size)
            out.append(part.value(j))
        return self.join(reversed(out))

    def sample(self, rng: np.random.Generator) -> str:
        return self.join(p.value(int(rng.integers(p.size))) for p in self.parts)


def record_values(secret: str, n_columns: int) -> list[str]:
    """The per-column values of a ``RecordFormat`` secret (ValueError if it is not one)."""
    try:
        values = json.loads(secret)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, list) or len(values) != n_columns or not all(isinstance(v, str) for v in values):
        raise ValueError(f"not a record secret of {n_columns} column(s)")
    return values


@lru_cache(maxsize=None)
def bundled_names(kind: str) -> tuple[str, ...]:
    """The bundled public-domain name list ``kind`` ("first" or "last")."""
    if kind not in ("first", "last"):
        raise ValueError(f"unknown name list {kind!r} (expected 'first' or 'last')")
    text = resources.files("canaries").joinpath("data", f"{kind}_names.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def pattern_alphabets(pattern: str) -> list[tuple[str, ...]]:
    """Per-position alphabets of a schema pattern: ``d`` digit, ``A`` upper, ``a`` lower,
    ``\\`` escapes the next character, anything else is a literal."""
    classes = {"d": DIGITS, "A": tuple(string.ascii_uppercase), "a": tuple(string.ascii_lowercase)}
    out: list[tuple[str, ...]] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            literal = next(chars, None)
            if literal is None:
                raise ValueError(f"pattern {pattern!r} ends with a lone backslash")
            out.append((literal,))
        else:
            out.append(classes.get(ch, (ch,)))
    if all(len(a) == 1 for a in out):
        raise ValueError(f"pattern {pattern!r} has no class position (d, A or a): its space has one secret")
    return out


FormatFactory = Callable[[str | None], SecretFormat]
FORMATS: dict[str, FormatFactory] = {}


def register_format(name: str) -> Callable[[FormatFactory], FormatFactory]:
    """Register a factory ``arg -> SecretFormat`` under ``name`` (spec ``name`` or ``name:arg``)."""

    def wrap(factory: FormatFactory) -> FormatFactory:
        FORMATS[name] = factory
        return factory

    return wrap


def _no_arg(name: str, arg: str | None) -> None:
    if arg is not None:
        raise ValueError(f"format {name!r} takes no argument, got {name}:{arg}")


@register_format("digits")
def _digits(arg: str | None) -> SecretFormat:
    if arg is None or not arg.isdigit() or not 1 <= int(arg) <= 30:
        raise ValueError(f"format 'digits' needs a length 1..30, e.g. digits:6 (got {arg!r})")
    return ProductFormat(f"digits:{arg}", [DIGITS] * int(arg))


@register_format("ssn")
def _ssn(arg: str | None) -> SecretFormat:
    _no_arg("ssn", arg)
    # SSA rules: area 001-899 except 666, group 01-99, serial 0001-9999.
    area = tuple(f"{i:03d}" for i in range(1, 900) if i != 666)
    group = tuple(f"{i:02d}" for i in range(1, 100))
    serial = tuple(f"{i:04d}" for i in range(1, 10000))
    return ProductFormat("ssn", [area, ("-",), group, ("-",), serial])


@register_format("phone")
def _phone(arg: str | None) -> SecretFormat:
    _no_arg("phone", arg)
    n = tuple("23456789")
    return ProductFormat("phone", [n, DIGITS, DIGITS, ("-",), n, DIGITS, DIGITS, ("-",)] + [DIGITS] * 4)


_CARD_SEPARATORS = {None: "", "space": " ", "dash": "-"}


@register_format("card")
def _card(arg: str | None) -> SecretFormat:
    if arg not in _CARD_SEPARATORS:
        raise ValueError(f"format 'card' takes no argument, 'space' or 'dash' (got card:{arg})")
    return CardFormat("card" if arg is None else f"card:{arg}", _CARD_SEPARATORS[arg])


@register_format("name")
def _name(arg: str | None) -> SecretFormat:
    _no_arg("name", arg)
    return ProductFormat("name", [bundled_names("first"), (" ",), bundled_names("last")])


@register_format("email_local")
def _email_local(arg: str | None) -> SecretFormat:
    _no_arg("email_local", arg)
    first = tuple(n.lower() for n in bundled_names("first"))
    last = tuple(n.lower() for n in bundled_names("last"))
    return ProductFormat("email_local", [first, (".",), last, DIGITS, DIGITS])


@register_format("pattern")
def _pattern(arg: str | None) -> SecretFormat:
    if not arg:
        raise ValueError("format 'pattern' needs a pattern, e.g. pattern:ddd-dd-dddd")
    return ProductFormat(f"pattern:{arg}", pattern_alphabets(arg))


@register_format("record")
def _record(arg: str | None) -> SecretFormat:
    try:
        raw = json.loads(arg or "")
    except json.JSONDecodeError:
        raw = None
    if not isinstance(raw, list) or not all(isinstance(p, dict) and "column" in p for p in raw):
        raise ValueError("format 'record' needs a JSON list of parts, e.g. "
                         'record:[{"column":"smoker","categories":["no","yes"]}]')
    parts: list[RecordPart] = []
    for p in raw:
        if set(p) == {"column", "categories"}:
            parts.append(CategoryPart(p["column"], p["categories"]))
        elif set(p) == {"column", "digits", "magnitude"}:
            parts.append(NumberPart(p["column"], p["digits"], p["magnitude"]))
        else:
            raise ValueError(f"record part {p.get('column')!r}: expected keys column+categories or "
                             f"column+digits+magnitude, got {sorted(p)}")
    return RecordFormat(parts)


def make_format(spec: str) -> SecretFormat:
    """Build a format from its spec string (see the module docstring).

    ``pattern:...`` and ``record:...`` take the whole rest of the spec as their
    argument; otherwise ``+`` separates the parts of a composition.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"format spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if not spec.startswith(("pattern:", "record:")) and "+" in spec:
        return CompositeFormat([make_format(part) for part in spec.split("+")])
    name, colon, arg = spec.partition(":")
    if name not in FORMATS:
        raise ValueError(f"unknown canary format {name!r} (known: {', '.join(sorted(FORMATS))})")
    return FORMATS[name](arg if colon else None)
