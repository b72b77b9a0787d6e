"""Finding raw secrets (canary secrets, PII values) in text that leaves the toolkit.

A secret is found when its letters and digits occur in order, separated only by
non-alphanumeric characters (``481-29-5531`` also matches ``481 29 5531`` and
``481295531``), case-insensitively, and not inside a longer alphanumeric run.
HTML is also searched after unescaping entities, and inline ``data:`` URIs
(base64 images) are skipped: their random characters hold no text and would
give false hits on short numbers. Hits are reported masked.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reports.pii_masking import mask_value

_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+")
_ALNUM = re.compile(r"[A-Za-z0-9]")
MIN_ALNUM = 4  # shorter secrets match by chance everywhere; the toolkit's secrets are longer


@dataclass(frozen=True)
class Leak:
    """One hit: where (source name and character offset) and which secret, masked."""

    source: str
    offset: int
    secret: str


def secret_pattern(secret: str) -> re.Pattern[str] | None:
    """The regex that finds ``secret`` (see module doc), or ``None`` if it is too short to search."""
    chars = _ALNUM.findall(secret)
    if len(chars) < MIN_ALNUM:
        return None
    body = r"[^A-Za-z0-9]*".join(re.escape(c) for c in chars)
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


def find_leaks(texts: Mapping[str, str], secrets: Iterable[str]) -> list[Leak]:
    """Every occurrence of any of ``secrets`` in ``texts`` (source name -> text), masked.

    Raises:
        ValueError: a secret is too short to search reliably (fewer than
            ``MIN_ALNUM`` letters and digits): passing it would silently test nothing.
    """
    patterns = []
    for secret in secrets:
        pattern = secret_pattern(secret)
        if pattern is None:
            raise ValueError(f"secret {mask_value(secret)!r} has fewer than {MIN_ALNUM} letters/digits")
        patterns.append((secret, pattern))
    leaks = []
    for source, text in texts.items():
        cleaned = _DATA_URI.sub("data:", text)
        variants = {cleaned, html.unescape(cleaned)}
        seen: set[tuple[str, int]] = set()
        for variant in variants:
            for secret, pattern in patterns:
                for match in pattern.finditer(variant):
                    if (secret, match.start()) not in seen:
                        seen.add((secret, match.start()))
                        leaks.append(Leak(source=source, offset=match.start(), secret=mask_value(secret)))
    return sorted(leaks, key=lambda leak: (leak.source, leak.offset))
