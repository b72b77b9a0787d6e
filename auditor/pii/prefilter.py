"""Prefilters: which recognizers cannot find anything in a text, decided cheaply.

A prefilter answers "may this recognizer return a result for this text?". It
may say yes wrongly (the recognizer then runs and finds nothing) but never no
wrongly: skipping a recognizer whose prefilter says no leaves the findings of
``AnalyzerEngine.analyze`` unchanged. Each prefilter is derived from what the
recognizer itself matches, never from the data:

- **Pattern recognizers** (Presidio's ``PatternRecognizer`` and subclasses that
  keep its ``analyze``): every result is the span of a match of one of the
  recognizer's regexes in the text (``validate_result``/``invalidate_result``
  only drop or rescore matches). For each regex, :func:`pattern_requirement`
  reads its parse tree and computes (a) the fewest decimal digits any match
  contains and (b) ASCII punctuation every match contains (the ``@`` of an
  e-mail address). A text with fewer digits, or lacking one of those
  characters, holds no match of that regex; if that is so for every regex of
  the recognizer, the recognizer returns nothing.
- **Phone numbers** (Presidio's ``PhoneRecognizer``): see :func:`may_hold_phone_number`.
- Anything else (the spaCy NER recognizer, a subclass overriding ``analyze``)
  always runs.
"""

from __future__ import annotations

import functools
import re
import re._constants as sre
import re._parser as sre_parse
from dataclasses import dataclass
from typing import Callable

import phonenumbers
from presidio_analyzer import EntityRecognizer, PatternRecognizer
from presidio_analyzer.predefined_recognizers import PhoneRecognizer



@dataclass(frozen=True)
class TextShape:
    """What prefilters look at, counted once per text.

    Attributes:
        text: the text.
        digits: decimal digits (Unicode category Nd, what ``\\d`` matches).
        letters: alphabetic characters (``str.isalpha``).
    """

    text: str
    digits: int
    letters: int

    @classmethod
    def of(cls, text: str) -> "TextShape":
        return cls(text, sum(ch.isdecimal() for ch in text), sum(ch.isalpha() for ch in text))


#: ``shape of a text -> may the recognizer find something in it``.
Prefilter = Callable[[TextShape], bool]

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT))


@dataclass(frozen=True)
class PatternRequirement:
    """What every match of one regex contains.

    Attributes:
        min_digits: fewest decimal digits (Unicode category Nd, ``str.isdecimal``).
        characters: ASCII punctuation characters present in every match.
    """

    min_digits: int
    characters: frozenset[str]

    def may_match(self, shape: TextShape) -> bool:
        """Whether the text can hold a match."""
        return shape.digits >= self.min_digits and all(c in shape.text for c in self.characters)


def _class_is_digits(items) -> bool:
    """Whether a character class ``[...]`` matches decimal digits only."""
    for op, av in items:
        if op is sre.LITERAL and chr(av).isdecimal():
            continue
        if op is sre.RANGE and all(chr(c).isdecimal() for c in range(av[0], av[1] + 1)):
            continue
        if op is sre.CATEGORY and av in (sre.CATEGORY_DIGIT, sre.CATEGORY_UNI_DIGIT):
            continue
        return False  # NEGATE, a letter, a wider category ...
    return True


def _fixed_punctuation(op, av) -> str | None:
    """The one ASCII punctuation character this item matches, if it matches exactly one.

    Letters and digits are left out: under ``IGNORECASE`` a letter matches
    several characters, and digits are counted by ``min_digits`` instead.
    """
    if op is sre.LITERAL:
        ch = chr(av)
    elif op is sre.IN and len(av) == 1 and av[0][0] is sre.LITERAL:
        ch = chr(av[0][1])
    else:
        return None
    return ch if ch.isascii() and not ch.isalnum() and not ch.isspace() else None


