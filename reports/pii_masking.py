"""Masking of PII values and canary secrets: everything that leaves the toolkit goes through here.

Raw PII values and canary secrets never appear in reports, logs or exceptions.
A masked value keeps just enough shape for a reviewer (``j***@e***.com``,
``***-**-6789``) and a salted hash lets two findings be matched without showing
either. The salt is per run and kept in a private file, so hashes of small
spaces (SSNs, PINs) cannot be reversed by a reader of the report alone.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any


_DIGIT = re.compile(r"\d")
_ALNUM = re.compile(r"[^\W_]")


def new_salt() -> str:
    """A fresh random salt (hex), from OS entropy."""
    return secrets.token_hex(16)


def salted_hash(value: str, salt: str) -> str:
    """``h:`` + the first 12 hex digits of SHA-256(salt || value)."""
    digest = hashlib.sha256((salt + "\x00" + str(value)).encode("utf-8")).hexdigest()
    return "h:" + digest[:12]


def _mask_word(word: str) -> str:
    return word[:1] + "***" if word else word


def mask_value(value: Any, kind: str | None = None) -> str:
    """Mask a value for display; the result never contains the value itself.

    Rules, by the shape of the value (``kind`` only refines the choice):
      - ``kind="secret"`` (canary secrets and other values whose every character
        is secret): every letter and digit -> ``*``, separators kept; unlike the
        rules below it keeps no last digits, which would shrink a canary's space.
      - e-mail ``local@domain.tld`` -> ``l***@d***.tld``
      - values with 4 or more digits (SSN, phone, card, account, PIN):
        every digit but the last 4 -> ``*``, separators kept
        (``123-45-6789`` -> ``***-**-6789``); with at most 6 digits in all
        (short PINs, canary codes) every digit is masked.
      - dates (``kind`` ``DATE_TIME`` or ``date``): every digit masked, words
        keep their first letter (``1984-03-07`` -> ``****-**-**``,
        ``March 7, 1984`` -> ``M*** *, ****``): a birth date's day and month
        are a quasi-identifier, so none of it is kept.
      - anything else: each word keeps its first letter (``John Smith`` ->
        ``J*** S***``).
    """
    text = str(value)
    if not text:
        return ""
    if kind == "secret":
        return _ALNUM.sub("*", text)
    if kind in ("DATE_TIME", "date"):
        return " ".join(_mask_word(w) if w[:1].isalpha() else _DIGIT.sub("*", w) for w in text.split())
    if "@" in text and (kind in (None, "EMAIL_ADDRESS", "email")):
        local, _, domain = text.partition("@")
        parts = domain.split(".")
        tld = parts[-1] if len(parts) > 1 else ""
        host = _mask_word(parts[0])
        return f"{_mask_word(local)}@{host}" + (f".{tld}" if tld else "")
    digits = _DIGIT.findall(text)
    if 0 < len(digits) < 4:
        # Short codes (a 3-digit PIN, "Apt 4"): no digit is kept, and words keep one letter.
        return " ".join(_mask_word(w) if w[:1].isalpha() else _ALNUM.sub("*", w) for w in text.split())
    if len(digits) >= 4:
        keep = 0 if len(digits) <= 6 else 4
        to_mask = len(digits) - keep
        out = []
        for ch in text:
            if ch.isdigit():
                out.append("*" if to_mask > 0 else ch)
                to_mask -= 1
            elif ch.isalpha():
                out.append("*")
            else:
                out.append(ch)
        return "".join(out)
    return " ".join(_mask_word(w) for w in text.split())


class Redactor:
    """Masks values and tags them with a per-run salted hash."""

    def __init__(self, salt: str):
        if not salt:
            raise ValueError("Redactor needs a non-empty salt")
        self.salt = salt

    def hash(self, value: Any) -> str:
        return salted_hash(str(value), self.salt)

    def redact(self, value: Any, kind: str | None = None) -> dict[str, str]:
        """``{"masked": ..., "hash": ...}`` for JSON outputs."""
        return {"masked": mask_value(value, kind), "hash": self.hash(value)}

    def text(self, value: Any, kind: str | None = None) -> str:
        """One-line form for logs and messages: ``***-**-6789 (h:1a2b3c4d5e6f)``."""
        return f"{mask_value(value, kind)} ({self.hash(value)})"
