"""Token ids of a canary as the model sees it: the prefix, then the secret."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from canaries.formats import RecordFormat, SecretFormat, record_values
from canaries.manifest import Canary
from canaries.scorer import Scorer


@dataclass(frozen=True)
class Prompt:
    """A canary split at its secret.

    Attributes:
        prefix: ids of the record up to the secret.
        secret: ids of ``lead + secret``.
        lead: trailing whitespace of the context that the tokenizer glues onto the
            secret's first token (byte-level BPE: ``" Mary"`` is one token); ``""``
            when the context and the secret tokenize apart. Candidates are encoded
            and completions compared with the same lead.
    """

    prefix: list[int]
    secret: list[int]
    lead: str


def _prefix(scorer: Scorer, canary: Canary, context: str) -> list[int]:
    if canary.field is None:
        return list(scorer.encode_prefix(context, None))
    prefix = list(scorer.encode_prefix(canary.record, canary.field))
    if context:
        prefix += list(scorer.encode_value(canary.field, context))
    return prefix


def candidate_ids(scorer: Scorer, canary: Canary, prompt: Prompt, value: str) -> list[int]:
    """Ids of a candidate secret ``value`` in the canary's slot.

    A record span's secret is the values of consecutive numeric and categorical
    columns, which end without a terminator: its ids are theirs, concatenated.
    """
    if canary.fields:
        values = record_values(value, len(canary.fields))
        return [t for f, v in zip(canary.fields, values) for t in scorer.encode_value(f, v)]
    return list(scorer.encode_value(canary.field, prompt.lead + value))


def space_ids(scorer: Scorer, canary: Canary, prompt: Prompt, fmt: SecretFormat,
              limit: int | None = None) -> list[list[int]]:
    """Ids of the candidates of ``fmt`` in its enumeration order (the first ``limit`` of them,
    default all), in the canary's slot.

    A record span's candidates are the product of its columns' values, so their ids
    are built from each column's value ids once (no per-candidate encoding).
    """
    n = fmt.size if limit is None else min(limit, fmt.size)
    if isinstance(fmt, RecordFormat) and canary.fields:
        per_part = [[list(scorer.encode_value(p.column, p.value(i))) for i in range(p.size)] for p in fmt.parts]
        combos = itertools.islice(itertools.product(*per_part), n)
        return [list(itertools.chain.from_iterable(combo)) for combo in combos]
    return [candidate_ids(scorer, canary, prompt, fmt.at(i)) for i in range(n)]


def canary_prompt(scorer: Scorer, canary: Canary) -> Prompt:
    """The canary's prefix and secret ids: the record must encode as prefix + secret.

    Raises:
        ValueError: no split works, so the secret's log-probability would not be
            the one the model was trained on: the value was truncated by the
            column's ``max_tokens``, or the tokenizer merges a token across the
            secret's boundary in another way than a leading space.
    """
    whole = list(scorer.encode(canary.record))
    if canary.fields:
        prefix = list(scorer.encode_prefix(canary.record, canary.fields[0]))
        secret = candidate_ids(scorer, canary, Prompt(prefix=prefix, secret=[], lead=""), canary.secret)
        if whole[: len(prefix) + len(secret)] == prefix + secret:
            return Prompt(prefix=prefix, secret=secret, lead="")
        raise ValueError(f"canary {canary.id} (record span {canary.fields}): its record does not encode as "
                         "prefix + secret (the span's columns must be consecutive learned columns)")
    stripped = canary.context.rstrip()
    for lead in dict.fromkeys(("", canary.context[len(stripped):])):
        context = canary.context[: len(canary.context) - len(lead)]
        prefix = _prefix(scorer, canary, context)
        secret = list(scorer.encode_value(canary.field, lead + canary.secret))
        if secret and whole[: len(prefix) + len(secret)] == prefix + secret:
            return Prompt(prefix=prefix, secret=secret, lead=lead)
    raise ValueError(
        f"canary {canary.id} (format {canary.format!r}, field {canary.field!r}): its record does not encode "
        "as prefix + secret (truncated by max_tokens, or a token merges across the secret's boundary; "
        "change canaries.template or canaries.format)"
    )


def secret_logprobs(scorer: Scorer, canaries: Sequence[Canary]) -> np.ndarray:
    """``log p(secret | prefix)`` of each canary under the model (higher = more likely).

    The membership score of the coin-flip audit set for ``attacks.dp_audit``:
    ``secret_logprobs(scorer, manifest.group("audit"))`` with inclusion bits
    ``[c.coin for c in manifest.group("audit")]``.
    """
    out = []
    for canary in canaries:
        prompt = canary_prompt(scorer, canary)
        out.append(float(scorer.continuation_logprobs(prompt.prefix, [prompt.secret])[0]))
    return np.asarray(out, dtype=float)
