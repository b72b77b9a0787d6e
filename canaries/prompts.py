"""Token ids of a canary as the model sees it: the prefix, then the secret."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from canaries.manifest import Canary
from canaries.scorer import Scorer


def canary_prefix(scorer: Scorer, canary: Canary) -> list[int]:
    """Ids of the canary record up to the secret: the record before the designated
    field, then the field's text before the secret (the template's context)."""
    if canary.field is None:
        return list(scorer.encode_prefix(canary.context, None))
    prefix = list(scorer.encode_prefix(canary.record, canary.field))
    if canary.context:
        prefix += list(scorer.encode_value(canary.field, canary.context))
    return prefix


def canary_prompt(scorer: Scorer, canary: Canary) -> tuple[list[int], list[int]]:
    """``(prefix_ids, secret_ids)`` of a canary.

    Raises:
        ValueError: the record does not encode as prefix + secret, so the secret's
            log-probability would not be the one the model was trained on: the value
            was truncated by the column's ``max_tokens``, or the tokenizer merges a
            token across the secret's boundary (e.g. a template ending in a space
            before a word-like secret).
    """
    prefix = canary_prefix(scorer, canary)
    secret = list(scorer.encode_value(canary.field, canary.secret))
    whole = list(scorer.encode(canary.record))
    if not secret or whole[: len(prefix) + len(secret)] != prefix + secret:
        raise ValueError(
            f"canary {canary.id} (format {canary.format!r}, field {canary.field!r}): its record does not encode "
            "as prefix + secret (truncated by max_tokens, or a token merges across the secret's boundary; "
            "change canaries.template or canaries.format)"
        )
    return prefix, secret


def secret_logprobs(scorer: Scorer, canaries: Sequence[Canary]) -> np.ndarray:
    """``log p(secret | prefix)`` of each canary under the model (higher = more likely).

    The membership score of the coin-flip audit set for ``attacks.audit``:
    ``secret_logprobs(scorer, manifest.group("audit"))`` with inclusion bits
    ``[c.coin for c in manifest.group("audit")]``.
    """
    out = []
    for canary in canaries:
        prefix, secret = canary_prompt(scorer, canary)
        out.append(float(scorer.continuation_logprobs(prefix, [secret])[0]))
    return np.asarray(out, dtype=float)
