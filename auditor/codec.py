"""Rows <-> token ids, guided by the schema, and the grammar that keeps samples valid.

Every record becomes ``[BOS] field_1 ... field_k [EOS]`` with a token class per
column kind, so that the model only has to learn values, never structure:

- categorical: one token per value of the column's (public or DP-selected)
  domain, plus ``<other>`` for values outside it;
- numeric: a leading-part token (sign, decimal exponent and first digit) followed
  by ``sig_digits - 1`` digit tokens (``2534.17`` with 4 digits -> ``[+2e3] 5 3 4``),
  or ``ZERO``. The leading part decides the value to within a digit of its
  magnitude, and it is one token: the model learns its distribution given the
  columns before (mean cost by diagnosis is mostly this token), and DP training
  gets it right first. Only the magnitudes the schema admits (bounds, declared or
  DP-selected ``magnitudes``) get tokens;
- datetime: year, month, day (and hour, minute, second when the format has them)
  tokens; the day tokens allowed depend on the month;
- pattern (SSN, phone, card): only the class positions (digit / letter) are
  tokens, the literals of the pattern are put back on decoding;
- text: the shipped byte-level BPE (``auditor/data/tokenizer.json``, fitted on
  public Faker text only), at most ``max_tokens`` tokens, closed by ``SEP``.
  Digits are single tokens.

Nullable columns may start with ``NULL``. The grammar is a DFA over token ids
(``Grammar``): ``allowed[state]`` masks the logits when sampling and
``next_state[state, token]`` advances, so batched generation on CPU or GPU is a
gather per step, and every sample parses by construction.

The vocabulary depends only on the tokenizer file and the schema's domains, never
on the private values themselves (DESIGN.md, privacy rule 2).
"""

from __future__ import annotations

import calendar
import json
import math
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from importlib import resources
from typing import Any, Mapping, Sequence

import torch
from tokenizers import Tokenizer

from auditor.schema import Column, Schema, magnitude_key, parse_magnitude

PAD, BOS, EOS, SEP, NULL, ZERO = "<pad>", "<bos>", "<eos>", "<sep>", "<null>", "<zero>"
OTHER = "<other>"
EXP_MIN, EXP_MAX = -8, 15
YEAR_MIN, YEAR_MAX = 1800, 2199
_UPPER = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
_LOWER = [chr(c) for c in range(ord("a"), ord("z") + 1)]
_CLASS_CHARS = {"d": [str(d) for d in range(10)], "A": _UPPER, "a": _LOWER}
_DATE_PARTS = {"%Y": "year", "%m": "month", "%d": "day", "%H": "hour", "%M": "minute", "%S": "second"}


def load_text_tokenizer() -> Tokenizer:
    """The shipped, data-independent byte-level BPE tokenizer."""
    path = resources.files("auditor") / "data" / "tokenizer.json"
    return Tokenizer.from_str(path.read_text(encoding="utf-8"))


def pattern_slots(pattern: str) -> list[tuple[str, str]]:
    """Split a pattern into ``("class", c)`` and ``("literal", ch)`` slots.

    ``d`` digit, ``A`` upper-case letter, ``a`` lower-case letter, ``\\x`` literal x.
    """
    slots, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            slots.append(("literal", pattern[i + 1]))
            i += 2
            continue
        slots.append(("class", ch) if ch in _CLASS_CHARS else ("literal", ch))
        i += 1
    return slots


def numeric_to_parts(value: float, sig_digits: int) -> tuple[int, int] | None:
    """``(exponent, mantissa)`` with ``value ~= ±mantissa * 10**(exponent - sig_digits + 1)``.

    ``mantissa`` has exactly ``sig_digits`` digits (first one non-zero); the sign
    is carried by the exponent token. Returns None for zero and for magnitudes
    below ``10**EXP_MIN`` (subnormals included: they encode as zero). Exponents
    are clamped to [EXP_MIN, EXP_MAX].
    """
    if value == 0 or not math.isfinite(value):
        return None
    mag = abs(value)
    exp = math.floor(math.log10(mag))
    if exp < EXP_MIN - 1:  # too small even after rounding up; 10**(exp - sig_digits + 1) may underflow to 0
        return None
    mant = round(mag / 10 ** (exp - sig_digits + 1))
    if mant >= 10**sig_digits:  # rounding carried into a new digit: 9.996 -> 10.0
        exp += 1
        mant = round(mag / 10 ** (exp - sig_digits + 1))
    if mant < 10 ** (sig_digits - 1):  # float error just below a power of ten
        mant = 10 ** (sig_digits - 1)
    if exp > EXP_MAX:
        exp, mant = EXP_MAX, 10**sig_digits - 1
    if exp < EXP_MIN:
        return None
    return exp, mant