def _requirement(items) -> tuple[int, frozenset[str]]:
    """``(min_digits, characters)`` of a parsed (sub)pattern; see :class:`PatternRequirement`.

    Sequences add digits and unite characters; alternatives take the minimum of
    digits and the intersection of characters; a repeat ``{lo,hi}`` counts its
    body ``lo`` times (characters only when ``lo >= 1``); lookarounds,
    anchors, back-references and conditionals add nothing (a lower bound).
    """
    digits = 0
    chars: set[str] = set()
    for op, av in items:
        if op is sre.LITERAL:
            digits += chr(av).isdecimal()
        elif op is sre.IN:
            digits += _class_is_digits(av)
        elif op in _REPEATS:
            lo, _hi, body = av
            body_digits, body_chars = _requirement(body)
            digits += lo * body_digits
            if lo >= 1:
                chars |= body_chars
        elif op is sre.SUBPATTERN:
            sub_digits, sub_chars = _requirement(av[-1])
            digits += sub_digits
            chars |= sub_chars
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            sub_digits, sub_chars = _requirement(av)
            digits += sub_digits
            chars |= sub_chars
        elif op is sre.BRANCH:
            branches = [_requirement(b) for b in av[1]]
            digits += min(d for d, _ in branches)
            chars |= frozenset.intersection(*(c for _, c in branches))
        punct = _fixed_punctuation(op, av)
        if punct is not None:
            chars.add(punct)
    return digits, frozenset(chars)


@functools.lru_cache(maxsize=4096)
def pattern_requirement(regex: str, flags: int = 0) -> PatternRequirement | None:
    """What every match of ``regex`` contains, or ``None`` if Python's ``re`` cannot parse it.

    Cached: every scan (and every scan part on a worker) builds its prefilters again.

    Presidio compiles patterns with the ``regex`` module; a pattern using its
    extensions (``\\p{..}``, fuzzy matching) fails to parse here and gets no
    prefilter, which is always safe.
    """
    try:
        parsed = sre_parse.parse(regex, flags & ~re.IGNORECASE)
    except (re.error, OverflowError, RecursionError):
        return None
    digits, chars = _requirement(parsed)
    return PatternRequirement(digits, chars)


@functools.cache
def min_phone_digits() -> int:
    """Fewest digits of any valid phone number: min possible national length over all regions.

    A number matched by libphonenumber (any leniency checks at least
    ``is_possible_number``) has a national significant number of one of its
    region's possible lengths.
    """
    lengths = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        lengths.extend(meta.general_desc.possible_length)
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(code)
        lengths.extend(meta.general_desc.possible_length)
    return min(length for length in lengths if length > 0)


def may_hold_phone_number(shape: TextShape) -> bool:
    """Whether libphonenumber's matcher can find a number in the text.

    Why "no" is safe: the matcher only considers spans matched by its candidate
    pattern, which needs a Unicode decimal digit (``\\d``), so a text without one
    holds no number. A found number is valid (``is_possible_number`` at least),
    so its national significant number has at least :func:`min_phone_digits`
    digits; each is a digit of the text or, for vanity numbers ("1-800-FLOWERS"),
    a letter of the text mapped to a digit. A text with fewer digits and letters
    together holds no number. (Argentina's national-prefix rule inserts one
    digit, but its numbers have 10 digits, far above the minimum of 4.)
    """
    return shape.digits > 0 and shape.digits + shape.letters >= min_phone_digits()


def prefilter_of(recognizer: EntityRecognizer) -> Prefilter | None:
    """The prefilter of a recognizer, or ``None`` when it must always run."""
    kind = type(recognizer)
    if isinstance(recognizer, PhoneRecognizer) and kind.analyze is PhoneRecognizer.analyze:
        return may_hold_phone_number
    if isinstance(recognizer, PatternRecognizer) and kind.analyze is PatternRecognizer.analyze:
        requirements = [pattern_requirement(p.regex, recognizer.global_regex_flags or 0) for p in recognizer.patterns]
        if not requirements or any(r is None for r in requirements):
            return None

        def may_match(shape: TextShape) -> bool:
            return any(r.may_match(shape) for r in requirements)

        return may_match
    return None
