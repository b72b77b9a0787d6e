"""What the audits need of a model: the ``Scorer`` protocol.

``canaries`` and ``attacks`` never import ``auditor``. They see a model only
through this protocol, which ``auditor.scoring`` implements for the toolkit's
own synthesizers and for any Hugging Face causal LM, so every audit works on
any model.

Token sequences are lists of ints in the model's vocabulary. A *record* is what
the model was trained on: a mapping column -> value for tabular data, a string
for text data. All log-probabilities are natural logarithms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

Record = Mapping[str, Any] | str


@dataclass(frozen=True)
class TokenStats:
    """Per predicted token of one sequence (positions 1..n-1).

    Attributes:
        logprob: ``log p(x_t | x_<t)`` of the actual token.
        mean: ``mu_t = sum_z p(z | x_<t) log p(z | x_<t)`` over the allowed vocabulary.
        std: ``sigma_t = sqrt(sum_z p(z) (log p(z) - mu_t)^2)``.
    """

    logprob: np.ndarray
    mean: np.ndarray
    std: np.ndarray


@runtime_checkable
class Scorer(Protocol):
    """A model seen as a scorer of token sequences."""

    def encode(self, record: Record) -> list[int]:
        """Token ids of a whole record as the model was trained on it (BOS..EOS)."""

    def encode_prefix(self, record: Record, field: str | None) -> list[int]:
        """Token ids of ``record`` up to, not including, the value of ``field``.

        For text records ``field`` is None and ``record`` is the prefix text.
        """

    def encode_value(self, field: str | None, value: str) -> list[int]:
        """Token ids of ``value`` as it appears in ``field`` (no terminator)."""

    def decode_value(self, field: str | None, ids: Sequence[int]) -> str:
        """Inverse of ``encode_value``."""

    def token_stats(self, sequences: Sequence[Sequence[int]]) -> list[TokenStats]:
        """Per-token log-probabilities and next-token distribution moments."""

    def continuation_logprobs(
        self, prefix: Sequence[int], continuations: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """``log p(c | prefix)`` summed over each continuation's tokens.

        The prefix is run once and shared (KV cache); continuations sharing
        leading tokens share their computation.
        """

    def complete(
        self, prefix: Sequence[int], *, field: str | None, beam_width: int = 1,
        max_new_tokens: int = 64,
    ) -> list[tuple[str, float]]:
        """Ranked completions of ``field`` after ``prefix``: (value, log-prob).

        ``beam_width=1`` is greedy decoding. Decoding stays inside the field's
        grammar where the model has one.
        """