def format_number(value: float, *, integer: bool, exponent: int, sig_digits: int) -> str:
    """Text form of a decoded number: integers as ints, else just the kept digits."""
    if integer:
        return str(int(round(value)))
    decimals = max(0, sig_digits - 1 - exponent)
    return f"{value:.{decimals}f}"


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == ""


def _clamp(col: Column, number: float) -> float:
    """``number`` inside the column's public bounds."""
    if col.minimum is not None:
        number = max(number, col.minimum)
    if col.maximum is not None:
        number = min(number, col.maximum)
    return number


def _encodable(col: Column, value: Any) -> float:
    """The number the codec encodes for ``value``: clamped to the bounds, rounded for whole-number columns."""
    number = _clamp(col, float(value))
    return float(round(number)) if col.integer else number


def value_magnitude(col: Column, value: Any) -> str | None:
    """The magnitude key (``"1e+3"``, ``"-1e-2"``, ``"0"``) of a numeric value, None if empty.

    The key is that of the number the codec would encode (see ``_encodable``),
    before any snapping to the column's admitted magnitudes.
    """
    if _is_empty(value):
        return None
    number = _encodable(col, value)
    parts = numeric_to_parts(number, col.sig_digits)
    if parts is None:
        return magnitude_key(0, 0)
    return magnitude_key(1 if number > 0 else -1, parts[0])


def _distance_to_bucket(number: float, bucket: tuple[int, int], sig_digits: int) -> float:
    """How far ``number`` is from the values of magnitude ``bucket`` (``(0, 0)``: zero)."""
    sign, exp = bucket
    if sign == 0:
        return abs(number)
    lo, hi = 10.0**exp, (10**sig_digits - 1) * 10.0 ** (exp - sig_digits + 1)
    if sign < 0:
        lo, hi = -hi, -lo
    return max(lo - number, 0.0, number - hi)


def _has_other(col: Column) -> bool:
    """A DP-selected or inferred domain may miss values: they map to ``<other>``.

    A declared domain is complete (the data is validated against it), so it has none.
    """
    return col.source != "declared"


def _date_parts(fmt: str) -> list[str]:
    parts = [name for code, name in _DATE_PARTS.items() if code in fmt]
    if not {"year", "month", "day"} <= set(parts):
        raise ValueError(f"datetime format {fmt!r} must contain %Y, %m and %d")
    return parts


@dataclass
class Grammar:
    """A DFA over token ids.

    Attributes:
        start: the state right after BOS.
        allowed: ``[num_states, vocab]`` bool, tokens allowed in each state.
        next_state: ``[num_states, vocab]`` long, the state after a token (-1: not allowed).
        field_of: ``[num_states]`` long, index of the field being decoded in each state
            (``len(fields)`` in the final state, where only EOS is allowed, and after it).
        done: the state after EOS (only PAD allowed, loops on itself).
        magnitude: ``[num_states]`` bool, the states where a numeric column's leading
            part (sign, magnitude, first digit) is chosen.
    """

    start: int
    allowed: torch.Tensor
    next_state: torch.Tensor
    field_of: torch.Tensor
    done: int
    magnitude: torch.Tensor

    def state_after(self, ids: Sequence[int], state: int | None = None) -> int:
        """Walk from ``state`` (default ``start``) over ``ids``; ValueError if one is not allowed."""
        s = self.start if state is None else state
        for t in ids:
            nxt = int(self.next_state[s, t])
            if nxt < 0:
                raise ValueError(f"token {t} not allowed in grammar state {s}")
            s = nxt
        return s

    def to(self, device) -> "Grammar":
        return Grammar(self.start, self.allowed.to(device), self.next_state.to(device),
                       self.field_of.to(device), self.done, self.magnitude.to(device))


