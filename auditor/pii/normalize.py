"""Normal forms of PII values, so that a replayed value matches whatever its formatting.

Each entity type maps to a *family* and a pure normaliser; a finding's replay
key is ``(family, normal form)``. Families, not entity types, are compared, so
a value that NER labels ``PERSON`` in one table and ``LOCATION`` in another, or
a number that is an ``US_SSN`` here and an ``US_BANK_NUMBER`` there, still
matches. Entity types not listed fall back to :func:`text_key`.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

_NON_DIGIT = re.compile(r"\D")
_NON_ALNUM = re.compile(r"[^0-9a-z]")
_EXTENSION = re.compile(r"(?i)\s*(?:x|ext\.?|extension)\s*\d+\s*$")
_WORD = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "jr", "sr", "ii", "iii", "iv", "md", "phd", "dds", "dvm"})
_DATE_FORMATS = (
    "%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y", "%m/%d/%y",
    "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y",
)  # fmt: skip


def digits_key(text: str) -> str:
    """Digits only: ``123-45-6789`` -> ``123456789``."""
    return _NON_DIGIT.sub("", text)


def phone_key(text: str) -> str:
    """Digits of a phone number without extension, international prefix or US ``1``.

    ``+1 (555) 010-2030 x12`` and ``555.010.2030`` both give ``5550102030``.
    """
    digits = digits_key(_EXTENSION.sub("", text))
    if digits.startswith("011"):
        digits = digits[3:]
    elif digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits


def alnum_key(text: str) -> str:
    """Lower-case letters and digits only: ``DE89 3704-0044`` -> ``de8937040044``."""
    return _NON_ALNUM.sub("", _fold(text))


def email_key(text: str) -> str:
    """Lower-cased address without a ``mailto:`` prefix."""
    text = text.strip().lower()
    return text[len("mailto:"):] if text.startswith("mailto:") else text


def url_key(text: str) -> str:
    """Lower-cased URL without scheme, ``www.`` or trailing ``/``."""
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text.strip().lower())
    text = text[4:] if text.startswith("www.") else text
    return text.rstrip("/")


def name_key(text: str) -> str:
    """Case-folded, accent-stripped word tokens without titles, sorted.

    ``Dr. José  SMITH`` and ``Smith, Jose`` both give ``jose smith``.
    """
    tokens = [t for t in _WORD.findall(_fold(text)) if t not in _TITLES]
    return " ".join(sorted(tokens))


def date_key(text: str) -> str:
    """ISO date for the common formats (US month-first when ambiguous), else :func:`text_key`."""
    cleaned = _SPACE.sub(" ", text.strip())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).date().isoformat()
        except ValueError:
            continue
    return text_key(text)


def text_key(text: str) -> str:
    """Case-folded, accent-stripped, whitespace collapsed, outer punctuation stripped."""
    return _SPACE.sub(" ", _fold(text)).strip(" \t.,;:!?'\"()[]{}")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


#: entity type -> (family, normaliser).
NORMALIZERS = {
    "PHONE_NUMBER": ("phone", phone_key),
    "US_SSN": ("number", digits_key),
    "US_ITIN": ("number", digits_key),
    "US_BANK_NUMBER": ("number", digits_key),
    "CREDIT_CARD": ("number", digits_key),
    "UK_NHS": ("number", digits_key),
    "MEDICAL_LICENSE": ("code", alnum_key),
    "US_PASSPORT": ("code", alnum_key),
    "US_DRIVER_LICENSE": ("code", alnum_key),
    "IBAN_CODE": ("code", alnum_key),
    "CRYPTO": ("code", alnum_key),
    "EMAIL_ADDRESS": ("email", email_key),
    "URL": ("url", url_key),
    "IP_ADDRESS": ("text", text_key),
    "PERSON": ("name", name_key),
    "LOCATION": ("name", name_key),
    "NRP": ("name", name_key),
    "ORGANIZATION": ("name", name_key),
    "DATE_TIME": ("date", date_key),
}


def replay_key(entity: str, text: str) -> tuple[str, str]:
    """``(family, normal form)`` of a finding; an empty normal form falls back to :func:`text_key`."""
    family, normaliser = NORMALIZERS.get(entity, ("text", text_key))
    key = normaliser(text)
    if not key:
        return ("text", text_key(text))
    return (family, key)
