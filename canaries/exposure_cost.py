"""How the exposure audit spends its compute: exact enumeration or sampled references.

Exposure needs the score of every candidate secret (exact; Carlini et al.,
"The Secret Sharer", 2019, Def. 4) or of a uniform sample of them, extrapolated
with a skew-normal fit (Sec. 4.3; TensorFlow Privacy's ``secret_sharer``). The
scorer (``continuation_logprobs``) runs a canary's prefix once and then one
forward row per internal node of the candidates' trie. Its cost per candidate
depends on the regime:

- *exact*: the whole space R shares its beginnings (10^6 six-digit secrets are
  111,111 one-token rows), so a candidate costs ``s_exact`` seconds, measured on
  the first ``m`` candidates of R in enumeration order (a sub-trie of R);
- *sampled*: uniform draws share little beyond their first tokens, so a
  candidate costs ``s_sampled`` seconds, measured on ``m`` uniform draws.

Canaries whose prefix is the same token sequence share one trie (``g`` groups);
the candidates are encoded once per format (``s_encode`` seconds each). Estimated
seconds: exact ``|R| * (s_encode + g * s_exact)``, sampled ``n * (s_encode + g * s_sampled)``.

The rule (``choose_references``): enumerate R exactly when
``|R| <= exact_max_space`` (a memory cap) and the exact estimate fits in
``budget_s``; otherwise sample the largest ``n <= n_references`` that fits,
but at least ``min(MIN_REFERENCES, n_references)`` (below that the
skew-normal fit is poor, so the floor may overrun the budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_REFERENCES = 1000


@dataclass(frozen=True)
class CostChoice:
    """The references of one format and the estimates behind the choice.

    Attributes:
        method: ``exact`` or ``sampled``.
        n: candidates scored per prefix (``|R|`` when exact).
        estimated_s: estimated seconds of the chosen method.
        exact_estimated_s: estimated seconds of exact enumeration.
        budget_s, groups: the inputs of the rule.
    """

    method: str
    n: int
    estimated_s: float
    exact_estimated_s: float
    budget_s: float
    groups: int


def choose_references(*, size: int, groups: int, exact_s_per_candidate: float, sampled_s_per_candidate: float,
                      budget_s: float, exact_max_space: int, n_references: int,
                      encode_s_per_candidate: float = 0.0) -> CostChoice:
    """Exact enumeration or the number of sampled references (see the module docstring).

    Args:
        size: ``|R|``.
        groups: distinct prefixes among the audited canaries (one trie each).
        exact_s_per_candidate, sampled_s_per_candidate: measured scoring seconds per candidate
            and prefix.
        encode_s_per_candidate: measured seconds to encode one candidate (once per format).
        budget_s: seconds the audit may spend scoring candidates.
        exact_max_space: the largest space enumerated exactly (memory).
        n_references: the most references sampled per format.
    """
    if size < 1 or groups < 1 or budget_s <= 0 or n_references < 1:
        raise ValueError(f"size, groups, budget_s and n_references must be positive, got {size}, {groups}, "
                         f"{budget_s}, {n_references}")
    if min(exact_s_per_candidate, sampled_s_per_candidate, encode_s_per_candidate) < 0:
        raise ValueError("seconds per candidate must be >= 0")
    exact_s = size * (encode_s_per_candidate + groups * exact_s_per_candidate)
    if size <= exact_max_space and exact_s <= budget_s:
        return CostChoice("exact", size, exact_s, exact_s, budget_s, groups)
    per_candidate = encode_s_per_candidate + groups * sampled_s_per_candidate
    fits = n_references if per_candidate == 0 else math.floor(budget_s / per_candidate)
    n = max(min(MIN_REFERENCES, n_references), min(n_references, fits))
    return CostChoice("sampled", n, n * per_candidate, exact_s, budget_s, groups)