class RowCodec:
    """Schema-guided codec for tabular (or one-column text) records.

    Args:
        schema: the columns in sequence order; categorical columns need their
            domain (``categories``) set before the codec is built.
        tokenizer: the text tokenizer; defaults to the shipped one.
    """

    def __init__(self, schema: Schema, tokenizer: Tokenizer | None = None):
        for col in schema.columns:
            if col.kind == "categorical" and col.categories is None:
                raise ValueError(f"column {col.name!r}: categorical domain not set (declare it or select it with DP)")
        self.schema = schema
        self.text_tokenizer = tokenizer or load_text_tokenizer()
        self._build_vocab()
        self.grammar = self._build_grammar()

    # ------------------------------------------------------------------ vocabulary
    def _build_vocab(self) -> None:
        tokens: list[str] = [PAD, BOS, EOS, SEP, NULL, ZERO]
        tokens += [f"<d{d}>" for d in range(10)]
        tokens += [f"<U{c}>" for c in _UPPER] + [f"<L{c}>" for c in _LOWER]
        tokens += [f"<y{y}>" for y in range(YEAR_MIN, YEAR_MAX + 1)]
        tokens += [f"<mo{m}>" for m in range(1, 13)] + [f"<dd{d}>" for d in range(1, 32)]
        tokens += [f"<h{h}>" for h in range(24)] + [f"<mi{m}>" for m in range(60)] + [f"<s{s}>" for s in range(60)]
        self.text_base = len(tokens)
        self.text_vocab = self.text_tokenizer.get_vocab_size()
        # A pretrained model's tokenizer has special tokens (<s>, <|endoftext|>...): never text.
        self._text_special = {i for i, tok in self.text_tokenizer.get_added_tokens_decoder().items() if tok.special}
        self.cat_base: dict[str, int] = {}
        n = self.text_base + self.text_vocab
        for col in self.schema.learned:
            if col.kind == "categorical":
                self.cat_base[col.name] = n
                n += len(col.categories) + (1 if _has_other(col) else 0)
        # Leading-part tokens of numbers: sign, decimal exponent and first digit in one
        # token, for the magnitudes the schema's numeric columns admit.
        self._admitted = {col.name: self._magnitudes(col) for col in self.schema.learned if col.kind == "numeric"}
        magnitudes = sorted({m for admitted in self._admitted.values() for m in admitted if m != (0, 0)})
        self.lead_ids: dict[tuple[int, int, int], int] = {}
        for sign, exp in magnitudes:
            for d in range(1, 10):
                self.lead_ids[(sign, exp, d)] = n
                n += 1
        self._lead_of = {i: key for key, i in self.lead_ids.items()}
        self.vocab_size = n
        self._special = {t: i for i, t in enumerate(tokens)}
        self.pad_id, self.bos_id, self.eos_id = self._special[PAD], self._special[BOS], self._special[EOS]
        self.sep_id, self.null_id, self.zero_id = self._special[SEP], self._special[NULL], self._special[ZERO]
        self.digit_ids = [self._special[f"<d{d}>"] for d in range(10)]
        self.class_ids = {
            "d": self.digit_ids,
            "A": [self._special[f"<U{c}>"] for c in _UPPER],
            "a": [self._special[f"<L{c}>"] for c in _LOWER],
        }
        self.part_ids = {
            "year": {y: self._special[f"<y{y}>"] for y in range(YEAR_MIN, YEAR_MAX + 1)},
            "month": {m: self._special[f"<mo{m}>"] for m in range(1, 13)},
            "day": {d: self._special[f"<dd{d}>"] for d in range(1, 32)},
            "hour": {h: self._special[f"<h{h}>"] for h in range(24)},
            "minute": {m: self._special[f"<mi{m}>"] for m in range(60)},
            "second": {s: self._special[f"<s{s}>"] for s in range(60)},
        }
        self._id_to_special = {i: t for t, i in self._special.items()}

    @property
    def fields(self) -> list[str]:
        return [c.name for c in self.schema.learned]

    # ------------------------------------------------------------------ grammar
    def _build_grammar(self) -> Grammar:
        V = self.vocab_size
        allowed: list[dict[int, int]] = []  # per state: token -> next state (filled later)
        field_of: list[int] = []

        def new_state(field: int) -> int:
            allowed.append({})
            field_of.append(field)
            return len(allowed) - 1

        columns = self.schema.learned
        text_ids = [self.text_base + t for t in range(self.text_vocab) if t not in self._text_special]
        starts = [new_state(i) for i in range(len(columns))]
        magnitude_states: set[int] = set()
        final = new_state(len(columns))
        done = new_state(len(columns))
        allowed[final][self.eos_id] = done
        allowed[done][self.pad_id] = done
        self._column_states: dict[str, dict[str, Any]] = {}
        for i, col in enumerate(columns):
            s0, nxt = starts[i], (starts[i + 1] if i + 1 < len(starts) else final)
            if col.nullable:
                allowed[s0][self.null_id] = nxt
            kind = col.kind
            if kind == "categorical":
                base = self.cat_base[col.name]
                for k in range(len(col.categories) + (1 if _has_other(col) else 0)):
                    allowed[s0][base + k] = nxt
            elif kind == "numeric":
                magnitude_states.add(s0)
                if (0, 0) in self._admitted[col.name]:
                    allowed[s0][self.zero_id] = nxt
                mant = [new_state(i) for _ in range(col.sig_digits - 1)]
                for tok in self._lead_tokens(col):
                    allowed[s0][tok] = mant[0] if mant else nxt
                for j, s in enumerate(mant):
                    target = mant[j + 1] if j + 1 < len(mant) else nxt
                    for tok in self.digit_ids:
                        allowed[s][tok] = target
            elif kind == "pattern":
                classes = [c for k, c in pattern_slots(col.pattern) if k == "class"]
                if not classes:
                    raise ValueError(f"column {col.name!r}: pattern has no digit/letter positions")
                states = [s0] + [new_state(i) for _ in classes[1:]]
                for j, (s, c) in enumerate(zip(states, classes)):
                    target = states[j + 1] if j + 1 < len(states) else nxt
                    for tok in self.class_ids[c]:
                        allowed[s][tok] = target
            elif kind == "datetime":
                parts = _date_parts(col.format)
                month_state = new_state(i)
                day_states = {m: new_state(i) for m in range(1, 13)}
                rest = [new_state(i) for _ in parts[3:]]
                after_day = rest[0] if rest else nxt
                for y, tok in self.part_ids["year"].items():
                    allowed[s0][tok] = month_state
                for m, tok in self.part_ids["month"].items():
                    allowed[month_state][tok] = day_states[m]
                for m, s in day_states.items():
                    for d in range(1, calendar.monthrange(2000, m)[1] + 1):  # leap year: allow Feb 29
                        allowed[s][self.part_ids["day"][d]] = after_day
                for j, (s, part) in enumerate(zip(rest, parts[3:])):
                    target = rest[j + 1] if j + 1 < len(rest) else nxt
                    for tok in self.part_ids[part].values():
                        allowed[s][tok] = target
            elif kind == "text":
                states = [s0] + [new_state(i) for _ in range(col.max_tokens)]
                for j, s in enumerate(states):
                    if j > 0 or col.nullable:
                        allowed[s][self.sep_id] = nxt
                    if j < col.max_tokens:
                        for tok in text_ids:
                            allowed[s][tok] = states[j + 1]
            else:  # pragma: no cover - Column validates kinds
                raise ValueError(f"unknown column kind {kind!r}")
        S = len(allowed)
        next_state = torch.full((S, V), -1, dtype=torch.long)
        for s, row in enumerate(allowed):
            if row:
                idx = torch.tensor(list(row.keys()), dtype=torch.long)
                next_state[s, idx] = torch.tensor(list(row.values()), dtype=torch.long)
        return Grammar(
            start=starts[0] if starts else final,
            allowed=next_state >= 0,
            next_state=next_state,
            field_of=torch.tensor(field_of, dtype=torch.long),
            done=done,
            magnitude=torch.tensor([i in magnitude_states for i in range(S)], dtype=torch.bool),
        )

    def _lead_tokens(self, col: Column) -> list[int]:
        """Leading-part tokens (sign, exponent, first digit) a numeric column admits."""
        return [self.lead_ids[(sign, exp, d)] for sign, exp in self._admitted[col.name] if sign != 0
                for d in range(1, 10)]

    def _magnitudes(self, col: Column) -> list[tuple[int, int]]:
        """``(sign, exponent)`` buckets a numeric column admits, given its public facts; ``(0, 0)`` is zero.

        Whole numbers other than 0 have exponent >= 0; public bounds cap the
        magnitude of each sign and rule out a sign entirely (``minimum >= 0``);
        a declared or DP-selected ``magnitudes`` set keeps only its magnitudes.
        """
        lo_exp = 0 if col.integer else EXP_MIN
        out = []
        for sign in (1, -1):
            bound = col.maximum if sign > 0 else (None if col.minimum is None else -col.minimum)
            if bound is not None and bound <= 0:
                continue
            hi_exp = EXP_MAX if bound is None else min(EXP_MAX, math.floor(math.log10(bound)))
            out += [(sign, e) for e in range(lo_exp, hi_exp + 1)]
        out.append((0, 0))
        if col.magnitudes is not None:
            chosen = {parse_magnitude(k) for k in col.magnitudes}
            kept = [m for m in out if m in chosen]
            out = kept or out  # a set outside the bounds admits nothing: fall back to the bounds
        return out

    def _number_ids(self, col: Column, number: float) -> list[int]:
        """Exponent and mantissa tokens of ``number``, snapped to the nearest admitted magnitude."""
        admitted = self._admitted[col.name]
        parts = numeric_to_parts(number, col.sig_digits)
        key = (0, 0) if parts is None else ((1 if number > 0 else -1), parts[0])
        if key not in admitted:
            key = min(admitted, key=lambda m: _distance_to_bucket(number, m, col.sig_digits))
            if key != (0, 0):
                sign, exp = key
                scale = 10.0 ** (exp - col.sig_digits + 1)
                mant = min(max(round(abs(number) / scale), 10 ** (col.sig_digits - 1)), 10**col.sig_digits - 1)
                parts = (exp, mant)
        if key == (0, 0):
            return [self.zero_id]
        digits = str(parts[1])
        return [self.lead_ids[(key[0], key[1], int(digits[0]))]] + [self.digit_ids[int(c)] for c in digits[1:]]

    # ------------------------------------------------------------------ encoding
    def encode_value(self, field: str | None, value: Any) -> list[int]:
        """Token ids of one column value (no terminator for text: see ``encode``)."""
        col = self.schema.column(field) if field is not None else self.schema.columns[0]
        if _is_empty(value):
            if col.kind == "text":
                return []
            return [self.null_id]
        text = str(value)
        kind = col.kind
        if kind == "categorical":
            base = self.cat_base[col.name]
            if text in col.categories:
                return [base + col.categories.index(text)]
            if not _has_other(col):
                raise ValueError(f"column {col.name!r}: value outside the declared categories")
            return [base + len(col.categories)]
        if kind == "numeric":
            return self._number_ids(col, _encodable(col, text))
        if kind == "pattern":
            slots = pattern_slots(col.pattern)
            if len(text) != len(slots):
                raise ValueError(f"column {col.name!r}: value does not match its pattern")
            out = []
            for ch, (k, c) in zip(text, slots):
                if k == "literal":
                    if ch != c:
                        raise ValueError(f"column {col.name!r}: value does not match its pattern")
                    continue
                pool = _CLASS_CHARS[c]
                if ch not in pool:
                    raise ValueError(f"column {col.name!r}: value does not match its pattern")
                out.append(self.class_ids[c][pool.index(ch)])
            return out
        if kind == "datetime":
            try:
                when = datetime.strptime(text, col.format)
            except ValueError as exc:
                raise ValueError(f"column {col.name!r}: value does not match format {col.format!r}") from exc
            year = min(max(when.year, YEAR_MIN), YEAR_MAX)
            ids = [self.part_ids["year"][year], self.part_ids["month"][when.month], self.part_ids["day"][when.day]]
            for part in _date_parts(col.format)[3:]:
                ids.append(self.part_ids[part][getattr(when, part)])
            return ids
        ids = [t for t in self.text_tokenizer.encode(text, add_special_tokens=False).ids
               if t not in self._text_special][: col.max_tokens]
        return [self.text_base + t for t in ids]

    def _field_ids(self, col: Column, value: Any) -> list[int]:
        ids = self.encode_value(col.name, value)
        if col.kind == "text" and ids != [self.null_id]:
            ids = ids + [self.sep_id]
        return ids

    def encode(self, record: Mapping[str, Any] | str) -> list[int]:
        """``[BOS] field_1 ... field_k [EOS]``; text values longer than ``max_tokens`` are truncated."""
        record = self._as_row(record)
        ids = [self.bos_id]
        for col in self.schema.learned:
            ids += self._field_ids(col, record.get(col.name))
        ids.append(self.eos_id)
        return ids

    def encode_prefix(self, record: Mapping[str, Any] | str, field: str | None) -> list[int]:
        """``[BOS]`` + the fields before ``field`` (for text records: the whole prefix text, unterminated)."""
        if self.schema.text and (field is None or isinstance(record, str)):
            return [self.bos_id] + self.encode_value(self.schema.columns[0].name, self._as_row(record)["text"])
        record = self._as_row(record)
        ids = [self.bos_id]
        for col in self.schema.learned:
            if col.name == field:
                return ids
            ids += self._field_ids(col, record.get(col.name))
        raise KeyError(field)

    def _as_row(self, record: Mapping[str, Any] | str) -> Mapping[str, Any]:
        if isinstance(record, str):
            if not self.schema.text:
                raise ValueError("a text record was given to a tabular codec")
            return {self.schema.columns[0].name: record}
        return record

    # ------------------------------------------------------------------ decoding
    def decode_value(self, field: str | None, ids: Sequence[int]) -> str:
        """Inverse of ``encode_value`` (text values are re-joined by the BPE decoder)."""
        col = self.schema.column(field) if field is not None else self.schema.columns[0]
        ids = list(ids)
        if ids == [self.null_id] or (col.kind == "text" and not ids):
            return ""
        kind = col.kind
        if kind == "categorical":
            k = ids[0] - self.cat_base[col.name]
            return col.categories[k] if k < len(col.categories) else OTHER
        if kind == "numeric":
            if ids == [self.zero_id]:
                return "0"
            sign, exp, lead = self._lead_of[ids[0]]
            mant = int(str(lead) + "".join(str(self.digit_ids.index(t)) for t in ids[1:]))
            value = _clamp(col, sign * mant * 10.0 ** (exp - col.sig_digits + 1))
            return format_number(value, integer=col.integer, exponent=exp, sig_digits=col.sig_digits)
        if kind == "pattern":
            chars = iter(ids)
            out = []
            for k, c in pattern_slots(col.pattern):
                if k == "literal":
                    out.append(c)
                else:
                    out.append(_CLASS_CHARS[c][self.class_ids[c].index(next(chars))])
            return "".join(out)
        if kind == "datetime":
            parts = _date_parts(col.format)
            fields = {p: int(self._id_to_special[t].strip("<>").lstrip("ymodhis")) for p, t in zip(parts, ids)}
            when = datetime(fields["year"], fields["month"], fields["day"], fields.get("hour", 0),
                            fields.get("minute", 0), fields.get("second", 0))
            return when.strftime(col.format)
        return self.text_tokenizer.decode([t - self.text_base for t in ids])

    def split_fields(self, ids: Sequence[int]) -> list[list[int]] | None:
        """Token ids of each field of a full sequence (BOS optional, EOS required), or None if invalid."""
        ids = list(ids)
        if ids and ids[0] == self.bos_id:
            ids = ids[1:]
        g = self.grammar
        n_fields = len(self.schema.learned)
        fields: list[list[int]] = [[] for _ in range(n_fields)]
        s = g.start
        for t in ids:
            nxt = int(g.next_state[s, t]) if 0 <= t < self.vocab_size else -1
            if nxt < 0:
                return None
            f = int(g.field_of[s])
            if t == self.eos_id:
                return fields
            if f < n_fields and t != self.sep_id:
                fields[f].append(t)
            s = nxt
        return None

    def decode(self, ids: Sequence[int]) -> dict[str, str] | str | None:
        """A record from a full sequence, or None when it does not parse."""
        fields = self.split_fields(ids)
        if fields is None:
            return None
        row = {}
        for col, fids in zip(self.schema.learned, fields):
            try:
                row[col.name] = self.decode_value(col.name, fids)
            except ValueError:  # Feb 29 of a non-leap year: the grammar allows it for every year
                return None
        if self.schema.text:
            return row[self.schema.columns[0].name]
        return row

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema.to_dict(), "tokenizer": json.loads(self.text_tokenizer.to_str())}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RowCodec":
        tok = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        return cls(Schema.from_dict(data["schema"]), tokenizer=tok)

    @cached_property
    def max_length(self) -> int:
        """Length of the longest sequence the grammar admits, BOS and EOS included."""
        total = 2
        for col in self.schema.learned:
            total += {
                "categorical": 1,
                "numeric": col.sig_digits,
                "pattern": sum(1 for k, _ in pattern_slots(col.pattern or "") if k == "class"),
                "datetime": len(_date_parts(col.format)) if col.format else 0,
                "text": col.max_tokens + 1,
            }[col.kind]
        return total
