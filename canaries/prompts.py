"""Token ids of a canary as the model sees it: the prefix, then the secret."""

from __future__ import annotations

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
