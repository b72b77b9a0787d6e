"""Finding many raw secrets in a text at once.

Two matching rules, chosen by a secret's length:

- *loose* (secrets with at least ``LOOSE_MIN_ALNUM`` letters and digits): the
  rule of ``reports.leakcheck``: the secret's letters and digits in order,
  separated only by non-alphanumeric characters, case-insensitive, not inside a
  longer alphanumeric run (``481-29-5531`` matches ``481 29 5531``). Here it is
  computed on the text's alphanumeric runs: a secret matches exactly when its
  normalised form is the concatenation of consecutive whole runs, so thousands
  of secrets cost one pass over the text instead of one regex each.
- *strict* (shorter secrets, e.g. a 4-digit PIN): the secret as written, as a
  whole token that is not part of a decimal number. Loose matching of 4 digits
  fires by chance in any page of numbers (``0.001, 0.01`` reads ``0001``);
  measured on a tiny run's report, 3.4% of random 4-digit values matched loosely
  and 0.1% strictly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

LOOSE_MIN_ALNUM = 6
_RUN = re.compile(r"[A-Za-z0-9]+")
_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def normalise(secret: str) -> str:
    """Lower-case letters and digits of ``secret``."""
    return _ALNUM.sub("", secret).lower()


def _strict_pattern(secret: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9])(?<![0-9][.,]){re.escape(secret)}(?![A-Za-z0-9])(?![.,][0-9])",
                      re.IGNORECASE)


class SecretMatcher:
    """Finds any of a set of secrets (label -> raw value) in texts (see the module doc).

    Secrets with no letter or digit are ignored: they cannot be told from separators.
    """

    def __init__(self, secrets: Iterable[tuple[str, str]]):
        self._loose: dict[str, list[str]] = {}
        self._strict: list[tuple[str, re.Pattern[str]]] = []
        for key, value in secrets:
            norm = normalise(value)
            if not norm:
                continue
            if len(norm) >= LOOSE_MIN_ALNUM:
                self._loose.setdefault(norm, []).append(key)
            else:
                self._strict.append((key, _strict_pattern(value.strip())))
        self._max_len = max((len(n) for n in self._loose), default=0)

    def found(self, texts: Sequence[str]) -> set[str]:
        """Keys of the secrets found in any of ``texts``.

        A loose match never spans two texts (each JSON string is its own text), so
        ``0.001`` and ``0.01`` in neighbouring cells do not read ``000101``.
        """
        keys: set[str] = set()
        if self._loose:
            for text in texts:
                runs = [m.group().lower() for m in _RUN.finditer(text)]
                for i in range(len(runs)):
                    joined = runs[i]
                    j = i
                    # runs are maximal: only separators lie between two consecutive ones
                    while len(joined) <= self._max_len:
                        keys.update(self._loose.get(joined, ()))
                        j += 1
                        if j == len(runs):
                            break
                        joined += runs[j]
        if self._strict:
            joined_texts = "\n".join(texts)
            keys.update(key for key, pattern in self._strict if pattern.search(joined_texts))
        return keys
