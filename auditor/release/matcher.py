"""Finding many raw secrets in texts at once.

The rule is the one of ``reports.leakcheck``: a secret's letters and digits in
order, separated only by non-alphanumeric characters, case-insensitive, not
inside a longer alphanumeric run (``481-29-5531`` matches ``481 29 5531``). Here
it is computed on a text's alphanumeric runs: a secret matches exactly when its
normalised form is the concatenation of consecutive whole runs, so thousands of
secrets cost one pass over the text instead of one regex each.

Secrets need at least ``MIN_ALNUM`` letters and digits. Shorter ones (a 4-digit
PIN) occur by chance in any page of numbers: on a tiny run's public report, 140
random 4-digit values (the demo's canaries) hit at least one of the report's own
numbers (a year, e^ε ≈ 2921, a count) in 26 of 100 draws, even matched as whole
tokens. Callers search such secrets with their context instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MIN_ALNUM = 6
_RUN = re.compile(r"[A-Za-z0-9]+")
_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def normalise(secret: str) -> str:
    """Lower-case letters and digits of ``secret``."""
    return _ALNUM.sub("", secret).lower()


class SecretMatcher:
    """Finds any of a set of secrets, given as (key, raw value) pairs, in texts (see the module doc)."""

    def __init__(self, secrets: Iterable[tuple[str, str]]):
        """
        Raises:
            ValueError: a secret has fewer than ``MIN_ALNUM`` letters and digits
                (searching it would report chance matches).
        """
        self._secrets: dict[str, list[str]] = {}
        for key, value in secrets:
            norm = normalise(value)
            if len(norm) < MIN_ALNUM:
                raise ValueError(f"secret {key!r} has fewer than {MIN_ALNUM} letters and digits")
            self._secrets.setdefault(norm, []).append(key)
        self._max_len = max((len(n) for n in self._secrets), default=0)

    def found(self, texts: Sequence[str]) -> set[str]:
        """Keys of the secrets found in any of ``texts``.

        A match never spans two texts (each JSON string is its own text), so
        ``0.001`` and ``0.01`` in neighbouring cells do not read ``000101``.
        """
        keys: set[str] = set()
        for text in texts:
            runs = [m.group().lower() for m in _RUN.finditer(text)]
            for i in range(len(runs)):
                joined = runs[i]
                j = i
                # runs are maximal: only separators lie between two consecutive ones
                while len(joined) <= self._max_len:
                    keys.update(self._secrets.get(joined, ()))
                    j += 1
                    if j == len(runs):
                        break
                    joined += runs[j]
        return keys
